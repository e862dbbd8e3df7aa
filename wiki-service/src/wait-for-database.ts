import { setTimeout as sleep } from 'node:timers/promises';
import { ConfigError, describeDatabase, loadConfig } from './config.js';
import { openDatabase } from './db/database.js';
import { connectionFailureReason } from './db/database-errors.js';
import { createLogger } from './logger.js';

// `node dist/wait-for-database.js [timeout-seconds]`: waits until the configured
// database accepts a login and answers a query, then exits 0; exits 1 after the
// timeout (default 120 s). The Helm chart runs it as the API's init container, from
// the API image itself, with the API's own settings: when it succeeds, the server
// can connect, password included.

const DEFAULT_TIMEOUT_SECONDS = 120;
const RETRY_EVERY_MS = 2000;

async function main(): Promise<void> {
  const argument = process.argv[2];
  const timeoutSeconds = argument === undefined ? DEFAULT_TIMEOUT_SECONDS : Number(argument);
  if (!Number.isFinite(timeoutSeconds) || timeoutSeconds <= 0) {
    process.stderr.write(`wait-for-database: timeout must be a positive number of seconds, got ${JSON.stringify(argument)}\n`);
    process.exit(2);
  }
  const config = loadConfig();
  const log = createLogger(config.logLevel);
  const target = describeDatabase(config.database);
  const deadline = Date.now() + timeoutSeconds * 1000;
  const database = await openDatabase(config.database, log);
  try {
    for (let attempt = 1; ; attempt++) {
      try {
        await database.ping();
        log.info({ database: target, attempt }, 'database is ready');
        return;
      } catch (error) {
        if (Date.now() + RETRY_EVERY_MS > deadline) {
          log.error({ database: target, err: error, timeout_seconds: timeoutSeconds }, 'database not ready in time');
          process.exitCode = 1;
          return;
        }
        log.info({ database: target, attempt, reason: connectionFailureReason(error) }, 'waiting for the database');
        await sleep(RETRY_EVERY_MS);
      }
    }
  } finally {
    await database.close();
  }
}

main().catch((error: unknown) => {
  if (error instanceof ConfigError) {
    process.stderr.write(`wait-for-database: ${error.message}\n`);
    process.exit(2);
  }
  createLogger('fatal').fatal({ err: error }, 'wait-for-database failed');
  process.exit(1);
});
