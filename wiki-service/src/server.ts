import { setTimeout as sleep } from 'node:timers/promises';
import { buildApp } from './app.js';
import { ConfigError, describeDatabase, loadConfig, type Config } from './config.js';
import { openDatabase } from './db/database.js';
import { connectionFailureReason } from './db/errors.js';
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
  // The database must answer before anything else, migrations or not: a wrong
  // password or a missing database will not fix itself, and a process that started
  // anyway would answer 503 forever. Failing names the cause (and Kubernetes retries).
  try {
    await database.ping();
  } catch (error) {
    throw new StartupError(connectionFailureReason(error), { cause: error });
  }
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

/** A start-up failure whose message says what to fix. */
class StartupError extends Error {}

main().catch((error: unknown) => {
  // Logged as JSON like everything else; the message names what failed (e.g. "database
  // refused the connection") so a CrashLoopBackOff explains itself.
  const reason = error instanceof StartupError ? `: ${error.message}` : '';
  createLogger('fatal').fatal({ err: error }, `wiki-service failed to start${reason}`);
  process.exit(1);
});
