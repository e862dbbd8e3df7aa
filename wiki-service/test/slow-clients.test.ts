import { readdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testDatabaseConfig } from './support/app.js';
import { client, rawExchange } from '@wiki/test-support/http';
import { startService, type ServiceProcess } from './support/service-process.js';
import { sleep, until } from '@wiki/test-support/wait';

// Clients that never finish their request, or hold a connection idle, are cut off
// by the timeouts in the configuration table; a slow client that keeps sending is
// not. Without them, each stuck connection held a file descriptor forever.

const REQUEST_TIMEOUT_SECONDS = 2;
const HEADERS_TIMEOUT_SECONDS = 1;
const KEEP_ALIVE_TIMEOUT_SECONDS = 1;
// Node checks for overdue requests once a second: a cut-off comes at most about a
// second after its timeout. Past this, the connection is taken to be held forever.
const CUT_OFF_WITHIN_MS = (REQUEST_TIMEOUT_SECONDS + 4) * 1000;
const STUCK_CONNECTIONS = 400;

const openFileDescriptors = (pid: number) => readdirSync(`/proc/${pid}/fd`).length;

describe('slow and stuck clients', () => {
  let service: ServiceProcess;
  let removeDatabase: () => Promise<void>;

  beforeAll(async () => {
    const { config, cleanup } = await testDatabaseConfig('pglite');
    removeDatabase = cleanup;
    service = await startService({
      DATA_DIR: config.kind === 'pglite' ? config.dataDir : '',
      SHUTDOWN_DELAY_SECONDS: '0',
      REQUEST_TIMEOUT_SECONDS: String(REQUEST_TIMEOUT_SECONDS),
      HEADERS_TIMEOUT_SECONDS: String(HEADERS_TIMEOUT_SECONDS),
      KEEP_ALIVE_TIMEOUT_SECONDS: String(KEEP_ALIVE_TIMEOUT_SECONDS),
    });
  });
  afterAll(async () => {
    await service?.stop();
    await removeDatabase?.();
  });

  it(`${STUCK_CONNECTIONS} requests that stop halfway (in the headers or the body) are answered 408 and closed; their file descriptors come back`, async () => {
    const pid = service.pid;
    const before = openFileDescriptors(pid);
    const stalled = Array.from({ length: STUCK_CONNECTIONS }, (_, i) =>
      rawExchange(
        service.baseUrl,
        i % 2 === 0
          ? 'POST /users HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"name": "never fin'
          : 'GET /health HTTP/1.1\r\nHost: t\r\nX-Half-A-Hea',
        CUT_OFF_WITHIN_MS,
      ),
    );
    await until('the connections open', 1_000, () => openFileDescriptors(pid) >= before + STUCK_CONNECTIONS, { intervalMs: 50 });

    const results = await Promise.all(stalled);
    const notCutOff = results.filter((result) => !result.closedByServer);
    expect(notCutOff.length, 'connections still open when the timeout had long passed').toBe(0);
    for (const { received } of results) {
      expect(received).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
      expect(received).toContain('{"detail":"Request timeout: the request was not received in time"}');
    }

    await until('the descriptors back', 1_000, () => openFileDescriptors(pid) <= before + 2, { intervalMs: 50 });
    expect((await client(service.baseUrl).get('/health')).status).toBe(200);
    expect(service.exit()).toBeUndefined();
  });

  it('a slow client that keeps sending and finishes within the request timeout is served', async () => {
    const body = JSON.stringify({ name: 'slow but steady' });
    const { hostname, port } = new URL(service.baseUrl);
    const { connect } = await import('node:net');
    const socket = connect(Number(port), hostname);
    let received = '';
    socket.on('data', (chunk) => (received += chunk.toString()));
    const closed = new Promise((resolve) => socket.on('close', resolve));
    socket.write(`POST /users HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: ${body.length}\r\n\r\n`);
    // The body in pieces over about 1.2 s: slower than any header timeout, within the
    // request timeout. The pauses are the slow client itself, not a wait for a condition.
    for (const piece of body.match(/.{1,3}/g)!) {
      await sleep(1200 / Math.ceil(body.length / 3));
      socket.write(piece);
    }
    await closed;
    expect(received).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(received).toContain('"name":"slow but steady"');
  });

  it('an idle keep-alive connection is closed after KEEP_ALIVE_TIMEOUT_SECONDS', async () => {
    const { received, closedByServer } = await rawExchange(
      service.baseUrl,
      'GET /health HTTP/1.1\r\nHost: t\r\nConnection: keep-alive\r\n\r\n',
      CUT_OFF_WITHIN_MS,
    );
    expect(received).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(received).toMatch(new RegExp(`\\r\\nKeep-Alive: timeout=${KEEP_ALIVE_TIMEOUT_SECONDS}\\r\\n`, 'i'));
    expect(closedByServer).toBe(true);
  });
});
