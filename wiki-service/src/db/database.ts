import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import type { DatabaseConfig } from '../config.js';
import { SQLSTATE_READ_ONLY_TRANSACTION, sqlState } from './database-errors.js';
import { MigrationLockInTransaction } from './migrate.js';
import { PGliteDialect } from './pglite-dialect.js';
import type { Database } from './schema.js';
import { PG_TYPE_INT8, PG_TYPE_TIMESTAMPTZ, parseInt8, parseTimestamptz, SESSION_UTC_OPTIONS, SET_SESSION_UTC } from './types.js';

export interface DatabaseHandle {
  db: Kysely<Database>;
  /**
   * Resolves when the database answers, with whether it takes writes: false on a
   * standby (in recovery) or a server set read-only. Rejects when it does not answer.
   */
  ping(): Promise<{ writable: boolean }>;
  /** Waits for running queries, then closes every connection. */
  close(): Promise<void>;
}

type WarnLogger = { warn(details: object, message: string): void };

// Whether the server takes writes: one query, as cheap as SELECT 1. It runs for
// readiness and /metrics, never per request.
const READ_ONLY_CHECK = "SELECT pg_is_in_recovery() OR current_setting('transaction_read_only')::boolean AS read_only";

export async function openDatabase(config: DatabaseConfig, log: WarnLogger): Promise<DatabaseHandle> {
  if (config.kind === 'pglite') {
    const db = await openPGlite(config.dataDir);
    return {
      db,
      ping: async () => {
        const { rows } = await sql.raw<{ read_only: boolean }>(READ_ONLY_CHECK).execute(db);
        return { writable: rows[0]?.read_only === false };
      },
      close: () => db.destroy(),
    };
  }
  const { db, pool } = openPostgres(config, log);
  return {
    db,
    // On a connection of its own from the pool, so that a connection to a read-only
    // server is dropped, not returned: the next check, and the next request, connect
    // through the endpoint again, which may by then lead to the new primary.
    ping: async () => {
      const connection = await pool.connect();
      let readOnly = true;
      try {
        readOnly = (await connection.query<{ read_only: boolean }>(READ_ONLY_CHECK)).rows[0]?.read_only !== false;
        return { writable: !readOnly };
      } finally {
        connection.release(readOnly);
      }
    },
    // Kysely ends the pool only if a query went through it; the checks above use the
    // pool directly (wait-for-database runs nothing else), so it is ended here then.
    close: async () => {
      await db.destroy();
      if (!pool.ending) await pool.end();
    },
  };
}

// PGlite's memory, measured by `npm run bench` (README, "Performance"). Its defaults
// cost 350-430 MB of RSS; three changes bring the service under 200 MB:
// - shared_buffers 8MB instead of PostgreSQL's 128MB: PGlite reads and writes real
//   files, so the operating system's page cache still caches the data;
// - V8 compiles PGlite's WebAssembly with its baseline compiler (Liftoff) only: the
//   optimising tier kept 50-60 MB of code and compiler memory, for no throughput
//   measurable here. The flag is on the command line (`npm start`, the image's CMD):
//   Node 24's V8 ignores it when set from code once started. It applies to
//   WebAssembly only, so a PostgreSQL deployment runs the same either way;
// - a new data folder is initialised (initdb) by a short-lived child process, whose
//   several hundred MB go back to the system when it exits.
const PGLITE_SHARED_BUFFERS = '8MB';
const INITDB_IN_CHILD = `
const { PGlite } = require(process.argv[1]);
PGlite.create(process.argv[2]).then((pglite) => pglite.close());
`;
const execFileAsync = promisify(execFile);

async function openPGlite(dataDir: string): Promise<Kysely<Database>> {
  await mkdir(dataDir, { recursive: true });
  if (!existsSync(join(dataDir, 'PG_VERSION'))) {
    const pgliteEntry = createRequire(import.meta.url).resolve('@electric-sql/pglite');
    await execFileAsync(process.execPath, ['--liftoff-only', '-e', INITDB_IN_CHILD, pgliteEntry, dataDir]);
  }
  // Loaded only when used: a PostgreSQL deployment never pays PGlite's memory.
  const { PGlite } = await import('@electric-sql/pglite');
  const pglite = await PGlite.create(dataDir, {
    parsers: { [PG_TYPE_INT8]: parseInt8, [PG_TYPE_TIMESTAMPTZ]: parseTimestamptz },
    startParams: [...PGlite.defaultStartParams, '-c', `shared_buffers=${PGLITE_SHARED_BUFFERS}`],
  });
  await pglite.exec(SET_SESSION_UTC);
  return new Kysely<Database>({ dialect: new PGliteDialect(pglite) });
}

