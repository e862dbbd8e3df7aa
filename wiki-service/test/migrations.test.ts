import { describe, expect, it } from 'vitest';
import { backendUnavailable, sharedPgBouncerPort, sharedPostgres } from './support/backends.js';
import { client } from '@wiki/test-support/http';
import { MIGRATE_SCRIPT, runNode, startService } from './support/service-process.js';
import { until } from '@wiki/test-support/wait';
import pg from 'pg';
import { MigrationLockInTransaction } from '../src/db/migrate.js';

// Replicas start together. The migrations run under a PostgreSQL advisory lock, so
// exactly one of them creates the schema and the others find it done; directly, and
// through a pooler in transaction mode, where the lock must be taken and released in
// the migrations' own transaction (src/db/migrate.ts).

describe.skipIf(backendUnavailable('postgres'))('migrations against one empty PostgreSQL', () => {
  it('two servers starting at the same moment both come up, and the schema is created once', async () => {
    const server = sharedPostgres()!;
    const url = await server.createDatabase('migrate');
    const env = { DATABASE_URL: url, SHUTDOWN_DELAY_SECONDS: '0' };

    const [a, b] = await Promise.all([startService(env), startService(env)]);
    try {
      const appliedBy = [a, b].filter((service) => service.logLines().some((line) => line.msg === 'migrations applied'));
      expect(appliedBy).toHaveLength(1);
      const database = new URL(url).pathname.slice(1);
      const migrations = await server.query<{ name: string }>('SELECT name FROM kysely_migration', database);
      expect(migrations.map((row) => row.name)).toEqual(['0001_create_users_and_posts']);
      // Both serve, on the same data.
      const user = (await client(a.baseUrl).post('/users', { name: 'shared' })).body;
      expect((await client(b.baseUrl).get(`/user/${user.id}`)).body).toEqual(user);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });

  // Two runs started together may still run one after the other, and pass without the
  // lock ever mattering. Here the test holds the migrations' lock until both are seen
  // waiting for it, so they are released together and contend for real.
  it('`npm run migrate` (dist/migrate.js) run twice at once, both seen waiting on the lock: both exit 0, one applies', async () => {
    const server = sharedPostgres()!;
    const url = await server.createDatabase('migratecli');
    const database = new URL(url).pathname.slice(1);
    const holder = new pg.Client({ connectionString: url });
    await holder.connect();
    let runs: ReturnType<typeof runNode>[];
    try {
      await holder.query('BEGIN');
      await holder.query(`SELECT pg_advisory_xact_lock(${MigrationLockInTransaction.LOCK_ID})`);
      runs = [runNode(MIGRATE_SCRIPT, { DATABASE_URL: url }), runNode(MIGRATE_SCRIPT, { DATABASE_URL: url })];
      await until('both runs waiting on the migrations lock', 30_000, async () => {
        const [row] = await server.query<{ waiting: string }>(
          `SELECT count(*)::text AS waiting FROM pg_locks l JOIN pg_stat_activity a USING (pid) WHERE l.locktype = 'advisory' AND NOT l.granted AND a.datname = '${database}'`,
        );
        return row!.waiting === '2' ? true : undefined;
      });
    } finally {
      await holder.query('COMMIT').catch(() => undefined);
      await holder.end();
    }
    const exits = await Promise.all(runs.map((run) => run.exited));
    expect(exits.map((exit) => exit.code)).toEqual([0, 0]);
    const messages = runs.map((run) => run.logLines().find((line) => 'applied' in line)?.msg).sort();
    expect(messages).toEqual(['migrations applied', 'schema up to date']);
  });
});

describe.skipIf(backendUnavailable('postgres') || backendUnavailable('pgbouncer'))('migrations through PgBouncer in transaction mode', () => {
  // Kysely's own lock (a session lock, then a transaction, then an unlock, each free to
  // land on another server connection) failed 5 of 8 such rounds when measured: a migration that
  // exited 1, or a lock left held by an idle server connection.
  it.each([1, 2, 3, 4, 5, 6])('four `npm run migrate` at once, round %i: all exit 0, one applies, no advisory lock is left held', async () => {
    const server = sharedPostgres()!;
    const url = new URL(await server.createDatabase('migratebouncer'));
    url.port = String(sharedPgBouncerPort());
    const runs = [1, 2, 3, 4].map(() => runNode(MIGRATE_SCRIPT, { DATABASE_URL: url.toString() }));
    const exits = await Promise.all(runs.map((run) => run.exited));
    expect(
      exits.map((exit) => exit.code),
      runs.map((run) => run.output()).join('\n'),
    ).toEqual([0, 0, 0, 0]);
    const messages = runs.map((run) => run.logLines().find((line) => 'applied' in line)?.msg).sort();
    expect(messages).toEqual(['migrations applied', 'schema up to date', 'schema up to date', 'schema up to date']);
    const database = url.pathname.slice(1);
    const held = await server.query(
      `SELECT l.pid, a.state FROM pg_locks l JOIN pg_stat_activity a USING (pid) WHERE l.locktype = 'advisory' AND a.datname = '${database}'`,
    );
    expect(held).toEqual([]);
  });
});
