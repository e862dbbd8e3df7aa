import type { ErrorObject } from 'ajv';
import envSchema from 'env-schema';
import { Type, type Static, type TSchema } from 'typebox';

// Every setting comes from the environment and is checked here, once, at start-up.
// A bad value stops the process with a message naming the variable, rather than
// surfacing later as a confusing runtime error.

export type DatabaseConfig =
  | { kind: 'pglite'; dataDir: string }
  | {
      kind: 'postgres';
      // Passed to `pg` as is; when undefined, `pg` reads PGHOST, PGPORT, PGDATABASE,
      // PGUSER, PGPASSWORD (and PGSSLMODE) itself, exactly as libpq would.
      connectionString: string | undefined;
      poolMax: number;
      connectTimeoutMs: number;
      queryTimeoutMs: number;
      /** Server-side prepared statements (off behind a pooler that cannot keep them). */
      preparedStatements: boolean;
    };

/** How long a client may take, enforced by Node's HTTP server (which answers 408 and closes). */
export interface HttpTimeouts {
  /** The whole request, headers and body, must have arrived within this. */
  requestTimeoutMs: number;
  /** The request headers must have arrived within this. */
  headersTimeoutMs: number;
  /** An idle keep-alive connection is closed after this. */
  keepAliveTimeoutMs: number;
}

