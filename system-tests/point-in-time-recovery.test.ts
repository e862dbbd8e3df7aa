import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { archiveSettings, barmanCloudMissing, baseBackup, restoreInto, type BackupDestination } from '@wiki/test-support/barman-cloud';
import { client } from '@wiki/test-support/http';
import { OBJECT_STORE_ACCESS_KEY_ID, OBJECT_STORE_SECRET_ACCESS_KEY, ObjectStore } from '@wiki/test-support/object-store';
import { PostgresServer } from '@wiki/test-support/postgres';
import { startService, type ServiceProcess } from '@wiki/test-support/service';
import { until } from '@wiki/test-support/wait';
import { missingWrites, startWriters } from '@wiki/test-support/writers';
import { postgresMissing } from './support/chart-env.js';
import { skipLoudly } from './support/skip.js';

// Point-in-time recovery with the programs CloudNativePG's Barman Cloud plugin runs:
// PostgreSQL archives every WAL segment to an S3 object store (barman-cloud-wal-archive
// as archive_command), a base backup is taken while 8 writers write through two
// service processes (barman-cloud-backup), and at a recorded moment someone deletes
// half the posts by mistake. The recovery is what the operator does for a Cluster
// bootstrapped from the object store with a target time: barman-cloud-restore into an
// empty data folder, then WAL replayed through barman-cloud-wal-restore up to just
// before the DELETE.

const skip = skipLoudly(postgresMissing() ?? barmanCloudMissing(), 'the point-in-time recovery tests are');
const WRITERS = 8;
// At the latest every 10 s, a segment is archived even if it is not full.
const ARCHIVE_TIMEOUT_SECONDS = 10;

