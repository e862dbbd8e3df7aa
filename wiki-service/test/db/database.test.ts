import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { pino } from 'pino';
import { describe, expect, it, onTestFinished } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { openDatabase, type DatabaseHandle } from '../../src/db/database.js';
import { migrateToLatest } from '../../src/db/migrate.js';
import { createUsersRepository } from '../../src/repositories/users.js';
import { sharedPostgres } from '../support/backends.js';
import { sleep } from '@wiki/test-support/wait';

// The embedded database's memory settings, and PostgreSQL's prepared statements (the
// figures are the bench's job).

describe('openDatabase on PGlite', () => {
  it('initialises a new folder, then runs with 8MB of shared buffers instead of 128MB', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'wiki-pglite-'));
    onTestFinished(() => rm(dir, { recursive: true, force: true }));
    const dataDir = join(dir, 'data');

    const database = await openDatabase({ kind: 'pglite', dataDir }, pino({ level: 'silent' }));
    try {
      expect(existsSync(join(dataDir, 'PG_VERSION'))).toBe(true);
      const { rows } = await sql<{ shared_buffers: string }>`SHOW shared_buffers`.execute(database.db);
      expect(rows[0]!.shared_buffers).toBe('8MB');
      // The usual settings of PGlite are kept (only shared_buffers is added to them).
      const searchPath = await sql<{ search_path: string }>`SHOW search_path`.execute(database.db);
      expect(searchPath.rows[0]!.search_path).toBe('public');
    } finally {
      await database.close();
    }
  });
});

describe.skipIf(sharedPostgres() === undefined)('openDatabase on PostgreSQL', () => {
  // One connection, so the statement listing below sees the session the repository used.
  async function openWith(preparedStatements: boolean) {
    const connectionString = await sharedPostgres()!.createDatabase();
    const database = await openDatabase(
      { kind: 'postgres', connectionString, poolMax: 1, connectTimeoutMs: 2000, queryTimeoutMs: 10_000, preparedStatements },
      pino({ level: 'silent' }),
    );
    onTestFinished(() => database.close());
    await migrateToLatest(database.db);
    return database;
  }
  const prepared = async (database: DatabaseHandle) =>
    (await sql<{ statement: string }>`SELECT statement FROM pg_prepared_statements`.execute(database.db)).rows.map((row) => row.statement);

  it('prepares each data query once per connection (DB_PREPARED_STATEMENTS, on by default)', async () => {
    const database = await openWith(true);
    const users = createUsersRepository(database.db);
    const created = await users.create('prepared');
    expect(await users.get(created.id)).toEqual(created);
    expect(await users.get(created.id)).toEqual(created);
    const statements = await prepared(database);
    expect(statements.filter((statement) => statement.startsWith('select "id", "name", "created_time" from "users" where "id" = $1'))).toHaveLength(1);
    expect(statements.some((statement) => statement.startsWith('insert into "users"'))).toBe(true);
    expect(loadConfig({ PGHOST: 'db' }).database).toMatchObject({ preparedStatements: true });
  });

  // A connection is never closed: had every query of a new text become a named
  // statement, a list that varies (IN (...)) or a sql.raw would grow it without bound.
  it("names only the repositories' fixed queries: queries whose text varies stay unnamed, and the statements stay bounded", async () => {
    const database = await openWith(true);
    const users = createUsersRepository(database.db);
    await users.create('named');
    const before = (await prepared(database)).length;
    for (let size = 1; size <= 40; size++) {
      const ids = Array.from({ length: size }, (_, i) => i + 1);
      await database.db.selectFrom('users').select('id').where('id', 'in', ids).execute();
      await sql.raw(`SELECT ${size} AS n`).execute(database.db);
    }
    const statements = await prepared(database);
    expect(statements.filter((statement) => statement.includes(' in ('))).toEqual([]);
    expect(statements).toHaveLength(before);
  });

  it("keeps idle connections open past pg's default idle timeout (10 s): no reconnecting, logging in and preparing again", { timeout: 30_000 }, async () => {
    const connectionString = await sharedPostgres()!.createDatabase();
    const name = new URL(connectionString).pathname.slice(1);
    const database = await openDatabase(
      { kind: 'postgres', connectionString, poolMax: 3, connectTimeoutMs: 2000, queryTimeoutMs: 10_000, preparedStatements: true },
      pino({ level: 'silent' }),
    );
    onTestFinished(() => database.close());
    // Three at once: three connections.
    await Promise.all([1, 2, 3].map(() => sql`SELECT pg_sleep(0.2)`.execute(database.db)));
    const backends = async () =>
      (await sharedPostgres()!.query<{ pid: number }>(`SELECT pid FROM pg_stat_activity WHERE datname = '${name}' ORDER BY pid`)).map((row) => row.pid);
    const before = await backends();
    expect(before).toHaveLength(3);
    await sleep(11_000); // the idle time itself is what is tested
    expect(await backends()).toEqual(before);
  });

  it("runs every session in UTC from its first query, whatever the database's own time zone", async () => {
    const connectionString = await sharedPostgres()!.createDatabase();
    const name = new URL(connectionString).pathname.slice(1);
    await sharedPostgres()!.query(`ALTER DATABASE "${name}" SET timezone TO 'Asia/Kolkata'`);
    const database = await openDatabase(
      { kind: 'postgres', connectionString, poolMax: 3, connectTimeoutMs: 2000, queryTimeoutMs: 10_000, preparedStatements: true },
      pino({ level: 'silent' }),
    );
    onTestFinished(() => database.close());
    // Three at once: each is the first query of a new connection.
    const zones = await Promise.all(
      [1, 2, 3].map(
        async () =>
          (await sql<{ zone: string; now: string }>`SELECT current_setting('TimeZone') AS zone, now() AS now, pg_sleep(0.1)`.execute(database.db)).rows[0]!,
      ),
    );
    expect(zones.map((row) => row.zone)).toEqual(['UTC', 'UTC', 'UTC']);
    for (const row of zones) expect(row.now).toMatch(/\+00:00$/);
  });

  it('prepares nothing with DB_PREPARED_STATEMENTS=false (for a pooler in transaction mode)', async () => {
    const database = await openWith(false);
    const users = createUsersRepository(database.db);
    await users.get((await users.create('unprepared')).id);
    expect(await prepared(database)).toEqual([]);
    expect(loadConfig({ DB_PREPARED_STATEMENTS: 'false', PGHOST: 'db' }).database).toMatchObject({ preparedStatements: false });
  });
});
