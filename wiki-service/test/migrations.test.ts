import { describe, expect, it } from 'vitest';
import { backendUnavailable, sharedPostgres } from './support/backends.js';
import { client } from '@wiki/test-support/http';
import { MIGRATE_SCRIPT, runNode, startService } from '@wiki/test-support/service';

// Replicas start together. Kysely's migrator takes a PostgreSQL advisory lock, so
// exactly one of them creates the schema and the others find it done.

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

  it('`npm run migrate` (dist/migrate.js) run twice at once: both exit 0, one applies', async () => {
    const server = sharedPostgres()!;
    const url = await server.createDatabase('migratecli');
    const runs = [runNode(MIGRATE_SCRIPT, { DATABASE_URL: url }), runNode(MIGRATE_SCRIPT, { DATABASE_URL: url })];
    const exits = await Promise.all(runs.map((run) => run.exited));
    expect(exits.map((exit) => exit.code)).toEqual([0, 0]);
    const messages = runs.map((run) => run.logLines().find((line) => 'applied' in line)?.msg).sort();
    expect(messages).toEqual(['migrations applied', 'schema up to date']);
  });
});
