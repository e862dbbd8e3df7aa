import type { TestProject } from 'vitest/node';
import { findPostgresBinaries, PostgresServer, type SharedPostgres } from '@wiki/test-support/postgres';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The shared throwaway PostgreSQL, or null when its binaries are missing. */
    postgres: SharedPostgres | null;
  }
}

// One PostgreSQL server for the whole run; each test file makes its own database in it.
export default async function setup(project: TestProject) {
  if (findPostgresBinaries() === undefined) {
    const message =
      'PostgreSQL server binaries not found: every PostgreSQL test will be SKIPPED. ' + 'Install them (apt-get install -y postgresql) or set PG_BIN_DIR.';
    if (process.env.CI) throw new Error(`${message} CI must run them.`);
    console.warn(`\n${'!'.repeat(80)}\n!! ${message}\n${'!'.repeat(80)}\n`);
    project.provide('postgres', null);
    return;
  }
  const server = await PostgresServer.create();
  project.provide('postgres', server.shared);
  return async () => {
    await server.destroy();
  };
}
