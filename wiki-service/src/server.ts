import { setTimeout as sleep } from 'node:timers/promises';
import closeWithGrace from 'close-with-grace';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { buildApp } from './app.js';
import { ConfigError, describeDatabase, loadConfig, type Config } from './config.js';
import { openDatabase, type DatabaseHandle } from './db/database.js';
import { connectionFailureReason } from './db/database-errors.js';
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

  closeGracefully({ app, database, log, delayMs: config.shutdownDelayMs, timeoutMs: config.shutdownTimeoutMs });
}

/**
 * How the process ends. On SIGTERM or SIGINT:
 * 1. readiness turns 503, so Kubernetes takes this pod out of the Service;
 * 2. it keeps serving for the delay: endpoint removal takes a moment to reach every
 *    node, and requests keep arriving until it has;
 * 3. it stops accepting, lets in-flight requests finish, closes the pool, exits 0.
 * An uncaught exception or unhandled rejection is logged and closes the same way
 * without the delay (the process's state is unknown: it should not take new work),
 * then exits 1 for Kubernetes to restart the container.
 * Closing that takes longer than the timeout after the delay (a stuck request, an
 * unanswering database) exits 1, as does a second signal.
 */
function closeGracefully(options: { app: FastifyInstance; database: DatabaseHandle; log: Logger; delayMs: number; timeoutMs: number }): void {
  const { app, database, log, delayMs, timeoutMs } = options;
  closeWithGrace(
    {
      delay: delayMs + timeoutMs,
      logger: false, // everything it would say is logged below, as JSON
      onSecondSignal: (signal) => log.warn({ signal }, 'second signal: exiting now'),
      onSecondError: (error) => log.fatal({ err: error }, 'uncaught error while shutting down: exiting now'),
      onTimeout: (ms) => log.error({ timeout_ms: ms }, 'shutdown took too long: exiting now'),
    },
    async ({ signal, err }) => {
      try {
        if (err !== undefined) {
          log.fatal({ err }, 'uncaught error: shutting down');
          app.markShuttingDown();
        } else {
          app.markShuttingDown();
          log.info({ signal, delay_ms: delayMs }, 'shutting down: readiness is now 503');
          await sleep(delayMs);
        }
        await app.close();
        await database.close();
        log.info('shutdown complete');
      } catch (error) {
        log.error({ err: error }, 'shutdown failed');
        throw error;
      }
    },
  );
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
