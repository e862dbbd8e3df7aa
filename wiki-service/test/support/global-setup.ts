import type { TestProject } from 'vitest/node';
import { findPgBouncer, PgBouncer, pgBouncerVersion } from '@wiki/test-support/pgbouncer';
import { findPostgresBinaries, PostgresServer, TEST_DB_PASSWORD, TEST_DB_USER, type SharedPostgres } from '@wiki/test-support/postgres';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The shared throwaway PostgreSQL, or null when its binaries are missing. */
    postgres: SharedPostgres | null;
    /** The port of a PgBouncer (transaction mode) in front of it, or null when PgBouncer is missing. */
    pgbouncer: number | null;
  }
}

/** A test group that cannot run here: fails in CI, which must run everything, else warns loudly. */
function skipLoudly(message: string): void {
  if (process.env.CI) throw new Error(`${message} CI must run them.`);
  console.warn(`\n${'!'.repeat(80)}\n!! ${message}\n${'!'.repeat(80)}\n`);
}

/** PgBouncer 1.21 or later (protocol-level prepared statements), or why not. */
async function usablePgBouncer(): Promise<string | undefined> {
  const binary = findPgBouncer();
  const fix = 'Run tools/fetch-pgbouncer.sh (or set PGBOUNCER_BIN).';
  if (binary === undefined) return `PgBouncer not found: every PgBouncer and failover test will be SKIPPED. ${fix}`;
  const [major, minor] = await pgBouncerVersion(binary);
  if (major < 1 || (major === 1 && minor < 21))
    return `PgBouncer ${major}.${minor} keeps no prepared statements in transaction mode (1.21 does): every PgBouncer and failover test will be SKIPPED. ${fix}`;
  return undefined;
}

// One PostgreSQL server for the whole run; each test file makes its own database in it.
export default async function setup(project: TestProject) {
  if (findPostgresBinaries() === undefined) {
    skipLoudly('PostgreSQL server binaries not found: every PostgreSQL test will be SKIPPED. Install them (apt-get install -y postgresql) or set PG_BIN_DIR.');
    project.provide('postgres', null);
    project.provide('pgbouncer', null);
    return;
  }
  const server = await PostgresServer.create();
  project.provide('postgres', server.shared);
  const pgbouncerProblem = await usablePgBouncer();
  if (pgbouncerProblem !== undefined) skipLoudly(pgbouncerProblem);
  const bouncer =
    pgbouncerProblem === undefined ? await PgBouncer.start({ targetPort: server.port, user: TEST_DB_USER, password: TEST_DB_PASSWORD }) : undefined;
  project.provide('pgbouncer', bouncer?.port ?? null);
  return async () => {
    await bouncer?.destroy();
    await server.destroy();
  };
}
