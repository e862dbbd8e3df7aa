import { Agent, request } from 'node:http';
import { performance } from 'node:perf_hooks';

// An open-loop load generator: requests leave on a fixed schedule (rate per second),
// whether or not earlier ones have been answered, as independent users' requests do.
// A closed-loop tool (wrk, autocannon) sends the next request only when a connection
// is free, so a server that stalls also slows the load and its queue never shows in
// the latencies ("coordinated omission"). Here each request's latency counts from
// the moment it was scheduled to leave: time spent waiting for a free connection or
// in the server's queue is part of it.

export interface LoadRequest {
  method: 'GET' | 'POST';
  path: string;
  body?: string;
}

export interface LoadResult {
  /** The rate asked for, requests per second. */
  rate: number;
  /** Answered per second over the run. */
  achieved: number;
  sent: number;
  /** Answered with a 2xx. */
  ok: number;
  /** Anything else: another status, a connection error, no answer within the timeout. */
  failed: number;
  statuses: Record<string, number>;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/**
 * Sends `rate` requests per second for `seconds`, spread evenly, round-robin over
 * `targets` (base URLs, as a Service spreads connections over pods). `next` gives
 * each request. Resolves when every request has been answered or timed out.
 */
export async function openLoop(targets: string[], rate: number, seconds: number, next: () => LoadRequest, timeoutMs = 5_000): Promise<LoadResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: 256 });
  const urls = targets.map((target) => new URL(target));
  const total = Math.round(rate * seconds);
  const latencies = new Float64Array(total);
  const statuses: Record<string, number> = {};
  let answered = 0;
  let ok = 0;
  let lastAnswerAt = 0;
  const count = (status: string) => (statuses[status] = (statuses[status] ?? 0) + 1);

  const started = performance.now();
  const send = (index: number, scheduledAt: number) =>
    new Promise<void>((resolve) => {
      const { method, path, body } = next();
      const url = urls[index % urls.length]!;
      const finish = (status: string) => {
        const now = performance.now();
        latencies[answered++] = now - scheduledAt;
        lastAnswerAt = now;
        if (status.startsWith('2')) ok++;
        count(status);
        resolve();
      };
      const outgoing = request(
        {
          host: url.hostname,
          port: url.port,
          method,
          path,
          agent,
          timeout: timeoutMs,
          headers: body === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        },
        (response) => {
          response.resume();
          response.on('end', () => finish(String(response.statusCode)));
          response.on('error', () => finish('response error'));
        },
      );
      outgoing.on('timeout', () => outgoing.destroy(new Error('timeout')));
      outgoing.on('error', (error) => finish(error.message === 'timeout' ? 'timeout' : 'connection error'));
      outgoing.end(body);
    });

  const inFlight: Array<Promise<void>> = [];
  let sent = 0;
  await new Promise<void>((resolve) => {
    const tick = () => {
      const elapsed = performance.now() - started;
      // Everything due by now leaves now, with its latency counted from when it was due.
      while (sent < total && (sent * 1000) / rate <= elapsed) {
        inFlight.push(send(sent, started + (sent * 1000) / rate));
        sent++;
      }
      if (sent < total) setTimeout(tick, 1);
      else resolve();
    };
    tick();
  });
  await Promise.all(inFlight);
  agent.destroy();

  const sorted = latencies.slice(0, answered).sort();
  const duration = (lastAnswerAt - started) / 1000;
  return {
    rate,
    achieved: ok / Math.max(duration, seconds),
    sent,
    ok,
    failed: sent - ok,
    statuses,
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    max: sorted.length === 0 ? Number.NaN : sorted[sorted.length - 1]!,
  };
}

/**
 * The highest rate (requests per second) that holds: every request answered with a
 * 2xx and the 99th percentile within `p99LimitMs`. Rates double at each step from
 * `startRate` until one fails, then the gap is halved `refine` times. Each rate is run
 * once, and one failed run counts: a search that retried failures, and took a rate if
 * either try held, would report the luckier of two draws. One stray stall on a shared
 * machine can end a search early; bench/capacity.ts repeats the whole search and reports
 * the median, which one low search does not move.
 * Returns the best passing run (undefined if even `startRate` fails) and every run.
 */
export async function highestRate(
  run: (rate: number) => Promise<LoadResult>,
  p99LimitMs: number,
  options: { startRate?: number; maxRate?: number; refine?: number } = {},
): Promise<{ best: LoadResult | undefined; runs: LoadResult[] }> {
  const { startRate = 50, maxRate = 20_000, refine = 4 } = options;
  const runs: LoadResult[] = [];
  /** The run at `rate` if it held, or undefined. */
  const attempt = async (rate: number): Promise<LoadResult | undefined> => {
    const result = await run(rate);
    runs.push(result);
    return result.failed === 0 && result.p99 <= p99LimitMs ? result : undefined;
  };
  let best: LoadResult | undefined;
  let failedAt: number | undefined;
  for (let rate = startRate; rate <= maxRate; rate *= 2) {
    const result = await attempt(rate);
    if (result === undefined) {
      failedAt = rate;
      break;
    }
    best = result;
  }
  for (let i = 0; i < refine && failedAt !== undefined && best !== undefined; i++) {
    const rate = Math.round((best.rate + failedAt) / 2);
    if (rate === best.rate || rate === failedAt) break;
    const result = await attempt(rate);
    if (result !== undefined) best = result;
    else failedAt = rate;
  }
  return { best, runs };
}
