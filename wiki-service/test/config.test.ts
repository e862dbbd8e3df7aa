import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, describeDatabase, loadConfig } from '../src/config.js';
import { backendUnavailable, sharedPostgres } from './support/backends.js';
import { freePort, TEST_DB_PASSWORD, TEST_DB_USER, type PostgresServer } from '@wiki/test-support/postgres';
import { runNode, SERVER_SCRIPT } from './support/service-process.js';

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('defaults: port 8000 on all interfaces, embedded PGlite in ./data, 5 s shutdown delay', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      host: '0.0.0.0',
      port: 8000,
      logLevel: 'info',
      shutdownDelayMs: 5000,
      migrateOnStart: true,
      database: { kind: 'pglite', dataDir: './data' },
      // 72 s keep-alive outlasts the 60 s idle timeout of common load balancers.
      http: { requestTimeoutMs: 30_000, headersTimeoutMs: 10_000, keepAliveTimeoutMs: 72_000 },
    });
  });

  it('DATABASE_URL selects PostgreSQL', () => {
    const config = loadConfig({ DATABASE_URL: 'postgresql://wiki:secret@db:5432/wiki' });
    expect(config.database).toMatchObject({ kind: 'postgres', connectionString: 'postgresql://wiki:secret@db:5432/wiki', poolMax: 10 });
  });

  it.each(['PGHOST', 'PGPORT', 'PGDATABASE', 'PGUSER', 'PGPASSWORD'])('%s alone selects PostgreSQL, read by libpq rules', (name) => {
    const config = loadConfig({ [name]: name === 'PGPORT' ? '5433' : 'x' });
    expect(config.database).toMatchObject({ kind: 'postgres', connectionString: undefined });
  });

  it('reads every setting', () => {
    const config = loadConfig({
      HOST: '127.0.0.1',
      PORT: '9000',
      LOG_LEVEL: 'DEBUG',
      SHUTDOWN_DELAY_SECONDS: '0.5',
      MIGRATE_ON_START: 'false',
      PGHOST: 'db',
      DB_POOL_MAX: '4',
      DB_CONNECT_TIMEOUT_SECONDS: '1',
      DB_QUERY_TIMEOUT_SECONDS: '2',
      REQUEST_TIMEOUT_SECONDS: '20',
      HEADERS_TIMEOUT_SECONDS: '5.5',
      KEEP_ALIVE_TIMEOUT_SECONDS: '650',
    });
    expect(config).toMatchObject({
      host: '127.0.0.1',
      port: 9000,
      logLevel: 'debug',
      shutdownDelayMs: 500,
      migrateOnStart: false,
      database: { kind: 'postgres', poolMax: 4, connectTimeoutMs: 1000, queryTimeoutMs: 2000 },
      http: { requestTimeoutMs: 20_000, headersTimeoutMs: 5500, keepAliveTimeoutMs: 650_000 },
    });
  });

  it.each([
    [{ PORT: 'eighty' }, 'PORT="eighty": expected a whole number from 1 to 65535'],
    [{ PORT: '70000' }, 'PORT="70000"'],
    [{ PORT: '80.5' }, 'PORT="80.5"'],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL="loud": expected one of fatal, error, warn, info, debug, trace, silent'],
    [{ SHUTDOWN_DELAY_SECONDS: '-1' }, 'SHUTDOWN_DELAY_SECONDS="-1": expected a number from 0 to 300'],
    [{ MIGRATE_ON_START: 'maybe' }, 'MIGRATE_ON_START="maybe": expected true or false'],
    [{ PGPORT: 'x' }, 'PGPORT="x"'],
    [{ PGHOST: 'db', DB_POOL_MAX: '0' }, 'DB_POOL_MAX="0"'],
    [{ DATABASE_URL: 'mysql://u:p@h/d' }, 'DATABASE_URL: expected a postgresql:// or postgres:// URL, got mysql://'],
    [{ DATABASE_URL: 'not a url' }, 'DATABASE_URL: not a valid URL'],
    [{ REQUEST_TIMEOUT_SECONDS: '0' }, 'REQUEST_TIMEOUT_SECONDS="0": expected a number from 1 to 3600'],
    [{ HEADERS_TIMEOUT_SECONDS: 'never' }, 'HEADERS_TIMEOUT_SECONDS="never"'],
    [{ KEEP_ALIVE_TIMEOUT_SECONDS: '-5' }, 'KEEP_ALIVE_TIMEOUT_SECONDS="-5"'],
    [{ REQUEST_TIMEOUT_SECONDS: '5', HEADERS_TIMEOUT_SECONDS: '10' }, 'HEADERS_TIMEOUT_SECONDS=10 must not exceed REQUEST_TIMEOUT_SECONDS=5'],
  ])('%j is refused with a message naming the variable', (env, message) => {
    expect(problemsOf(env as Record<string, string>).join('\n')).toContain(message);
  });

  it('takes an empty or blank variable as unset, and words in any case', () => {
    const config = loadConfig({ PORT: '', HOST: '  ', DATABASE_URL: '', PGHOST: ' ', LOG_LEVEL: ' Warn ', MIGRATE_ON_START: 'FALSE', DB_POOL_MAX: ' 7 ' });
    expect(config).toMatchObject({ port: 8000, host: '0.0.0.0', logLevel: 'warn', migrateOnStart: false, database: { kind: 'pglite' } });
  });

  it('reports every bad variable at once', () => {
    expect(problemsOf({ PORT: 'x', LOG_LEVEL: 'y' })).toHaveLength(2);
  });

  it('never echoes a bad DATABASE_URL, which may carry a password', () => {
    const problems = problemsOf({ DATABASE_URL: 'mysql://user:hunter2@host/db' }).join('\n');
    expect(problems).not.toContain('hunter2');
  });
});

