import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backendUnavailable } from './support/backends.js';
import { client } from '@wiki/test-support/http';
import { PgBouncer } from '@wiki/test-support/pgbouncer';
import { PostgresServer, TEST_DB_PASSWORD, TEST_DB_USER } from '@wiki/test-support/postgres';
import { startService, type ServiceProcess } from './support/service-process.js';
import { sleep, until } from '@wiki/test-support/wait';
import { startWriters } from '@wiki/test-support/writers';
import { expectNothingLost, summedCounter } from './support/under-load.js';

// The service behind PgBouncer in transaction mode (CloudNativePG's Pooler, most
// managed poolers). The contract suite runs through it too (contract.test.ts); this
// file shows what PgBouncer's prepared statement support is for, and restarts
// PgBouncer under load.

const skip = backendUnavailable('postgres') || backendUnavailable('pgbouncer');

describe.skipIf(skip)('named prepared statements through PgBouncer in transaction mode', () => {
  let postgres: PostgresServer;

  beforeAll(async () => {
    postgres = await PostgresServer.create();
  });
  afterAll(async () => {
    await postgres?.destroy();
  });

  /**
   * 200 concurrent requests through a PgBouncer with two server connections, from a
   * service with ten: each transaction may land on a server connection that another
   * client's statements were prepared on, or not.
   */
  async function concurrentRequests(maxPreparedStatements: number, serviceEnv: Record<string, string> = {}) {
    const bouncer = await PgBouncer.start({ targetPort: postgres.port, user: TEST_DB_USER, password: TEST_DB_PASSWORD, maxPreparedStatements, poolSize: 2 });
    const url = new URL(await postgres.createDatabase('prepared'));
    url.port = String(bouncer.port);
    const service = await startService({ DATABASE_URL: url.toString(), DB_POOL_MAX: '10', SHUTDOWN_DELAY_SECONDS: '0', ...serviceEnv });
    try {
      const api = client(service.baseUrl);
      const responses = await Promise.all(
        Array.from({ length: 200 }, (_, n) => (n % 2 === 0 ? api.post('/users', { name: `user ${n}` }) : api.get('/users?limit=5'))),
      );
      const statuses = new Map<number, number>();
      for (const response of responses) statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
      return { statuses, log: service.output() };
    } finally {
      await service.stop();
      await bouncer.destroy();
    }
  }

  it('with max_prepared_statements, every request succeeds', async () => {
    const { statuses, log } = await concurrentRequests(200);
    expect(Object.fromEntries(statuses), log).toEqual({ 200: 200 });
  });

  it('without it (max_prepared_statements = 0), a server connection holds other clients\' statements, or lacks its own ("already exists", "does not exist"): requests fail', async () => {
    const { statuses, log } = await concurrentRequests(0);
    const errors = [
      ...new Set(
        log.match(/prepared statement \\?"wiki_[0-9a-f]+\\?" (does not exist|already exists)/g)?.map((line) => line.replace(/wiki_[0-9a-f]+/, 'wiki_…')),
      ),
    ];
    console.log(`max_prepared_statements = 0: ${JSON.stringify(Object.fromEntries(statuses))}; PostgreSQL said: ${errors.join('; ')}`);
    expect(statuses.get(500) ?? 0, JSON.stringify(Object.fromEntries(statuses))).toBeGreaterThan(0);
    expect(log).toMatch(/prepared statement \\?"wiki_[0-9a-f]+\\?" (does not exist|already exists)/);
  });

  it('without it, DB_PREPARED_STATEMENTS=false (unnamed statements) is the way: every request succeeds', async () => {
    const { statuses, log } = await concurrentRequests(0, { DB_PREPARED_STATEMENTS: 'false' });
    expect(Object.fromEntries(statuses), log).toEqual({ 200: 200 });
  });
});

describe.skipIf(skip)('PgBouncer restarted under load', () => {
  const WRITERS = 8;
  const CONNECT_TIMEOUT_SECONDS = 1;
  const QUERY_TIMEOUT_SECONDS = 3;
  const HANG_LIMIT_MS = (CONNECT_TIMEOUT_SECONDS + QUERY_TIMEOUT_SECONDS + 2) * 1000;
  const RESTARTS = 3;
  let postgres: PostgresServer;
  let bouncer: PgBouncer;
  let databaseName: string;
  const services: ServiceProcess[] = [];

  beforeAll(async () => {
    postgres = await PostgresServer.create({ durable: true });
    const url = new URL(await postgres.createDatabase('bouncer'));
    databaseName = url.pathname.slice(1);
    bouncer = await PgBouncer.start({ targetPort: postgres.port, user: TEST_DB_USER, password: TEST_DB_PASSWORD });
    url.port = String(bouncer.port);
    for (let pod = 0; pod < 2; pod++) {
      services.push(
        await startService({
          DATABASE_URL: url.toString(),
          DB_CONNECT_TIMEOUT_SECONDS: String(CONNECT_TIMEOUT_SECONDS),
          DB_QUERY_TIMEOUT_SECONDS: String(QUERY_TIMEOUT_SECONDS),
          SHUTDOWN_DELAY_SECONDS: '0',
          LOG_LEVEL: 'warn',
        }),
      );
    }
  });
  afterAll(async () => {
    await Promise.all(services.map((service) => service.stop()));
    await bouncer?.destroy();
    await postgres?.destroy();
  });

  it(`${WRITERS} writers through two services while PgBouncer is killed and started again (${RESTARTS} times): 503s, then writes again, and every acknowledged write kept`, async () => {
    const load = startWriters(
      services.map((service) => service.baseUrl),
      WRITERS,
      HANG_LIMIT_MS,
    );
    const figures: string[] = [];
    try {
      for (let round = 1; round <= RESTARTS; round++) {
        const before = load.writes();
        await until('100 more writes', 30_000, () => load.writes() >= before + 100, { intervalMs: 10 });
        const killedAt = Date.now();
        await bouncer.kill();
        await sleep(500); // a pod being replaced: nothing listens for a moment
        await bouncer.start();
        const backAt = Date.now();
        await until('a write acknowledged after PgBouncer was back', 30_000, () => load.firstAckAfter(backAt), { intervalMs: 10 });
        figures.push(
          `PgBouncer restart #${round}: back after ${backAt - killedAt} ms, first acknowledged write ${load.firstAckAfter(backAt)! - backAt} ms later`,
        );
      }
    } finally {
      await load.stop();
    }
    console.log([...figures, `statuses: ${JSON.stringify(Object.fromEntries(load.statuses))}, slowest 503: ${load.slowest503Ms().toFixed(0)} ms`].join('\n'));

    await expectNothingLost(services, load, (text) => postgres.query(text, databaseName), 'the restarts were felt');
    const counted = await summedCounter(services, 'users_created_total');
    expect(counted).toBe(load.acknowledged.users.size);
  });
});
