import { request as httpRequest } from 'node:http';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { until } from '@wiki/test-support/wait';
import { BACKENDS, backendUnavailable } from './support/backends.js';
import { client } from '@wiki/test-support/http';
import { serviceEnvFor } from './support/app.js';
import { PostgresServer } from '@wiki/test-support/postgres';
import { startService } from './support/service-process.js';

// Kubernetes sends SIGTERM and, at the same time, starts removing the pod from the
// Service's endpoints. The service must keep serving until that has happened, finish
// what it started, and exit 0; nothing acknowledged may be lost.

const SHUTDOWN_DELAY_SECONDS = 1.5;

/**
 * Starts a POST whose body arrives in two halves. Resolves once the server has the
 * request: it asks with `Expect: 100-continue`, and Node answers "100 Continue" when
 * it has parsed the headers and handed the request to the app. Call `finish` to send
 * the rest.
 */
async function startSlowPost(baseUrl: string, path: string, body: string): Promise<{ finish(): Promise<{ status: number; body: any }> }> {
  const half = Math.floor(body.length / 2);
  const url = new URL(path, baseUrl);
  let settle: (value: { status: number; body: any }) => void;
  let fail: (error: Error) => void;
  const done = new Promise<{ status: number; body: any }>((resolve, reject) => ((settle = resolve), (fail = reject)));
  const headers = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), expect: '100-continue' };
  const req = httpRequest({ host: url.hostname, port: url.port, path: url.pathname, method: 'POST', agent: false, headers }, (res) => {
    let text = '';
    res.on('data', (chunk) => (text += chunk));
    res.on('end', () => settle({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
  });
  req.on('error', (error) => fail(error));
  req.flushHeaders();
  await new Promise<void>((resolve, reject) => {
    req.once('continue', resolve);
    done.catch(reject);
  });
  req.write(body.slice(0, half));
  return {
    finish: () => {
      req.end(body.slice(half));
      return done;
    },
  };
}

/** Resolves once the service no longer accepts connections. */
async function refusesConnections(baseUrl: string): Promise<void> {
  await until(
    'connections refused',
    30_000,
    async () =>
      fetch(`${baseUrl}/health`).then(
        () => false,
        () => true,
      ),
    { intervalMs: 50 },
  );
}

const FAULT_FIXTURE = fileURLToPath(new URL('./fixtures/fault-on-sigwinch.mjs', import.meta.url));

describe.each(BACKENDS)('graceful shutdown on %s', (backend) => {
  it.skipIf(backendUnavailable(backend))('SIGTERM: readiness 503 at once, serving through the delay, in-flight requests finish, exit 0', async () => {
    const env = { ...(await serviceEnvFor(backend)), SHUTDOWN_DELAY_SECONDS: String(SHUTDOWN_DELAY_SECONDS) };
    const service = await startService(env);
    const api = client(service.baseUrl);
    const acknowledged: Array<{ id: number; name: string }> = [];

    const inFlight = await startSlowPost(service.baseUrl, '/users', JSON.stringify({ name: 'in flight during shutdown' }));
    service.signal('SIGTERM');

    await until(
      'the pod unready, shutting down',
      5000,
      async () => {
        expect((await api.get('/ready')).body).toEqual({ status: 'not ready', detail: 'shutting down' });
        return true;
      },
      { intervalMs: 20 },
    );

    // During the delay, new work is still served.
    expect((await api.get('/health')).status).toBe(200);
    const during = await Promise.all(Array.from({ length: 20 }, (_, i) => api.post('/users', { name: `during delay ${i}` })));
    expect(during.map((response) => response.status)).toEqual(Array(20).fill(200));
    acknowledged.push(...during.map((response) => response.body));

    // Past the delay the server stops accepting; the half-sent request must still complete.
    await refusesConnections(service.baseUrl);
    expect(service.exit()).toBeUndefined();
    const slow = await inFlight.finish();
    expect(slow.status).toBe(200);
    acknowledged.push(slow.body);

    const exit = await service.exited;
    expect(exit).toEqual({ code: 0, signal: null });
    expect(service.logLines().some((line) => line.msg === 'shutdown complete')).toBe(true);

    await expectAcknowledgedWritesKept(env, acknowledged);
  });

  it.skipIf(backendUnavailable(backend))('a second signal exits at once', async () => {
    const service = await startService({ ...(await serviceEnvFor(backend)), SHUTDOWN_DELAY_SECONDS: '300' });
    service.signal('SIGTERM');
    await until('the pod unready', 5000, async () => (await client(service.baseUrl).get('/ready')).status === 503, { intervalMs: 20 });
    service.signal('SIGTERM');
    expect(await service.exited).toEqual({ code: 1, signal: null });
    expect(service.logLines().some((line) => line.msg === 'second signal: exiting now')).toBe(true);
  });

  it.skipIf(backendUnavailable(backend))('closing that outlasts SHUTDOWN_TIMEOUT_SECONDS (a request never finished) exits 1 and says so', async () => {
    const service = await startService({ ...(await serviceEnvFor(backend)), SHUTDOWN_DELAY_SECONDS: '0', SHUTDOWN_TIMEOUT_SECONDS: '1' });
    await startSlowPost(service.baseUrl, '/users', JSON.stringify({ name: 'never finished' })); // and never finished
    service.signal('SIGTERM');
    // Without the timeout, the request timeout (30 s) would end it with a 408 and exit 0.
    expect(await service.exited).toEqual({ code: 1, signal: null });
    expect(service.logLines()).toContainEqual(expect.objectContaining({ msg: 'shutdown took too long: exiting now', timeout_ms: 1000 }));
  });

  it.skipIf(backendUnavailable(backend)).each(['uncaught exception', 'unhandled rejection'])(
    'an %s is logged, closes the database cleanly, exits 1, and loses no acknowledged write',
    async (fault) => {
      const env = { ...(await serviceEnvFor(backend)), SHUTDOWN_DELAY_SECONDS: '300', FAULT: fault.replace(' ', '-') };
      const service = await startService(env, { extraNodeArgs: ['--import', FAULT_FIXTURE] });
      const created = await client(service.baseUrl).post('/users', { name: `before an ${fault}` });
      expect(created.status).toBe(200);

      service.signal('SIGWINCH');
      // Exits without waiting out the 300 s delay: the process's state is unknown.
      expect(await service.exited).toEqual({ code: 1, signal: null });
      const lines = service.logLines();
      expect(lines).toContainEqual(
        expect.objectContaining({ level: 60, msg: 'uncaught error: shutting down', err: expect.objectContaining({ message: `injected ${fault}` }) }),
      );
      expect(lines.some((line) => line.msg === 'shutdown complete')).toBe(true);

      await expectAcknowledgedWritesKept(env, [created.body]);
    },
  );
});

/** Every acknowledged write is there after a fresh start. */
async function expectAcknowledgedWritesKept(env: Record<string, string>, acknowledged: Array<{ id: number; name: string }>): Promise<void> {
  const again = await startService({ ...env, SHUTDOWN_DELAY_SECONDS: '0' });
  try {
    const reader = client(again.baseUrl);
    for (const user of acknowledged) expect((await reader.get(`/user/${user.id}`)).body).toEqual(user);
  } finally {
    await again.stop();
  }
}

describe.skipIf(backendUnavailable('postgres'))('graceful shutdown during a database outage', () => {
  it('SIGTERM while PostgreSQL is down still finishes and exits 0', async () => {
    const postgres = await PostgresServer.create(); // its own server: this test destroys it
    const service = await startService({ DATABASE_URL: await postgres.createDatabase(), SHUTDOWN_DELAY_SECONDS: '0', DB_CONNECT_TIMEOUT_SECONDS: '1' });
    const api = client(service.baseUrl);
    expect((await api.post('/users', { name: 'before' })).status).toBe(200); // the pool has open connections
    await postgres.destroy();
    expect((await api.get('/user/1')).status).toBe(503);
    service.signal('SIGTERM');
    expect(await service.exited).toEqual({ code: 0, signal: null });
  });
});