describe('describeDatabase', () => {
  it('names the database without the password', () => {
    const config = loadConfig({ DATABASE_URL: 'postgresql://wiki:hunter2@db.internal:5432/wiki' });
    const description = describeDatabase(config.database);
    expect(description).toBe('PostgreSQL postgresql://wiki@db.internal:5432/wiki');
    expect(description).not.toContain('hunter2');
  });

  it('describes libpq variables without PGPASSWORD', () => {
    const env = { PGHOST: 'db', PGUSER: 'wiki', PGPASSWORD: 'hunter2', PGDATABASE: 'wiki' };
    const description = describeDatabase(loadConfig(env).database, env);
    expect(description).toContain('postgresql://wiki@db:5432/wiki');
    expect(description).not.toContain('hunter2');
  });
});

describe('the server process with a bad setting', () => {
  it('exits 2 before doing anything, naming each bad variable on stderr', async () => {
    const server = runNode(SERVER_SCRIPT, { PORT: 'abc', SHUTDOWN_DELAY_SECONDS: 'soon', DATA_DIR: '/nonexistent/never-created' });
    const exit = await server.exited;
    expect(exit.code).toBe(2);
    expect(server.output()).toContain('PORT="abc"');
    expect(server.output()).toContain('SHUTDOWN_DELAY_SECONDS="soon"');
  });

  it('exits 1 with a logged reason when the database cannot be reached, without the password', async () => {
    const server = runNode(SERVER_SCRIPT, {
      DATABASE_URL: 'postgresql://wiki:hunter2@127.0.0.1:1/wiki',
      DB_CONNECT_TIMEOUT_SECONDS: '1',
    });
    const exit = await server.exited;
    expect(exit.code).toBe(1);
    expect(server.output()).toContain('failed to start');
    expect(server.output()).toContain('ECONNREFUSED');
    expect(server.output()).not.toContain('hunter2');
  });
});

// Each start-up failure names its cause in the words of docs/PHASE2_POSTGRESQL.md's
// table, with migrations on start or off (off, the process used to start anyway and
// answer 503 to everything).
describe.skipIf(backendUnavailable('postgres'))('the server process when the database will not take it', () => {
  const cases: Array<[string, (server: PostgresServer) => Promise<string>, string]> = [
    [
      'nothing listens at the address',
      async () => `postgresql://wiki:hunter2@127.0.0.1:${await freePort()}/wiki`,
      'database refused the connection (nothing listens at that host and port)',
    ],
    [
      'the password is wrong',
      async (server) => `postgresql://${TEST_DB_USER}:hunter2@127.0.0.1:${server.port}/postgres`,
      `password authentication failed: password authentication failed for user "${TEST_DB_USER}"`,
    ],
    [
      'the database does not exist',
      async (server) => `postgresql://${TEST_DB_USER}:${TEST_DB_PASSWORD}@127.0.0.1:${server.port}/no_such_database`,
      'database does not exist: database "no_such_database" does not exist',
    ],
  ];
  for (const migrateOnStart of ['true', 'false']) {
    it.each(cases)(`MIGRATE_ON_START=${migrateOnStart}: %s: exits 1, logging "wiki-service failed to start: <cause>"`, async (_name, urlFor, cause) => {
      const server = runNode(SERVER_SCRIPT, {
        DATABASE_URL: await urlFor(sharedPostgres()!),
        MIGRATE_ON_START: migrateOnStart,
        DB_CONNECT_TIMEOUT_SECONDS: '2',
      });
      const exit = await server.exited;
      expect(exit, server.output()).toEqual({ code: 1, signal: null });
      const fatal = server.logLines().find((line) => line.level === 60);
      expect(fatal?.msg).toBe(`wiki-service failed to start: ${cause}`);
      expect(server.output()).not.toContain('hunter2');
    });
  }

  it.each(cases)('docs/PHASE2_POSTGRESQL.md lists the message for: %s', async (_name, _urlFor, cause) => {
    const troubleshooting = readFileSync(join(import.meta.dirname, '..', '..', 'docs', 'PHASE2_POSTGRESQL.md'), 'utf8');
    expect(troubleshooting).toContain(`wiki-service failed to start: ${cause.replace('no_such_database', 'wiki')}`);
  });
});
