import { request as httpRequest } from 'node:http';
import { describe, expect, it } from 'vitest';
import { BACKENDS, backendUnavailable } from './support/backends.js';
import { client } from './support/http.js';
import { serviceEnvFor } from './support/app.js';
import { PostgresServer } from './support/postgres.js';
import { startService } from './support/service.js';

// Kubernetes sends SIGTERM and, at the same time, starts removing the pod from the
// Service's endpoints. The service must keep serving until that has happened, finish
// what it started, and exit 0; nothing acknowledged may be lost.

const SHUTDOWN_DELAY_SECONDS = 1.5;

/** Starts a POST whose body arrives in two halves; call the result to send the rest. */
function startSlowPost(baseUrl: string, path: string, body: string): { finish(): Promise<{ status: number; body: any }> } {
  const half = Math.floor(body.length / 2);
  const url = new URL(path, baseUrl);
  let settle: (value: { status: number; body: any }) => void;
  let fail: (error: Error) => void;
  const done = new Promise<{ status: number; body: any }>((resolve, reject) => ((settle = resolve), (fail = reject)));
  const req = httpRequest(
    { host: url.hostname, port: url.port, path: url.pathname, method: 'POST', agent: false, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
    (res) => {
      let text = '';
      res.on('data', (chunk) => (text += chunk));
      res.on('end', () => settle({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
    },
  );
  req.on('error', (error) => fail(error));
  req.write(body.slice(0, half));
  return {
    finish: () => {
      req.end(body.slice(half));
      return done;
    },
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.each(BACKENDS)('graceful shutdown on %s', (backend) => {
  it.skipIf(backendUnavailable(backend))('SIGTERM: readiness 503 at once, serving through the delay, in-flight requests finish, exit 0', async () => {
    const env = { ...(await serviceEnvFor(backend)), SHUTDOWN_DELAY_SECONDS: String(SHUTDOWN_DELAY_SECONDS) };
    const service = await startService(env);
    const api = client(service.baseUrl);
    const acknowledged: Array<{ id: number; name: string }> = [];

    const inFlight = startSlowPost(service.baseUrl, '/users', JSON.stringify({ name: 'in flight during shutdown' }));
    await sleep(100); // the request has reached the server
    service.child.kill('SIGTERM');

    let ready = await api.get('/ready');
    for (let i = 0; i < 10 && ready.status !== 503; i++) ready = await api.get('/ready');
    expect(ready.status).toBe(503);
    expect(ready.body).toEqual({ status: 'not ready', detail: 'shutting down' });

    // During the delay, new work is still served.
    expect((await api.get('/health')).status).toBe(200);
    const during = await Promise.all(Array.from({ length: 20 }, (_, i) => api.post('/users', { name: `during delay ${i}` })));
    expect(during.map((response) => response.status)).toEqual(Array(20).fill(200));
    acknowledged.push(...during.map((response) => response.body));

    // Past the delay the server closes; the half-sent request must still complete.
    await sleep(SHUTDOWN_DELAY_SECONDS * 1000 + 300);
    const slow = await inFlight.finish();
    expect(slow.status).toBe(200);
    acknowledged.push(slow.body);

    const exit = await service.exited;
    expect(exit).toEqual({ code: 0, signal: null });
    expect(service.logLines().some((line) => line.msg === 'shutdown complete')).toBe(true);

    // Every acknowledged write is there after a fresh start.
    const again = await startService({ ...env, SHUTDOWN_DELAY_SECONDS: '0' });
    try {
      const reader = client(again.baseUrl);
      for (const user of acknowledged) expect((await reader.get(`/user/${user.id}`)).body).toEqual(user);
    } finally {
      await again.stop();
    }
  });

  it.skipIf(backendUnavailable(backend))('a second signal exits at once', async () => {
    const service = await startService({ ...(await serviceEnvFor(backend)), SHUTDOWN_DELAY_SECONDS: '300' });
    service.child.kill('SIGTERM');
    await sleep(200);
    service.child.kill('SIGTERM');
    const exit = await Promise.race([service.exited, sleep(10_000).then(() => 'still running')]);
    expect(exit).toEqual({ code: 1, signal: null });
  });
});

describe.skipIf(backendUnavailable('postgres'))('graceful shutdown during a database outage', () => {
  it('SIGTERM while PostgreSQL is down still finishes and exits 0', async () => {
    const postgres = await PostgresServer.create(); // its own server: this test destroys it
    const service = await startService({ DATABASE_URL: await postgres.createDatabase(), SHUTDOWN_DELAY_SECONDS: '0', DB_CONNECT_TIMEOUT_SECONDS: '1' });
    const api = client(service.baseUrl);
    expect((await api.post('/users', { name: 'before' })).status).toBe(200); // the pool has open connections
    await postgres.destroy();
    expect((await api.get('/user/1')).status).toBe(503);
    service.child.kill('SIGTERM');
    const exit = await Promise.race([service.exited, sleep(15_000).then(() => 'still running')]);
    expect(exit).toEqual({ code: 0, signal: null });
  });
});

