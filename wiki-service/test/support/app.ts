import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { onTestFinished } from 'vitest';
import { buildApp } from '../../src/app.js';
import { loadConfig, type DatabaseConfig } from '../../src/config.js';
import { openDatabase } from '../../src/db/database.js';
import { migrateToLatest } from '../../src/db/migrate.js';
import { sharedPgBouncerPort, sharedPostgres, type Backend } from './backends.js';
import { client, type Client } from '@wiki/test-support/http';

// The app in this process, listening on a free loopback port, on a fresh database.

export interface TestApp extends Client {
  app: FastifyInstance;
  close(): Promise<void>;
}

export async function testDatabaseConfig(backend: Backend): Promise<{ config: DatabaseConfig; cleanup: () => Promise<void> }> {
  if (backend === 'pglite') {
    const dataDir = await mkdtemp(join(tmpdir(), 'wiki-pglite-'));
    return { config: { kind: 'pglite', dataDir }, cleanup: () => rm(dataDir, { recursive: true, force: true }) };
  }
  const server = sharedPostgres();
  if (server === undefined) throw new Error('PostgreSQL is not available in this run');
  let connectionString = await server.createDatabase();
  if (backend === 'pgbouncer') {
    const port = sharedPgBouncerPort();
    if (port === undefined) throw new Error('PgBouncer is not available in this run');
    const url = new URL(connectionString);
    url.port = String(port);
    connectionString = url.toString();
  }
  return {
    config: { kind: 'postgres', connectionString, poolMax: 10, connectTimeoutMs: 2000, queryTimeoutMs: 10_000, preparedStatements: true },
    cleanup: async () => {},
  };
}

export async function startTestApp(backend: Backend): Promise<TestApp> {
  const { config, cleanup } = await testDatabaseConfig(backend);
  const logger = pino({ level: 'silent' });
  const database = await openDatabase(config, logger);
  await migrateToLatest(database.db);
  const app = await buildApp({ database, logger, timeouts: loadConfig({}).http });
  const address = await app.listen({ host: '127.0.0.1', port: 0 });
  return {
    ...client(address),
    app,
    close: async () => {
      await app.close();
      await database.close();
      await cleanup();
    },
  };
}

/**
 * The environment that points a service process at a fresh database of the given
 * kind. Call it inside a test: the database is removed when that test finishes.
 */
export async function serviceEnvFor(backend: Backend): Promise<Record<string, string>> {
  const { config, cleanup } = await testDatabaseConfig(backend);
  onTestFinished(cleanup);
  return config.kind === 'pglite'
    ? { DATA_DIR: config.dataDir, SHUTDOWN_DELAY_SECONDS: '0' }
    : { DATABASE_URL: config.connectionString!, SHUTDOWN_DELAY_SECONDS: '0' };
}
