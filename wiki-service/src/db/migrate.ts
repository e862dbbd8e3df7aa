import { Migrator, type Kysely, type Migration, type MigrationProvider } from 'kysely';
import * as createUsersAndPosts from './migrations/0001_create_users_and_posts.js';

// Migrations are listed here in code rather than read from a folder at run time, so
// they travel inside the compiled output and their order is explicit.
// Never edit a migration that has been released: add the next one.
const MIGRATIONS: Record<string, Migration> = {
  '0001_create_users_and_posts': createUsersAndPosts,
};

const provider: MigrationProvider = {
  getMigrations: async () => MIGRATIONS,
};

/**
 * Brings the schema up to date. Kysely's Migrator holds a PostgreSQL advisory lock
 * while it runs, so replicas starting together apply each migration exactly once.
 * Returns the names of the migrations this call applied.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- migrations predate the current table types
export async function migrateToLatest(db: Kysely<any>): Promise<string[]> {
  const migrator = new Migrator({ db, provider });
  const { error, results } = await migrator.migrateToLatest();
  if (error !== undefined) {
    const failed = results?.find((result) => result.status === 'Error')?.migrationName;
    throw new Error(`migration ${failed ?? '(unknown)'} failed: ${error instanceof Error ? error.message : JSON.stringify(error)}`, { cause: error });
  }
  return (results ?? []).map((result) => result.migrationName);
}
