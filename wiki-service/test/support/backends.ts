import { inject } from 'vitest';
import { PostgresServer } from '@wiki/test-support/postgres';

// Every behaviour test runs against both databases the service supports. The contract
// suite also runs through PgBouncer in transaction mode, the pooler in front of
// PostgreSQL in CloudNativePG's Pooler and most managed services.
export type Backend = 'pglite' | 'postgres' | 'pgbouncer';
export const BACKENDS: Backend[] = ['pglite', 'postgres'];

/** The run's shared PostgreSQL server, or undefined when its binaries are missing (tests then skip, loudly). */
export function sharedPostgres(): PostgresServer | undefined {
  const shared = inject('postgres');
  return shared === null ? undefined : PostgresServer.attach(shared);
}

/** The run's shared PgBouncer's port, in front of sharedPostgres(), or undefined when PgBouncer is missing. */
export function sharedPgBouncerPort(): number | undefined {
  return inject('pgbouncer') ?? undefined;
}

export function backendUnavailable(backend: Backend): boolean {
  if (backend === 'pgbouncer') return inject('pgbouncer') === null;
  return backend === 'postgres' && inject('postgres') === null;
}
