import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { archiveSettings, barmanCloudMissing, baseBackup, objectStoreEnvironment, restoreInto, type BackupDestination } from '@wiki/test-support/barman-cloud';
import { client } from '@wiki/test-support/http';
import { OBJECT_STORE_ACCESS_KEY_ID, OBJECT_STORE_SECRET_ACCESS_KEY, ObjectStore } from '@wiki/test-support/object-store';
import { PostgresServer } from '@wiki/test-support/postgres';
import { startService, type ServiceProcess } from 'wiki-service/service-process';
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

// CloudNativePG 1.30's own query of pg_stat_archiver (config/manager/default-monitoring.yaml,
// "pg_stat_archiver"): its columns are the cnpg_pg_stat_archiver_* metrics the chart's
// archiving alerts read (rules/cloudnative-pg.yaml).
const CLOUDNATIVE_PG_ARCHIVER_QUERY = `SELECT archived_count
  , failed_count
  , COALESCE(EXTRACT(EPOCH FROM (pg_catalog.now() OPERATOR(pg_catalog.-) last_archived_time)), -1) AS seconds_since_last_archival
  , COALESCE(EXTRACT(EPOCH FROM (pg_catalog.now() OPERATOR(pg_catalog.-) last_failed_time)), -1) AS seconds_since_last_failure
  , COALESCE(EXTRACT(EPOCH FROM last_archived_time), -1) AS last_archived_time
  , COALESCE(EXTRACT(EPOCH FROM last_failed_time), -1) AS last_failed_time
  , COALESCE(CAST(CAST('x' OPERATOR(pg_catalog.||) pg_catalog.right(pg_catalog.split_part(last_archived_wal, '.', 1), 16) AS pg_catalog.bit(64)) AS pg_catalog.int8), -1) AS last_archived_wal_start_lsn
  , COALESCE(CAST(CAST('x' OPERATOR(pg_catalog.||) pg_catalog.right(pg_catalog.split_part(last_failed_wal, '.', 1), 16) AS pg_catalog.bit(64)) AS pg_catalog.int8), -1) AS last_failed_wal_start_lsn
  , EXTRACT(EPOCH FROM stats_reset) AS stats_reset_time
FROM pg_catalog.pg_stat_archiver`;

const skip = skipLoudly(postgresMissing() ?? barmanCloudMissing(), 'the point-in-time recovery tests are');
const WRITERS = 8;
// At the latest every 10 s, a segment is archived even if it is not full.
const ARCHIVE_TIMEOUT_SECONDS = 10;

