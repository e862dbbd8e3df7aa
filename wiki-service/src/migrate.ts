import { ConfigError, describeDatabase, loadConfig } from './config.js';
import { openDatabase } from './db/database.js';
import { migrateToLatest } from './db/migrate.js';
import { createLogger } from './logger.js';

// `npm run migrate`: apply pending migrations and exit, with the same configuration
// as the server. Suited to a Kubernetes Job or a deploy step (then set
// MIGRATE_ON_START=false on the server).

async function main(): Promise<void> {
  const config = loadConfig();
  const log = createLogger(config.logLevel);
  log.info({ database: describeDatabase(config.database) }, 'using database');
  const database = await openDatabase(config.database, log);
  try {
    const applied = await migrateToLatest(database.db);
    log.info({ applied }, applied.length > 0 ? 'migrations applied' : 'schema up to date');
  } finally {
    await database.close();
  }
}

main().catch((error: unknown) => {
  if (error instanceof ConfigError) process.stderr.write(`wiki-service migrate: ${error.message}\n`);
  else createLogger('fatal').fatal({ err: error }, 'migration failed');
  process.exit(error instanceof ConfigError ? 2 : 1);
});
