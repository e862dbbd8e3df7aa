import { Migrator, PostgresAdapter, sql, type Kysely, type Migration, type MigrationProvider } from 'kysely';
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
 * Where the migrator takes its lock: inside the one transaction that holds every
 * migration, so that the lock ends with it.
 *
 * Kysely's own PostgreSQL adapter takes a session-level advisory lock, runs the
 * migrations in a transaction, then unlocks: three round trips that a pooler in
 * transaction mode (PgBouncer, CloudNativePG's Pooler) may send to three different
 * server connections. Measured through PgBouncer 1.26 with four migrations started at
 * once: in 2 runs of 5, two of them failed, and in 4 of 5 a lock was left held by an
 * idle server connection, where the next start would wait for it for an hour.
 *
 * Here the migrator's "acquire" begins the transaction and takes a transaction-level
 * lock (pg_advisory_xact_lock), the migrations run in it (the migrator's own
 * transactions are off), and "release" commits: one transaction, one server
 * connection, and the lock cannot outlive it. After a failed migration the transaction
 * is aborted, and COMMIT rolls it back: nothing of it stays. The service's dialects
 * (database.ts, pglite-dialect.ts) use this adapter; migrateToLatest refuses others.
 */
export class MigrationLockInTransaction extends PostgresAdapter {
  // Kysely's own lock id, so that a replica of an older release starting beside a
  // newer one still waits for it.
  static readonly LOCK_ID = 3853314791062309107n;

  override async acquireMigrationLock(db: Kysely<unknown>): Promise<void> {
    await sql`BEGIN`.execute(db);
    await sql`SELECT pg_advisory_xact_lock(${sql.lit(MigrationLockInTransaction.LOCK_ID)})`.execute(db);
  }

  override async releaseMigrationLock(db: Kysely<unknown>): Promise<void> {
    await sql`COMMIT`.execute(db);
  }
}

/**
 * Brings the schema up to date. The migrations run under an advisory lock, in one
 * transaction (MigrationLockInTransaction), so replicas starting together apply each
 * migration exactly once, directly or through a pooler in transaction mode.
 * Returns the names of the migrations this call applied.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- migrations predate the current table types
export async function migrateToLatest(db: Kysely<any>): Promise<string[]> {
  if (!(db.getExecutor().adapter instanceof MigrationLockInTransaction)) {
    throw new Error("migrateToLatest needs the service's database dialect (its adapter takes the lock inside the migration transaction)");
  }
  const migrator = new Migrator({ db, provider, disableTransactions: true });
  const { error, results } = await migrator.migrateToLatest();
  if (error !== undefined) {
    const failed = results?.find((result) => result.status === 'Error')?.migrationName;
    throw new Error(`migration ${failed ?? '(unknown)'} failed: ${error instanceof Error ? error.message : JSON.stringify(error)}`, { cause: error });
  }
  return (results ?? []).map((result) => result.migrationName);
}
