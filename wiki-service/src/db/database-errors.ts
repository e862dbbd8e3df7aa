// Recognises database errors that mean "the database cannot be reached or cannot
// answer right now", which the API reports as 503 rather than 500.

const UNAVAILABLE_SQLSTATES = new Set([
  // A new connection refused its login: the password was just rotated and this process
  // still has the old one (docs/OPERATIONS.md), or pg_hba.conf changed. Not the
  // request's fault: 503, and the client retries once the pod has been restarted.
  '28000', // invalid_authorization_specification
  '28P01', // invalid_password
  // A write reached a server that takes none: a standby (the endpoint still points at
  // it during a failover, or a demoted primary) or one set read-only. An outage with a
  // name, not a bug: 503, and the connection leaves the pool (database.ts).
  '25006', // read_only_sql_transaction
  '53300', // too_many_connections
  '57014', // query_canceled (statement_timeout)
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now (starting up or shutting down)
]);

const UNAVAILABLE_NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH']);

// node-postgres reports these conditions with plain Errors that carry no code.
const UNAVAILABLE_MESSAGES = [
  'Connection terminated',
  'timeout exceeded when trying to connect',
  'Query read timeout',
  'Client has encountered a connection error',
  'Client was closed and is not queryable',
];

export const SQLSTATE_FOREIGN_KEY_VIOLATION = '23503';
export const SQLSTATE_READ_ONLY_TRANSACTION = '25006';

export function sqlState(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

export function isDatabaseUnavailable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = sqlState(error);
  if (code !== undefined && (code.startsWith('08') || UNAVAILABLE_SQLSTATES.has(code) || UNAVAILABLE_NETWORK_CODES.has(code))) {
    return true;
  }
  if (error instanceof AggregateError && error.errors.some(isDatabaseUnavailable)) return true;
  return UNAVAILABLE_MESSAGES.some((message) => error.message.includes(message));
}

/**
 * Why the database could not be used, in words an operator searches for: the
 * start-up failure message (docs/PHASE2_POSTGRESQL.md, "What goes wrong"). Falls back
 * to the driver's own message.
 */
export function connectionFailureReason(error: unknown): string {
  const codes = allCodes(error);
  const message = error instanceof Error ? error.message : String(error);
  if (codes.includes('ECONNREFUSED')) return 'database refused the connection (nothing listens at that host and port)';
  if (codes.includes('ENOTFOUND') || codes.includes('EAI_AGAIN')) return 'database host not found (DNS)';
  if (codes.includes('28P01')) return `password authentication failed: ${message}`;
  if (codes.includes('3D000')) return `database does not exist: ${message}`;
  if (codes.includes('28000')) return `database refused this client: ${message}`;
  if (codes.includes('ETIMEDOUT') || message.includes('timeout exceeded when trying to connect'))
    return 'database did not answer in time (DB_CONNECT_TIMEOUT_SECONDS)';
  return message;
}

function allCodes(error: unknown): string[] {
  const own = sqlState(error);
  const nested = error instanceof AggregateError ? error.errors.flatMap(allCodes) : [];
  return [...(own === undefined ? [] : [own]), ...nested];
}
