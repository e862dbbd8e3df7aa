import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { until } from '@wiki/test-support/wait';
import { backendUnavailable } from './support/backends.js';
import { client, metricValue } from '@wiki/test-support/http';
import { PostgresServer } from '@wiki/test-support/postgres';
import { startService, type ServiceProcess } from './support/service-process.js';

// During a failover the endpoint the service connects to can lead to a standby: a
// server that answers, and refuses every write (read_only_sql_transaction). A real hot
// standby of PostgreSQL 15 (pg_basebackup, streaming replication) stands for it here:
// writes must answer 503 with Retry-After, never 500; readiness must say the database
// is read-only, so the pod stops receiving traffic; the connection that met the
// refusal must leave the pool; and once the standby is promoted, writes go through.

describe.skipIf(backendUnavailable('postgres'))('a read-only database (a hot standby), then promoted', () => {
  let primary: PostgresServer;
  let standby: PostgresServer;
  let service: ServiceProcess;
  let databaseName: string;
  let userId: number;

  beforeAll(async () => {
    primary = await PostgresServer.create(); // its own servers: this test promotes one
    const url = await primary.createDatabase('readonly');
    databaseName = new URL(url).pathname.slice(1);
    // The schema and one user, written on the primary, before the standby is made from it.
    const writer = await startService({ DATABASE_URL: url, SHUTDOWN_DELAY_SECONDS: '0' });
    userId = (await client(writer.baseUrl).post('/users', { name: 'written on the primary' })).body.id;
    await writer.stop();
    standby = await primary.startStandby();
    const standbyUrl = new URL(url);
    standbyUrl.port = String(standby.port);
    // One connection, so the test can tell which one served a request. A standby
    // takes no migration (its schema is the primary's).
    service = await startService({ DATABASE_URL: standbyUrl.toString(), DB_POOL_MAX: '1', MIGRATE_ON_START: 'false', SHUTDOWN_DELAY_SECONDS: '0' });
  });
  afterAll(async () => {
    await service?.stop();
    await standby?.destroy();
    await primary?.destroy();
  });

  /** The process ids of the service's connections to the standby. */
  const connections = async () =>
    (
      await standby.query<{ pid: number }>(
        `SELECT pid FROM pg_stat_activity WHERE datname = '${databaseName}' AND backend_type = 'client backend' AND pid <> pg_backend_pid()`,
      )
    ).map((row) => row.pid);

  it('writes answer 503 with Retry-After, reads are served, readiness says read-only, and a connection that met the read-only server leaves the pool', async () => {
    const api = client(service.baseUrl);
    expect((await api.get(`/user/${userId}`)).body).toMatchObject({ id: userId, name: 'written on the primary' });
    const [before] = await connections();
    expect(before).toBeDefined();

    const write = await fetch(`${service.baseUrl}/users`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'refused' }),
    });
    expect(write.status).toBe(503);
    expect(write.headers.get('retry-after')).toBe('5');
    expect(await write.json()).toEqual({ detail: 'Database unavailable, try again shortly' });
    await until('the connection that took the refused write closed', 10_000, async () => !(await connections()).includes(before!));

    // Reads go on, on a new connection.
    expect((await api.get(`/user/${userId}`)).status).toBe(200);
    // Readiness says why, and drops the connection it checked with: otherwise a pod
    // whose pooled connections all lead to the old server would stay unready, with no
    // write ever refused to make it reconnect.
    const [checked] = await connections();
    const ready = await api.get('/ready');
    expect(ready.status).toBe(503);
    expect(ready.body).toEqual({ status: 'not ready', detail: 'database is read-only' });
    await until('the connection readiness checked with closed', 10_000, async () => !(await connections()).includes(checked!));
    const metrics = (await api.get('/metrics')).text;
    expect(metricValue(metrics, 'wiki_database_up')).toBe(1);
    expect(metricValue(metrics, 'wiki_database_read_only')).toBe(1);
    expect(metricValue(metrics, 'users_created_total')).toBe(0);
  });

  it('once promoted, the same service takes writes and is ready again', async () => {
    await standby.promote();
    const api = client(service.baseUrl);
    await until('a write taken after the promotion', 10_000, async () => (await api.post('/users', { name: 'after the promotion' })).status === 200);
    expect((await api.get('/ready')).status).toBe(200);
    expect(metricValue((await api.get('/metrics')).text, 'wiki_database_read_only')).toBe(0);
  });
});
