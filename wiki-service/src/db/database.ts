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
import { sqlState } from './errors.js';
import { PGliteDialect } from './pglite-dialect.js';
import type { Database } from './schema.js';
import { PG_TYPE_INT8, PG_TYPE_TIMESTAMPTZ, parseInt8, parseTimestamptz, SESSION_UTC_OPTIONS, SET_SESSION_UTC } from './types.js';

export interface DatabaseHandle {
  db: Kysely<Database>;
  /** Resolves when the database answers a trivial query; rejects otherwise. */
  ping(): Promise<void>;
  /** Waits for running queries, then closes every connection. */
  close(): Promise<void>;
}

type WarnLogger = { warn(details: object, message: string): void };

export async function openDatabase(config: DatabaseConfig, log: WarnLogger): Promise<DatabaseHandle> {
  const db = config.kind === 'pglite' ? await openPGlite(config.dataDir) : openPostgres(config, log);
  return {
    db,
    ping: async () => {
      await sql`SELECT 1`.execute(db);
    },
    close: () => db.destroy(),
  };
}

// PGlite's memory, measured by `npm run bench` (README, "Performance"). Its defaults
// cost 350-430 MB of RSS; three changes bring the service under 200 MB:
// - shared_buffers 8MB instead of PostgreSQL's 128MB: PGlite reads and writes real
//   files, so the operating system's page cache still caches the data;
// - V8 compiles PGlite's WebAssembly with its baseline compiler (Liftoff) only: the
//   optimising tier kept 50-60 MB of code and compiler memory, for no throughput
//   measurable here. server.ts sets the flag for the embedded database only, so a
//   PostgreSQL deployment is untouched;
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

function openPostgres(config: Extract<DatabaseConfig, { kind: 'postgres' }>, log: WarnLogger): Kysely<Database> {
  const pool = new pg.Pool({
    Client: config.preparedStatements ? PreparingClient : pg.Client,
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
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
}

/**
 * A `pg` client whose data queries are server-side prepared statements: PostgreSQL
 * parses and plans each query text once per connection, then only binds and executes
 * it. `pg` does that for a query that has a `name`; the name here is a hash of the
 * text, so the same SQL is always the same statement. It spares PostgreSQL the parse
 * and plan of every request, on the cores it shares with the service.
 * Only SELECT, INSERT, UPDATE, DELETE and WITH: the migrations' DDL stays unnamed.
 * A pooler in transaction mode (PgBouncer before 1.21) cannot keep a connection's
 * statements: DB_PREPARED_STATEMENTS=false turns this off there.
 */
class PreparingClient extends pg.Client {
  // pg's query() has many overloads; only (text, values[, callback]) is rewritten.
  override query(...args: unknown[]): never {
    const [text, values, ...rest] = args;
    if (typeof text === 'string' && Array.isArray(values) && PREPARABLE.test(text)) {
      return (super.query as (...all: unknown[]) => never)({ name: statementName(text), text, values }, ...rest);
    }
    return (super.query as (...all: unknown[]) => never)(...args);
  }
}

const PREPARABLE = /^\s*(select|insert|update|delete|with)\b/i;
const statementNames = new Map<string, string>();

function statementName(text: string): string {
  let name = statementNames.get(text);
  if (name === undefined) {
    name = `wiki_${createHash('sha256').update(text).digest('hex').slice(0, 24)}`;
    statementNames.set(text, name);
  }
  return name;
}