describe.skipIf(skip)('point-in-time recovery through Barman Cloud and an S3 object store, under load', () => {
  let store: ObjectStore;
  // Each test's servers and services, stopped and removed after the file.
  const cleanups: Array<() => Promise<unknown>> = [];

  beforeAll(async () => {
    store = await ObjectStore.start();
  });
  afterAll(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
    await store?.destroy();
  });

  /** A PostgreSQL that archives its WAL to the store under `serverName`, with a database and two service processes on it. */
  async function archivedSource(serverName: string, withServices = true, accessKeyId = OBJECT_STORE_ACCESS_KEY_ID) {
    const destination: BackupDestination = {
      endpoint: store.endpoint,
      url: store.url('wiki'),
      serverName,
      accessKeyId,
      secretAccessKey: OBJECT_STORE_SECRET_ACCESS_KEY,
    };
    const source = await PostgresServer.create({
      durable: true,
      settings: ['max_connections=200', ...archiveSettings(destination, ARCHIVE_TIMEOUT_SECONDS)],
      environment: objectStoreEnvironment(destination),
    });
    cleanups.push(() => source.destroy());
    const databaseUrl = await source.createDatabase('pitr');
    const services: ServiceProcess[] = [];
    for (let pod = 0; withServices && pod < 2; pod++) {
      const service = await startService({ DATABASE_URL: databaseUrl, SHUTDOWN_DELAY_SECONDS: '0', LOG_LEVEL: 'warn' });
      cleanups.push(() => service.stop());
      services.push(service);
    }
    return { destination, source, databaseUrl, databaseName: new URL(databaseUrl).pathname.slice(1), services };
  }

  /** Everything written so far into the archive: the current segment is closed, and resolves once PostgreSQL reports it archived. */
  async function archiveEverything(source: PostgresServer): Promise<void> {
    const [{ segment }] = (await source.query<{ segment: string }>('SELECT pg_walfile_name(pg_switch_wal()) AS segment')) as [{ segment: string }];
    await until(`WAL segment ${segment} archived`, 150_000, async () => {
      const [archiver] = await source.query<{ last_archived_wal: string | null }>('SELECT last_archived_wal FROM pg_stat_archiver');
      return archiver?.last_archived_wal != null && archiver.last_archived_wal >= segment ? true : undefined;
    });
  }

  /** A new server restored from `destination`'s backup `backupName`, to `targetTime` or to the end of the archive; resolves once it is promoted. */
  async function restore(destination: BackupDestination, backupName: string, targetTime?: string) {
    const started = Date.now();
    const server = await PostgresServer.create({
      durable: true,
      environment: objectStoreEnvironment(destination),
      initialise: (empty) => restoreInto(empty, destination, backupName, targetTime),
    });
    cleanups.push(() => server.destroy());
    await until('the restored server promoted', 300_000, async () => {
      const [row] = await server.query<{ in_recovery: boolean }>('SELECT pg_is_in_recovery() AS in_recovery');
      return row?.in_recovery === false ? true : undefined;
    });
    return { server, restoreMs: Date.now() - started };
  }

  it(
    'restored to just before a mistaken DELETE: every write acknowledged before it is there, the deleted rows are back, nothing after it is, and the API serves from it',
    { timeout: 300_000 },
    async () => {
      const { destination, source, databaseUrl, databaseName, services } = await archivedSource('wiki-db');
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

      await archiveEverything(source);
      const { server: restored, restoreMs } = await restore(destination, 'under-load', targetTime);
      figures.push(`restore to ${targetTime}: ${restoreMs} ms`);

      // Every write acknowledged before the target is there, exactly as acknowledged.
      const beforeIt = load.acknowledgedBefore(beforeTarget);
      expect(beforeIt.users.size).toBeGreaterThan(100);
      expect(await missingWrites(beforeIt, (text) => restored.query(text, databaseName))).toEqual({ users: [], posts: [] });
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

  it(
    'the volume lost outright: restored to the end of the archive, only the last writes are lost, and never one written before a write that is kept',
    { timeout: 300_000 },
    async () => {
      const { destination, source, databaseName, services } = await archivedSource('wiki-db-lost');
      const load = startWriters(
        services.map((service) => service.baseUrl),
        WRITERS,
        10_000,
      );
      let lostAt: number;
      try {
        await until('writes under way', 60_000, async () => (load.writes() >= 200 ? true : undefined));
        await baseBackup(source, destination, 'before-the-loss');
        // Writes go on for longer than archive_timeout, so that WAL is archived on time
        // as well as when full, then the server and its volume are gone at once.
        const backedUpAt = Date.now();
        await until('two archive_timeouts of writes', 60_000, async () => (Date.now() - backedUpAt > 2 * ARCHIVE_TIMEOUT_SECONDS * 1000 ? true : undefined));
        lostAt = Date.now();
        source.kill();
      } finally {
        await load.stop();
      }
      expect(load.unexpected).toEqual([]);

      const { server: restored, restoreMs } = await restore(destination, 'before-the-loss');
      const lost = await missingWrites(load.acknowledged, (text) => restored.query(text, databaseName));
      // The archive is a prefix of the history: a write is lost only if every write kept
      // was committed before it. Hence no kept write was sent after a lost one was acknowledged.
      const lostTimings = [...lost.users.map((id) => load.timings.users.get(id)!), ...lost.posts.map((id) => load.timings.posts.get(id)!)];
      const keptTimings = [
        ...[...load.timings.users].filter(([id]) => !lost.users.includes(id)).map(([, timing]) => timing),
        ...[...load.timings.posts].filter(([id]) => !lost.posts.includes(id)).map(([, timing]) => timing),
      ];
      const firstLostAck = Math.min(...lostTimings.map((timing) => timing.acknowledgedAt));
      const keptAfterALostOne = keptTimings.filter((timing) => timing.sentAt > firstLostAck);
      expect(keptAfterALostOne).toEqual([]);
      const lostSeconds = lostTimings.length === 0 ? 0 : (lostAt - firstLostAck) / 1000;
      console.log(
        `volume lost: ${lost.users.length} users and ${lost.posts.length} posts of ${load.acknowledged.users.size} and ${load.acknowledged.posts.size} acknowledged were lost, ` +
          `the last ${lostSeconds.toFixed(1)} s of writes (archive_timeout ${ARCHIVE_TIMEOUT_SECONDS} s); restore to the end of the archive: ${restoreMs} ms`,
      );
    },
  );

  it('restore time against the size of the database: about 30 MB and about 250 MB, every row back', { timeout: 600_000 }, async () => {
    const figures: string[] = [];
    for (const [label, users] of [
      ['small', 10_000],
      ['large', 1_500_000],
    ] as const) {
      const { destination, source, databaseName } = await archivedSource(`wiki-db-${label}`, false);
      await startService({ DATABASE_URL: source.url(databaseName), SHUTDOWN_DELAY_SECONDS: '0', LOG_LEVEL: 'warn' }).then((service) => service.stop());
      await source.query(`INSERT INTO users (name) SELECT 'user ' || n || repeat('x', 80) FROM generate_series(1, ${users}) AS n`, databaseName);
      const [{ bytes }] = (await source.query<{ bytes: string }>('SELECT sum(pg_database_size(datname))::text AS bytes FROM pg_database')) as [
        { bytes: string },
      ];
      const backupStarted = Date.now();
      await baseBackup(source, destination, label);
      const backupMs = Date.now() - backupStarted;
      await archiveEverything(source);
      const { server: restored, restoreMs } = await restore(destination, label);
      const [{ count }] = (await restored.query<{ count: string }>('SELECT count(*)::text AS count FROM users', databaseName)) as [{ count: string }];
      expect(Number(count)).toBe(users);
      figures.push(`${label}: ${(Number(bytes) / 1024 / 1024).toFixed(0)} MB in all databases, base backup ${backupMs} ms, restore ${restoreMs} ms`);
    }
    console.log(figures.join('\n'));
  });

  /**
   * PostgreSQL's archiver as CloudNativePG's exporter reports it (cnpg_pg_stat_archiver_*,
   * the query below) with the WAL files waiting in pg_wal (cnpg_collector_pg_wal_archive_status
   * value "ready"), and whether the chart's CloudnativePgWalArchivingFailing alert
   * condition holds on those figures: its last failure after its last success.
   */
  async function archiver(source: PostgresServer) {
    const [row] = (await source.query<{ archived_count: string; failed_count: string; last_archived_time: string; last_failed_time: string }>(
      CLOUDNATIVE_PG_ARCHIVER_QUERY,
    )) as [{ archived_count: string; failed_count: string; last_archived_time: string; last_failed_time: string }];
    const [waiting] = (await source.query<{ count: string }>("SELECT count(*)::text AS count FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'")) as [
      { count: string },
    ];
    return {
      archived: Number(row.archived_count),
      failed: Number(row.failed_count),
      waiting: Number(waiting.count),
      archivingFailingAlert: Number(row.last_failed_time) > Number(row.last_archived_time),
    };
  }

  it(
    'the object store down for a minute under the writers: archiving fails and retries, WAL waits in pg_wal, and once the store is back every acknowledged write is archived and restorable',
    { timeout: 300_000 },
    async () => {
      const { destination, source, databaseName, services } = await archivedSource('wiki-db-store-down');
      await baseBackup(source, destination, 'before-the-outage');
      const load = startWriters(
        services.map((service) => service.baseUrl),
        WRITERS,
        10_000,
      );
      let during: Awaited<ReturnType<typeof archiver>>, catchUpMs: number;
      try {
        await until('writes under way', 60_000, async () => (load.writes() >= 200 ? true : undefined));
        await store.stop();
        const stoppedAt = Date.now();
        await until('a minute of the store down', 90_000, async () => (Date.now() - stoppedAt >= 60_000 ? true : undefined));
        during = await archiver(source);
        await store.start();
        const backAt = Date.now();
        await archiveEverything(source);
        catchUpMs = Date.now() - backAt;
      } finally {
        await load.stop();
      }
      expect(load.unexpected, 'the writes never noticed').toEqual([]);
      expect(during.failed, 'archiving failed while the store was down').toBeGreaterThan(0);
      expect(during.waiting, 'WAL segments waited in pg_wal').toBeGreaterThan(0);
      // The chart's alert, on the operator's query of this very server: on during the
      // outage, off once everything waiting is archived.
      expect(during.archivingFailingAlert).toBe(true);
      expect((await archiver(source)).archivingFailingAlert).toBe(false);
      // Everything acknowledged, archived after the outage, is in a restore.
      await archiveEverything(source);
      source.kill();
      const { server: restored } = await restore(destination, 'before-the-outage');
      expect(await missingWrites(load.acknowledged, (text) => restored.query(text, databaseName))).toEqual({ users: [], posts: [] });
      console.log(
        `object store down 60 s: ${during.failed} failed archive attempts, ${during.waiting} WAL segments waiting in pg_wal; ` +
          `all archived ${catchUpMs} ms after the store was back; ${load.acknowledged.users.size} users and ${load.acknowledged.posts.size} posts acknowledged, all restored`,
      );
    },
  );

  it("a wrong credential: archiving fails with the store's refusal in PostgreSQL's log (and no secret there), and a base backup exits non-zero saying it", async () => {
    const { destination, source } = await archivedSource('wiki-db-wrong-key', false, 'NOT-A-KEY');
    await source.query('SELECT pg_switch_wal()');
    await source.query('CREATE TABLE something (id int)');
    await source.query('SELECT pg_switch_wal()');
    await until('a failed archive attempt', 60_000, async () => ((await archiver(source)).failed > 0 ? true : undefined));
    expect((await archiver(source)).archived).toBe(0);
    expect((await archiver(source)).archivingFailingAlert).toBe(true);
    // S3 answers the first request (a HEAD of the bucket, which has no body) 403 Forbidden.
    expect(source.log()).toMatch(/Barman cloud WAL archiver exception: .*\(403\).*Forbidden/);
    expect(source.log()).toMatch(/archive command failed with exit code/);
    // PostgreSQL logs the failed command whole: the credentials are in the environment, not in it.
    expect(source.log()).not.toContain('AWS_SECRET_ACCESS_KEY');
    await expect(baseBackup(source, destination, 'refused')).rejects.toThrow(/\(403\).*Forbidden|InvalidAccessKeyId/);
  });
});
