// wrk, the load generator both benchmarks drive (Debian package `wrk`, written in C, so
// it takes little of the two cores from the service and PostgreSQL), and the
// statistics they report.

import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

/** Throughput and latency (ms), as the load generator measures them. */
export interface Timing {
  rps: number;
  p50: number;
  p99: number;
}

const execFileAsync = promisify(execFile);

export async function requireWrk(): Promise<void> {
  await execFileAsync('wrk', ['--version']).catch((error: { code?: string }) => {
    if (error.code === 'ENOENT') throw new Error('wrk is not installed: apt-get install -y wrk');
  });
}

// Appended to every script: print what we need in one parseable line (latency in µs).
const WRK_REPORT = `
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), e.connect + e.read + e.write + e.status + e.timeout))
end`;

/** Runs `script` (Lua) against `baseUrl`; any failed request fails the run. */
export async function runWrk(baseUrl: string, script: string, options: { connections: number; seconds: number }): Promise<Timing> {
  const dir = await mkdtemp(join(tmpdir(), 'wiki-bench-'));
  const file = join(dir, 'script.lua');
  await writeFile(file, `math.randomseed(os.time())\n${script}\n${WRK_REPORT}\n`);
  try {
    const { stdout } = await execFileAsync('wrk', ['-t1', `-c${options.connections}`, `-d${options.seconds}s`, '-s', file, baseUrl]);
    const match = /RESULT (\d+) (\d+) (\d+) (\d+) (\d+)/.exec(stdout);
    if (match === null) throw new Error(`unexpected wrk output:\n${stdout}`);
    const [requests, durationUs, p50Us, p99Us, errors] = match.slice(1).map(Number) as [number, number, number, number, number];
    if (errors > 0) throw new Error(`${errors} failed requests during the benchmark`);
    return { rps: requests / (durationUs / 1e6), p50: p50Us / 1000, p99: p99Us / 1000 };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0;
}

export function fmt(value: number, width: number, digits = 0): string {
  return value.toFixed(digits).padStart(width);
}
