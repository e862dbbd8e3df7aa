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

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

export function loadConfig(env: Env = process.env): Config {
  const problems: string[] = [];
  const read = new EnvReader(env, problems);

  const port = read.integer('PORT', 8000, 1, 65535);
  const host = read.string('HOST', '0.0.0.0');
  const logLevel = read.oneOf('LOG_LEVEL', LOG_LEVELS, 'info');
  const shutdownDelaySeconds = read.number('SHUTDOWN_DELAY_SECONDS', 5, 0, 300);
  const shutdownTimeoutSeconds = read.number('SHUTDOWN_TIMEOUT_SECONDS', 10, 1, 3600);
  const migrateOnStart = read.boolean('MIGRATE_ON_START', true);
  const database = readDatabaseConfig(env, read);
  const http = readHttpTimeouts(read, problems);

  if (problems.length > 0) throw new ConfigError(problems);
  return {
    host,
    port,
    http,
    logLevel,
    shutdownDelayMs: Math.round(shutdownDelaySeconds * 1000),
    shutdownTimeoutMs: Math.round(shutdownTimeoutSeconds * 1000),
    migrateOnStart,
    database,
  };
}

function readDatabaseConfig(env: Env, read: EnvReader): DatabaseConfig {
  const databaseUrl = read.string('DATABASE_URL', '');
  const usesLibpqVariables = LIBPQ_VARIABLES.some((name) => nonEmpty(env[name]));
  if (databaseUrl === '' && !usesLibpqVariables) {
    return { kind: 'pglite', dataDir: read.string('DATA_DIR', './data') };
  }
  if (databaseUrl !== '') read.postgresUrl('DATABASE_URL', databaseUrl);
  if (nonEmpty(env.PGPORT)) read.integer('PGPORT', 5432, 1, 65535);
  return {
    kind: 'postgres',
    connectionString: databaseUrl === '' ? undefined : databaseUrl,
    poolMax: read.integer('DB_POOL_MAX', 10, 1, 1000),
    connectTimeoutMs: read.number('DB_CONNECT_TIMEOUT_SECONDS', 3, 0.1, 600) * 1000,
    queryTimeoutMs: read.number('DB_QUERY_TIMEOUT_SECONDS', 10, 0.1, 3600) * 1000,
    preparedStatements: read.boolean('DB_PREPARED_STATEMENTS', true),
  };
}

function readHttpTimeouts(read: EnvReader, problems: string[]): HttpTimeouts {
  const requestSeconds = read.number('REQUEST_TIMEOUT_SECONDS', 30, 1, 3600);
  const headersSeconds = read.number('HEADERS_TIMEOUT_SECONDS', 10, 1, 3600);
  // Behind a load balancer this must be longer than the balancer's own idle timeout
  // (60 s on AWS ALB): otherwise the service may close a connection just as the
  // balancer sends a request on it, and the client gets a 502.
  const keepAliveSeconds = read.number('KEEP_ALIVE_TIMEOUT_SECONDS', 72, 1, 3600);
  if (headersSeconds > requestSeconds) {
    problems.push(`HEADERS_TIMEOUT_SECONDS=${headersSeconds} must not exceed REQUEST_TIMEOUT_SECONDS=${requestSeconds}`);
  }
  return {
    requestTimeoutMs: Math.round(requestSeconds * 1000),
    headersTimeoutMs: Math.round(headersSeconds * 1000),
    keepAliveTimeoutMs: Math.round(keepAliveSeconds * 1000),
  };
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

function nonEmpty(value: string | undefined): value is string {
  return value !== undefined && value.trim() !== '';
}

/** Reads typed values, recording a problem (instead of throwing) so all are reported at once. */
class EnvReader {
  constructor(
    private readonly env: Env,
    private readonly problems: string[],
  ) {}

  string(name: string, fallback: string): string {
    const raw = this.env[name];
    return nonEmpty(raw) ? raw.trim() : fallback;
  }

  number(name: string, fallback: number, min: number, max: number): number {
    const raw = this.env[name];
    if (!nonEmpty(raw)) return fallback;
    const value = Number(raw.trim());
    if (!Number.isFinite(value) || value < min || value > max) {
      this.problems.push(`${name}=${JSON.stringify(raw)}: expected a number from ${min} to ${max}`);
      return fallback;
    }
    return value;
  }

  integer(name: string, fallback: number, min: number, max: number): number {
    const raw = this.env[name];
    if (!nonEmpty(raw)) return fallback;
    const value = Number(raw.trim());
    if (!/^\d+$/.test(raw.trim()) || value < min || value > max) {
      this.problems.push(`${name}=${JSON.stringify(raw)}: expected a whole number from ${min} to ${max}`);
      return fallback;
    }
    return value;
  }

  boolean(name: string, fallback: boolean): boolean {
    const raw = this.env[name];
    if (!nonEmpty(raw)) return fallback;
    const value = raw.trim().toLowerCase();
    if (['true', '1', 'yes'].includes(value)) return true;
    if (['false', '0', 'no'].includes(value)) return false;
    this.problems.push(`${name}=${JSON.stringify(raw)}: expected true or false`);
    return fallback;
  }

  oneOf<T extends string>(name: string, allowed: readonly T[], fallback: T): T {
    const raw = this.env[name];
    if (!nonEmpty(raw)) return fallback;
    const value = raw.trim().toLowerCase();
    if ((allowed as readonly string[]).includes(value)) return value as T;
    this.problems.push(`${name}=${JSON.stringify(raw)}: expected one of ${allowed.join(', ')}`);
    return fallback;
  }

  postgresUrl(name: string, raw: string): void {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      // The value may hold a password: name the variable, never echo it.
      this.problems.push(`${name}: not a valid URL (expected postgresql://user:password@host:5432/database)`);
      return;
    }
    if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
      this.problems.push(`${name}: expected a postgresql:// or postgres:// URL, got ${url.protocol}//`);
    }
  }
}
