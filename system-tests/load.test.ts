import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { highestRate, openLoop, type LoadResult } from './support/load.js';

// The capacity benchmark's tools (bench/capacity.ts): the open-loop generator counts
// each request's latency from when it was due, and the search for the highest rate.

describe('openLoop', () => {
  let server: Server;
  let baseUrl: string;
  let stallUntil = 0;
  let served = 0;

  beforeAll(async () => {
    // Answers at once, except while a stall is on: then it holds every request until
    // the stall ends, as a throttled or paused process would.
    server = createServer((request, response) => {
      served++;
      const wait = Math.max(0, stallUntil - Date.now());
      setTimeout(() => response.end(request.url === '/fail' ? undefined : 'ok'), wait);
      if (request.url === '/fail') response.statusCode = 503;
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address() as { port: number };
    baseUrl = `http://127.0.0.1:${address.port}`;
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  it('sends the rate asked for, and counts 2xx as ok and anything else as failed', async () => {
    served = 0;
    const result = await openLoop([baseUrl], 200, 1, () => ({ method: 'GET', path: served % 10 === 9 ? '/fail' : '/' }));
    expect(result.sent).toBe(200);
    expect(served).toBe(200);
    expect(result.ok + result.failed).toBe(200);
    expect(result.statuses['503']).toBe(result.failed);
    expect(result.failed).toBeGreaterThan(0);
  });

  it('keeps sending while the server stalls, and counts the wait from when each request was due', async () => {
    // A 300 ms stall in the middle of a 1 s run at 200/s: about 60 requests fall into
    // it. A closed loop would send none of them until the stall ended.
    setTimeout(() => (stallUntil = Date.now() + 300), 400);
    const result = await openLoop([baseUrl], 200, 1, () => ({ method: 'GET', path: '/' }));
    stallUntil = 0;
    expect(result.sent).toBe(200);
    expect(result.failed).toBe(0);
    // The first request of the stall waited about 300 ms, so the 99th percentile shows it.
    expect(result.max).toBeGreaterThan(250);
    expect(result.p99).toBeGreaterThan(200);
    expect(result.p50).toBeLessThan(100);
  });
});

describe('highestRate', () => {
  /** A model of a server that holds up to `capacity` per second, and stalls `flaky` runs at random rates. */
  const model = (capacity: number, stalls: number[] = []) => {
    const rates: number[] = [];
    const run = async (rate: number): Promise<LoadResult> => {
      rates.push(rate);
      const stalled = stalls.includes(rates.length);
      const p99 = stalled || rate > capacity ? 1000 : 10;
      return { rate, achieved: rate, sent: rate, ok: rate, failed: 0, statuses: { '200': rate }, p50: 5, p90: 8, p99, max: p99 };
    };
    return { run, rates };
  };

  it('grows the rate by half until it fails, then narrows the gap down', async () => {
    const { run, rates } = model(400);
    const { best } = await highestRate(run, 250, { startRate: 50 });
    // 50, 75, 113, 170, 255, 383 hold; 575 fails twice; then 479 (fails twice), 431 (twice), 407 (twice).
    expect(rates.slice(0, 7)).toEqual([50, 75, 113, 170, 255, 383, 575]);
    expect(best!.rate).toBe(383);
    expect(best!.rate).toBeLessThanOrEqual(400);
  });

  it('a single stalled run does not end the search: the rate is tried once more', async () => {
    // The third run (113/s) stalls once.
    const { run, rates } = model(400, [3]);
    const { best } = await highestRate(run, 250, { startRate: 50 });
    expect(rates.slice(0, 5)).toEqual([50, 75, 113, 113, 170]);
    expect(best!.rate).toBe(383);
  });

  it('no rate holds when even the first fails twice', async () => {
    const { run } = model(10);
    expect((await highestRate(run, 250, { startRate: 50 })).best).toBeUndefined();
  });
});
