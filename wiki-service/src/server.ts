import { setTimeout as sleep } from 'node:timers/promises';
import { buildApp } from './app.js';
import { ConfigError, describeDatabase, loadConfig, type Config } from './config.js';
import { openDatabase } from './db/database.js';
import { migrateToLatest } from './db/migrate.js';
import { createLogger } from './logger.js';

// The process entry point: read configuration, open the database, migrate, listen,
// and shut down gracefully. Everything else lives in app.ts.

async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`wiki-service: ${error.message}\n`);
    process.exit(2);
  }

  const log = createLogger(config.logLevel);
  log.info({ database: describeDatabase(config.database) }, 'using database');
  const database = await openDatabase(config.database, log);
  if (config.migrateOnStart) {
    const applied = await migrateToLatest(database.db);
    log.info({ applied }, applied.length > 0 ? 'migrations applied' : 'schema up to date');
  }

  const app = await buildApp({ database, logger: log, timeouts: config.http });
  await app.listen({ host: config.host, port: config.port });

  let stopping = false;
  const stop = async (signal: NodeJS.Signals) => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    // 1. Readiness turns 503, so Kubernetes takes this pod out of the Service.
    // 2. Keep serving for the delay: endpoint removal takes a moment to reach every
    //    node, and requests keep arriving until it has.
    // 3. Stop accepting, let in-flight requests finish, then close the pool.
    app.markShuttingDown();
    log.info({ signal, delay_ms: config.shutdownDelayMs }, 'shutting down: readiness is now 503');
    await sleep(config.shutdownDelayMs);
    await app.close();
    await database.close();
    log.info('shutdown complete');
    process.exit(0);
  };
  process.on('SIGTERM', (signal) => void stop(signal));
  process.on('SIGINT', (signal) => void stop(signal));
}

main().catch((error: unknown) => {
  // Logged as JSON like everything else; the message names what failed (e.g. the
  // database refusing connections) so a CrashLoopBackOff explains itself.
  createLogger('fatal').fatal({ err: error }, 'wiki-service failed to start');
  process.exit(1);
});