export interface Config {
  host: string;
  port: number;
  http: HttpTimeouts;
  logLevel: LogLevel;
  shutdownDelayMs: number;
  /** After the delay, closing (in-flight requests, then the pool) may take this long. */
  shutdownTimeoutMs: number;
  migrateOnStart: boolean;
  database: DatabaseConfig;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
type LogLevel = (typeof LOG_LEVELS)[number];

// The libpq variables that select PostgreSQL over the embedded database.
const LIBPQ_VARIABLES = ['PGHOST', 'PGPORT', 'PGDATABASE', 'PGUSER', 'PGPASSWORD'] as const;

const port = (fallback?: number) => Type.Integer({ minimum: 1, maximum: 65535, ...(fallback === undefined ? {} : { default: fallback }) });
const seconds = (minimum: number, maximum: number, fallback: number) => Type.Number({ minimum, maximum, default: fallback });

// Every variable the service reads, its type, range and default: env-schema checks the
// environment against it (with Ajv, coercing strings to numbers and booleans) and fills
// in the defaults. README's configuration table lists the same variables.
const ENVIRONMENT = Type.Object(
  {
    PORT: port(8000),
    HOST: Type.String({ default: '0.0.0.0' }),
    LOG_LEVEL: Type.Union(
      LOG_LEVELS.map((level) => Type.Literal(level)),
      { default: 'info' },
    ),
    SHUTDOWN_DELAY_SECONDS: seconds(0, 300, 5),
    SHUTDOWN_TIMEOUT_SECONDS: seconds(1, 3600, 10),
    MIGRATE_ON_START: Type.Boolean({ default: true }),
    REQUEST_TIMEOUT_SECONDS: seconds(1, 3600, 30),
    HEADERS_TIMEOUT_SECONDS: seconds(1, 3600, 10),
    // Behind a load balancer this must be longer than the balancer's own idle timeout
    // (60 s on AWS ALB): otherwise the service may close a connection just as the
    // balancer sends a request on it, and the client gets a 502.
    KEEP_ALIVE_TIMEOUT_SECONDS: seconds(1, 3600, 72),
    DATA_DIR: Type.String({ default: './data' }),
    DATABASE_URL: Type.Optional(Type.String()),
    PGHOST: Type.Optional(Type.String()),
    PGPORT: Type.Optional(port()),
    PGDATABASE: Type.Optional(Type.String()),
    PGUSER: Type.Optional(Type.String()),
    PGPASSWORD: Type.Optional(Type.String()),
    DB_POOL_MAX: Type.Integer({ minimum: 1, maximum: 1000, default: 10 }),
    DB_CONNECT_TIMEOUT_SECONDS: seconds(0.1, 600, 3),
    DB_QUERY_TIMEOUT_SECONDS: seconds(0.1, 3600, 10),
    DB_PREPARED_STATEMENTS: Type.Boolean({ default: true }),
  },
  { additionalProperties: false },
);
type Environment = Static<typeof ENVIRONMENT>;
type Variable = keyof Environment;

/** Variables whose value is never repeated in a message: it may carry a password. */
const SECRET_VARIABLES: ReadonlySet<string> = new Set(['DATABASE_URL', 'PGPASSWORD']);

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

export function loadConfig(env: Env = process.env): Config {
  const given = givenValues(env);
  let read: Environment;
  try {
    read = envSchema<Environment>({ schema: ENVIRONMENT, data: given, env: false });
  } catch (error) {
    // env-schema's error carries Ajv's, one per failed keyword; anything else is a bug.
    const errors = (error as { errors?: ErrorObject[] }).errors;
    if (errors === undefined) throw error;
    throw new ConfigError(problemsOf(errors, given));
  }
  const problems: string[] = [];
  if (read.HEADERS_TIMEOUT_SECONDS > read.REQUEST_TIMEOUT_SECONDS) {
    problems.push(`HEADERS_TIMEOUT_SECONDS=${read.HEADERS_TIMEOUT_SECONDS} must not exceed REQUEST_TIMEOUT_SECONDS=${read.REQUEST_TIMEOUT_SECONDS}`);
  }
  if (read.DATABASE_URL !== undefined) problems.push(...postgresUrlProblems(read.DATABASE_URL));
  if (problems.length > 0) throw new ConfigError(problems);
  return {
    host: read.HOST,
    port: read.PORT,
    http: {
      requestTimeoutMs: Math.round(read.REQUEST_TIMEOUT_SECONDS * 1000),
      headersTimeoutMs: Math.round(read.HEADERS_TIMEOUT_SECONDS * 1000),
      keepAliveTimeoutMs: Math.round(read.KEEP_ALIVE_TIMEOUT_SECONDS * 1000),
    },
    logLevel: read.LOG_LEVEL,
    shutdownDelayMs: Math.round(read.SHUTDOWN_DELAY_SECONDS * 1000),
    shutdownTimeoutMs: Math.round(read.SHUTDOWN_TIMEOUT_SECONDS * 1000),
    migrateOnStart: read.MIGRATE_ON_START,
    database: databaseConfig(read),
  };
}

function databaseConfig(read: Environment): DatabaseConfig {
  if (read.DATABASE_URL === undefined && LIBPQ_VARIABLES.every((name) => read[name] === undefined)) {
    return { kind: 'pglite', dataDir: read.DATA_DIR };
  }
  return {
    kind: 'postgres',
    connectionString: read.DATABASE_URL,
    poolMax: read.DB_POOL_MAX,
    connectTimeoutMs: read.DB_CONNECT_TIMEOUT_SECONDS * 1000,
    queryTimeoutMs: read.DB_QUERY_TIMEOUT_SECONDS * 1000,
    preparedStatements: read.DB_PREPARED_STATEMENTS,
  };
}

/**
 * The variables the schema knows, as set: trimmed, an empty one taken as unset (a
 * chart or compose file often sets `NAME: ""` to mean "not given"), and the words
 * (log level, true and false) in any case.
 */
function givenValues(env: Env): Record<string, string> {
  const given: Record<string, string> = {};
  for (const [name, schema] of Object.entries(ENVIRONMENT.properties)) {
    const value = env[name]?.trim();
    if (value === undefined || value === '') continue;
    const isWord = 'anyOf' in schema || schema.type === 'boolean';
    given[name] = isWord ? value.toLowerCase() : value;
  }
  return given;
}

/** One line per bad variable, naming it, its value (unless secret) and what it must be. */
function problemsOf(errors: ErrorObject[], given: Record<string, string>): string[] {
  const names = [...new Set(errors.map((problem) => problem.instancePath.replace(/^\//, '').split('/')[0]!))];
  return names.map((name) => {
    const shown = SECRET_VARIABLES.has(name) ? name : `${name}=${JSON.stringify(given[name])}`;
    return `${shown}: expected ${expectation(ENVIRONMENT.properties[name as Variable])}`;
  });
}

/** What a variable's schema asks for, in words. */
function expectation(schema: TSchema & { type?: string; minimum?: number; maximum?: number; anyOf?: Array<{ const: string }> }): string {
  if (schema.anyOf !== undefined) return `one of ${schema.anyOf.map((literal) => literal.const).join(', ')}`;
  if (schema.type === 'boolean') return 'true or false';
  if (schema.type === 'integer') return `a whole number from ${schema.minimum} to ${schema.maximum}`;
  if (schema.type === 'number') return `a number from ${schema.minimum} to ${schema.maximum}`;
  return 'a string';
}

/** Problems with a DATABASE_URL, never repeating it: it may carry a password. */
function postgresUrlProblems(raw: string): string[] {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return ['DATABASE_URL: not a valid URL (expected postgresql://user:password@host:5432/database)'];
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    return [`DATABASE_URL: expected a postgresql:// or postgres:// URL, got ${url.protocol}//`];
  }
  return [];
}

/** A one-line description of the database, safe to log: never includes the password. */
export function describeDatabase(database: DatabaseConfig, env: Env = process.env): string {
  if (database.kind === 'pglite') return `embedded PGlite in ${database.dataDir}`;
  if (database.connectionString !== undefined) {
    const url = new URL(database.connectionString);
    const user = url.username === '' ? '' : `${decodeURIComponent(url.username)}@`;
    return `PostgreSQL ${url.protocol}//${user}${url.host}${url.pathname}`;
  }
  const user = env.PGUSER ?? '(default user)';
  const host = env.PGHOST ?? 'localhost';
  const port = env.PGPORT ?? '5432';
  const name = env.PGDATABASE ?? user;
  return `PostgreSQL postgresql://${user}@${host}:${port}/${name} (from PG* variables)`;
}
