import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { until } from '@wiki/test-support/wait';
import { backendUnavailable } from './support/backends.js';
import { client, metricValue, type Client } from '@wiki/test-support/http';
import { PostgresServer } from '@wiki/test-support/postgres';
import { startService, type ServiceProcess } from './support/service-process.js';

// PostgreSQL goes away while the service runs, then comes back. The service must
// fail fast and clearly meanwhile, stay alive, and recover on its own.

describe.skipIf(backendUnavailable('postgres'))('PostgreSQL unreachable, then back', () => {
  let postgres: PostgresServer;
  let service: ServiceProcess;
  let api: Client;

  beforeAll(async () => {
    postgres = await PostgresServer.create(); // its own server: this test stops it
    service = await startService({
      DATABASE_URL: await postgres.createDatabase(),
      DB_CONNECT_TIMEOUT_SECONDS: '1',
      SHUTDOWN_DELAY_SECONDS: '0',
    });
    api = client(service.baseUrl);
  });
  afterAll(async () => {
    await service?.stop();
    await postgres?.destroy();
  });

  // A request that hangs fails the test instead of answering late. A new signal per
  // request: AbortSignal.timeout() starts counting when it is created.
  const quickly = () => ({ headers: {}, signal: AbortSignal.timeout(5000) });

  it('answers 503 instead of hanging (a request unanswered after 5 s fails the test), keeps liveness, loses readiness, and recovers by itself', async () => {
    const user = (await api.post('/users', { name: 'before outage' })).body;
    const counted = metricValue((await api.get('/metrics')).text, 'users_created_total');
    expect(metricValue((await api.get('/metrics')).text, 'wiki_database_up')).toBe(1);

    await postgres.stop();

    for (const attempt of [1, 2, 3]) {
      const read = await fetch(`${service.baseUrl}/user/${user.id}`, quickly());
      expect(read.status, `read attempt ${attempt}`).toBe(503);
      expect(await read.json()).toEqual({ detail: 'Database unavailable, try again shortly' });
      expect(read.headers.get('retry-after')).toBe('5');
    }
    const write = await fetch(`${service.baseUrl}/users`, {
      ...quickly(),
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'during outage' }),
    });
    expect(write.status).toBe(503);

    const ready = await fetch(`${service.baseUrl}/ready`, quickly());
    expect(ready.status).toBe(503);
    expect(await ready.json()).toEqual({ status: 'not ready', detail: 'database unreachable' });
    expect((await fetch(`${service.baseUrl}/health`, quickly())).status).toBe(200);
    // What Prometheus sees: the same check as readiness, at every scrape.
    expect(metricValue(await (await fetch(`${service.baseUrl}/metrics`, quickly())).text(), 'wiki_database_up')).toBe(0);
    // The failed write was not counted.
    expect(metricValue((await api.get('/metrics')).text, 'users_created_total')).toBe(counted);

    await postgres.start();

    // No restart of the service: its pool opens new connections as they are needed.
    await until('the user readable again', 20_000, async () => (await api.get(`/user/${user.id}`)).status === 200);
    expect((await api.get('/ready')).status).toBe(200);
    expect((await api.get(`/user/${user.id}`)).body).toEqual(user);
    expect((await api.post('/users', { name: 'after outage' })).status).toBe(200);
    expect(metricValue((await api.get('/metrics')).text, 'wiki_database_up')).toBe(1);
    expect(service.exit()).toBeUndefined();
  });

  // How fast is the benchmarks' business; what is asserted is that both answer, within
  // quickly()'s bound, instead of hanging with the database (the probe and the scrape
  // would time out, and the pod look dead rather than unready).
  it('a database that hangs is reported down: /ready answers 503, /metrics answers with wiki_database_up 0', async () => {
    await postgres.setFrozen(true);
    try {
      for (const path of ['/ready', '/metrics']) {
        const started = Date.now();
        const response = await fetch(`${service.baseUrl}${path}`, quickly());
        const text = await response.text();
        console.log(`${path} with the database frozen: ${response.status} after ${Date.now() - started} ms`);
        // Readiness says 503; the scrape succeeds and reports the database down.
        const answer = path === '/ready' ? response.status : metricValue(text, 'wiki_database_up');
        expect(answer, path).toBe(path === '/ready' ? 503 : 0);
      }
    } finally {
      await postgres.setFrozen(false);
    }
    // The pool's stalled connections time out (DB_QUERY_TIMEOUT_SECONDS, 10 s) and are replaced.
    await until('wiki_database_up back to 1', 30_000, async () => metricValue((await api.get('/metrics')).text, 'wiki_database_up') === 1, { intervalMs: 250 });
    expect((await api.get('/ready')).status).toBe(200);
  });
});