function openPostgres(config: Extract<DatabaseConfig, { kind: 'postgres' }>, log: WarnLogger): { db: Kysely<Database>; pool: pg.Pool } {
  const pool = new pg.Pool({
    Client: config.preparedStatements ? PreparingClient : ServiceClient,
    connectionString: config.connectionString,
    max: config.poolMax,
    // Fail fast when PostgreSQL is unreachable instead of queueing requests forever.
    connectionTimeoutMillis: config.connectTimeoutMs,
    query_timeout: config.queryTimeoutMs,
    keepAlive: true,
    // Every session in UTC, set in the startup packet so it holds from the first query.
    // (PgBouncer 1.20 and later pass it on: TimeZone is one of the parameters it tracks.)
    options: SESSION_UTC_OPTIONS,
    // Idle connections stay open (pg closes them after 10 s by default). Reopening one
    // costs a backend fork, a SCRAM login on both sides and its prepared statements
    // again: measured by bench:capacity, at moderate load that churn (19 new
    // connections a minute) gave a p99 of 0.5-0.7 s with no CPU throttling at all. The
    // pool is bounded (DB_POOL_MAX), and the chart checks it against max_connections.
    idleTimeoutMillis: 0,
    types: {
      getTypeParser: ((oid: number, format?: 'text' | 'binary') => {
        if (oid === PG_TYPE_INT8) return parseInt8;
        if (oid === PG_TYPE_TIMESTAMPTZ) return parseTimestamptz;
        return pg.types.getTypeParser(oid, format) as (value: string) => unknown;
      }) as typeof pg.types.getTypeParser,
    },
  });
  // A connection that dies while idle in the pool (PostgreSQL restarted, network cut)
  // is reported here; without a listener it would crash the process. The pool drops
  // it and opens a fresh one on demand, which is how the service recovers by itself.
  // (pg-pool attaches the whole client to these errors: only what matters is logged.)
  pool.on('error', (error) => log.warn({ err: { message: error.message, code: sqlState(error) } }, 'idle database connection lost'));
  pool.on('connect', (client) => {
    // The pool listens for errors only on idle connections. A connection that dies
    // while checked out (PostgreSQL restarting under load, its backend terminated)
    // also emits 'error' on the client, which would crash the process without a
    // listener. Nothing more is needed here: the query in flight fails with the same
    // error (the request answers 503), the client is marked unusable, and the pool
    // discards it when it is released.
    client.on('error', () => {});
  });
  return { db: new Kysely<Database>({ dialect: new ServiceDialect({ pool }) }), pool };
}

/** Kysely's PostgreSQL dialect, with the migration lock taken inside the migration transaction (migrate.ts). */
class ServiceDialect extends PostgresDialect {
  override createAdapter() {
    return new MigrationLockInTransaction();
  }
}

/**
 * A `pg` client that leaves the pool once a write is refused as read-only (25006). The
 * server it is connected to is a standby: after a failover, a connection opened before
 * the endpoint moved still reaches the old server, and would fail every write it is
 * given. Ending it makes the pool drop it when it is released (pg-pool discards a
 * client that is ending); the next connection goes through the endpoint again.
 */
class ServiceClient extends pg.Client {
  override query(...args: unknown[]): never {
    const result = (super.query as (...all: unknown[]) => unknown)(...args);
    if (result instanceof Promise) {
      result.catch((error: unknown) => {
        if (sqlState(error) === SQLSTATE_READ_ONLY_TRANSACTION) this.end().catch(() => {});
      });
    }
    return result as never;
  }
}

/**
 * A `pg` client whose repositories' queries are server-side prepared statements:
 * PostgreSQL parses and plans each once per connection, then only binds and executes
 * it. `pg` does that for a query that has a `name`; the name is a hash of the text, so
 * the same SQL is always the same statement. It spares PostgreSQL the parse and plan of
 * every request, on the cores it shares with the service.
 * Only the texts registered with `nameStatement` (the repositories' fixed queries, by
 * compileOnce) are named: every other query (the migrations' DDL, a health check, a
 * query whose text varies) stays unnamed, so a connection, which is never closed, holds
 * a bounded set of statements.
 * A pooler in transaction mode (PgBouncer before 1.21) cannot keep a connection's
 * statements: DB_PREPARED_STATEMENTS=false turns this off there.
 */
class PreparingClient extends ServiceClient {
  // pg's query() has many overloads; only (text, values[, callback]) is rewritten.
  override query(...args: unknown[]): never {
    const [text, values, ...rest] = args;
    const name = typeof text === 'string' && Array.isArray(values) ? statementNames.get(text) : undefined;
    if (name !== undefined) return super.query({ name, text, values }, ...rest);
    return super.query(...args);
  }
}

const statementNames = new Map<string, string>();

/** Runs this SQL text as a named, prepared statement from now on (with DB_PREPARED_STATEMENTS). */
export function nameStatement(text: string): void {
  if (!statementNames.has(text)) statementNames.set(text, `wiki_${createHash('sha256').update(text).digest('hex').slice(0, 24)}`);
}
