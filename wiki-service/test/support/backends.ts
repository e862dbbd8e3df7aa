import { inject } from 'vitest';
import { PostgresServer } from '@wiki/test-support/postgres';

// Every behaviour test runs against both databases the service supports.
export type Backend = 'pglite' | 'postgres';
export const BACKENDS: Backend[] = ['pglite', 'postgres'];

/** The run's shared PostgreSQL server, or undefined when its binaries are missing (tests then skip, loudly). */
export function sharedPostgres(): PostgresServer | undefined {
  const shared = inject('postgres');
  return shared === null ? undefined : PostgresServer.attach(shared);
}

export function backendUnavailable(backend: Backend): boolean {
  return backend === 'postgres' && inject('postgres') === null;
}
