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
  /** A model of a server that holds up to `capacity` per second, and stalls the runs numbered in `stalls` (from 1). */
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

  it('doubles the rate until it fails, then halves the gap four times', async () => {
    const { run, rates } = model(400);
    const { best } = await highestRate(run, 250, { startRate: 50 });
    // 50, 100, 200, 400 hold; 800 fails; then 600 fails, 500 fails, 450 fails, 425 fails.
    expect(rates).toEqual([50, 100, 200, 400, 800, 600, 500, 450, 425]);
    expect(best!.rate).toBe(400);
  });

  it('takes a rate only from a run that held: one failed run ends the climb, with no second try', async () => {
    // The third run (200/s) stalls. A search that retried would have reported 400.
    const { run, rates } = model(400, [3]);
    const { best } = await highestRate(run, 250, { startRate: 50 });
    expect(rates).toEqual([50, 100, 200, 150, 175, 188, 194]);
    expect(best!.rate).toBe(194);
  });

  it('a run with a failed request does not hold, whatever its latencies', async () => {
    const run = async (rate: number): Promise<LoadResult> => ({
      rate,
      achieved: rate,
      sent: rate,
      ok: rate - (rate > 100 ? 1 : 0),
      failed: rate > 100 ? 1 : 0,
      statuses: { '200': rate },
      p50: 1,
      p90: 1,
      p99: 1,
      max: 1,
    });
    const { best } = await highestRate(run, 250, { startRate: 50 });
    expect(best!.rate).toBeLessThanOrEqual(100);
  });

  it('no rate holds when the first fails', async () => {
    const { run, rates } = model(10);
    expect((await highestRate(run, 250, { startRate: 50 })).best).toBeUndefined();
    expect(rates).toEqual([50]);
  });
});