describe.skipIf(skip)('point-in-time recovery through Barman Cloud and an S3 object store, under load', () => {
  let store: ObjectStore;
  let destination: BackupDestination;
  let source: PostgresServer;
  let databaseUrl: string;
  let databaseName: string;
  const services: ServiceProcess[] = [];
  let restored: PostgresServer | undefined;

  beforeAll(async () => {
    store = await ObjectStore.start();
    destination = {
      endpoint: store.endpoint,
      url: store.url('wiki'),
      serverName: 'wiki-db',
      accessKeyId: OBJECT_STORE_ACCESS_KEY_ID,
      secretAccessKey: OBJECT_STORE_SECRET_ACCESS_KEY,
    };
    source = await PostgresServer.create({ durable: true, settings: ['max_connections=200', ...archiveSettings(destination, ARCHIVE_TIMEOUT_SECONDS)] });
    databaseUrl = await source.createDatabase('pitr');
    databaseName = new URL(databaseUrl).pathname.slice(1);
    for (let pod = 0; pod < 2; pod++) services.push(await startService({ DATABASE_URL: databaseUrl, SHUTDOWN_DELAY_SECONDS: '0', LOG_LEVEL: 'warn' }));
  });
  afterAll(async () => {
    await Promise.all(services.map((service) => service.stop()));
    await restored?.destroy();
    await source?.destroy();
    await store?.destroy();
  });

  it(
    'restored to just before a mistaken DELETE: every write acknowledged before it is there, the deleted rows are back, nothing after it is, and the API serves from it',
    { timeout: 300_000 },
    async () => {
      const load = startWriters(
        services.map((service) => service.baseUrl),
        WRITERS,
        10_000,
      );
      const writesReach = (count: number) => until(`${count} writes`, 60_000, async () => (load.writes() >= count ? true : undefined));
      let targetTime: string, beforeTarget: number, afterTarget: number, deleted: number[];
      const figures: string[] = [];
      try {
        await writesReach(200);
        const backupStarted = Date.now();
        await baseBackup(source, destination, 'under-load');
        figures.push(`base backup under load: ${Date.now() - backupStarted} ms`);
        await writesReach(load.writes() + 200);

        // The target: the server's clock just before the mistake. Writes acknowledged
        // before it was read committed before it; writes sent after it returned
        // committed after it.
        beforeTarget = Date.now();
        [{ target: targetTime }] = (await source.query<{ target: string }>(
          "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00' AS target",
        )) as [{ target: string }];
        afterTarget = Date.now();
        deleted = (await source.query<{ id: number }>('DELETE FROM posts WHERE id % 2 = 0 RETURNING id', databaseName)).map((row) => row.id);
        await writesReach(load.writes() + 200);
      } finally {
        await load.stop();
      }
      expect(load.unexpected).toEqual([]);
      expect(deleted.length).toBeGreaterThan(100);

      // Everything up to now into the archive: the current segment is closed, and the
      // test waits until PostgreSQL reports it archived.
      const [{ segment }] = (await source.query<{ segment: string }>('SELECT pg_walfile_name(pg_switch_wal()) AS segment')) as [{ segment: string }];
      await until(`WAL segment ${segment} archived`, 60_000, async () => {
        const [archiver] = await source.query<{ last_archived_wal: string | null }>('SELECT last_archived_wal FROM pg_stat_archiver');
        return archiver !== undefined && archiver.last_archived_wal !== null && archiver.last_archived_wal >= segment ? true : undefined;
      });

      const restoreStarted = Date.now();
      restored = await PostgresServer.create({ durable: true, initialise: (server) => restoreInto(server, destination, 'under-load', targetTime) });
      await until('the restored server promoted at the target', 120_000, async () => {
        const [row] = await restored!.query<{ in_recovery: boolean }>('SELECT pg_is_in_recovery() AS in_recovery');
        return row?.in_recovery === false ? true : undefined;
      });
      figures.push(`restore to ${targetTime}: ${Date.now() - restoreStarted} ms`);

      // Every write acknowledged before the target is there, exactly as acknowledged.
      const beforeIt = load.acknowledgedBefore(beforeTarget);
      expect(beforeIt.users.size).toBeGreaterThan(100);
      expect(await missingWrites(beforeIt, (text) => restored!.query(text, databaseName))).toEqual({ users: [], posts: [] });
      // The posts the DELETE removed are back (those committed before the target).
      const restoredPosts = new Set((await restored.query<{ id: number }>('SELECT id FROM posts', databaseName)).map((row) => row.id));
      const deletedBeforeTarget = deleted.filter((id) => beforeIt.posts.has(id));
      expect(deletedBeforeTarget.length).toBeGreaterThan(50);
      expect(deletedBeforeTarget.filter((id) => !restoredPosts.has(id))).toEqual([]);
      // Nothing written after the target is.
      const restoredUsers = new Set((await restored.query<{ id: number }>('SELECT id FROM users', databaseName)).map((row) => row.id));
      const usersAfter = [...load.timings.users].filter(([, timing]) => timing.sentAt > afterTarget).map(([id]) => id);
      const postsAfter = [...load.timings.posts].filter(([, timing]) => timing.sentAt > afterTarget).map(([id]) => id);
      expect(usersAfter.length).toBeGreaterThan(50);
      expect(usersAfter.filter((id) => restoredUsers.has(id))).toEqual([]);
      expect(postsAfter.filter((id) => restoredPosts.has(id))).toEqual([]);

      // The API serves from the restored server, and new ids go on past the restored ones.
      const restoredUrl = new URL(databaseUrl);
      restoredUrl.port = String(restored.port);
      const api = await startService({ DATABASE_URL: restoredUrl.toString(), SHUTDOWN_DELAY_SECONDS: '0' });
      try {
        const [someUser] = [...beforeIt.users];
        expect((await client(api.baseUrl).get(`/user/${someUser![0]}`)).body).toMatchObject({ id: someUser![0], name: someUser![1] });
        const created = await client(api.baseUrl).post('/users', { name: 'after the recovery' });
        expect(created.status).toBe(200);
        expect(created.body.id).toBeGreaterThan(Math.max(...restoredUsers));
      } finally {
        await api.stop();
      }
      console.log(
        [
          ...figures,
          `acknowledged before the target: ${beforeIt.users.size} users, ${beforeIt.posts.size} posts; deleted by mistake: ${deleted.length} posts`,
        ].join('\n'),
      );
    },
  );
});
