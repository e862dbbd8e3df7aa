// `npm run bench:log-line`: what the request log line costs, alone, and what it is
// made of. The full bench (`npm run bench`) compares the service with and without the
// line (LOG_LEVEL=warn), but on two shared cores its CPU per request moves by more
// between rounds (±40 %) than the line can cost, so the line is measured here on its
// own: the service's logger (src/logger.ts) writing the line the service writes
// (plugins/request-log.ts), through a child logger per request as Fastify makes one,
// to /dev/null as the bench's service does. Each variant leaves one part out; they run
// interleaved, in an order reversed every other round, and the medians are reported.
//
// Then the line in place: a loop keeps the logger's code and data hot in the CPU's
// caches, which a request that runs everything else in between does not. So the built
// service runs under wrk (GET /user/{id}, on a throwaway PostgreSQL) with V8's sampling
// profiler on (--cpu-prof), and the share of its busy samples spent writing the line
// (requestCompleted in plugins/request-log.ts, everything it calls) and making the
// request's child logger (pino's child()) is priced against the process's CPU per
// request over the same run.
//
// Run it with the service's Node flags: `npm run bench:log-line` does.

import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { createLogger } from '../src/logger.js';
import { startService } from '../test/support/service-process.js';
import { requireWrk, runWrk } from './wrk.js';
import { cpuSecondsOf } from '@wiki/test-support/cpu';
import { median } from '@wiki/test-support/median';
import { PostgresServer } from '@wiki/test-support/postgres';

const LINES = 100_000;
const ROUNDS = 6;
const line = { method: 'GET', route: '/user/:id', url: '/user/123', status: 200, duration_ms: 1.23 };

const options = { base: { service: 'wiki-service' }, timestamp: pino.stdTimeFunctions.isoTime };
const nowhere = new Writable({ write: (_chunk, _encoding, done) => done() });
const VARIANTS: Record<string, { logger: Logger; childPerLine: boolean }> = {
  'the line as the service writes it': { logger: createLogger('info'), childPerLine: true },
  'level warn: the child logger only': { logger: createLogger('warn'), childPerLine: true },
  'without a child logger per line': { logger: createLogger('info'), childPerLine: false },
  'time as epoch milliseconds': { logger: pino({ ...options, timestamp: pino.stdTimeFunctions.epochTime }), childPerLine: true },
  'serialized, not written (no syscall)': { logger: pino({ level: 'info', ...options }, nowhere), childPerLine: true },
  // What the service could do, at the price of losing the last lines in a crash.
  'written in 4 KiB batches (not sync)': {
    logger: pino({ level: 'info', ...options }, pino.destination({ dest: 1, sync: false, minLength: 4096 })),
    childPerLine: true,
  },
};

function cpuMicrosecondsPerLine({ logger, childPerLine }: { logger: Logger; childPerLine: boolean }): number {
  const started = process.cpuUsage();
  for (let i = 0; i < LINES; i++) (childPerLine ? logger.child({ request_id: `req-${i}` }) : logger).info(line, 'request');
  const used = process.cpuUsage(started);
  return (used.user + used.system) / LINES;
}

const measured = new Map<string, number[]>(Object.keys(VARIANTS).map((name) => [name, []]));
for (const variant of Object.values(VARIANTS)) cpuMicrosecondsPerLine(variant); // warm-up, not counted
for (let round = 0; round < ROUNDS; round++) {
  const names = Object.keys(VARIANTS);
  for (const name of round % 2 === 0 ? names : names.reverse()) measured.get(name)!.push(cpuMicrosecondsPerLine(VARIANTS[name]!));
}
// The lines go to stdout (/dev/null when run as documented); the figures to stderr.
console.error(`request log line: CPU per line in µs, median of ${ROUNDS} rounds of ${LINES} lines (goal: under 10 µs)`);
for (const [name, values] of measured) {
  console.error(`  ${name.padEnd(40)} ${median(values).toFixed(2).padStart(6)}   (rounds ${values.map((value) => value.toFixed(2)).join(', ')})`);
}

// ---- the line in place: the running service, profiled --------------------------------

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Of a CPU profile's busy time (all but idle), the share inside the nodes that `counts`, with everything they call. */
function shareOf(profile: CpuProfile, counts: (node: ProfileNode) => boolean): number {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parentOf = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node.id);
  const inside = (id: number): boolean => {
    for (let at: number | undefined = id; at !== undefined; at = parentOf.get(at)) if (counts(byId.get(at)!)) return true;
    return false;
  };
  let busy = 0;
  let counted = 0;
  profile.samples.forEach((id, i) => {
    if (byId.get(id)!.callFrame.functionName === '(idle)') return;
    const delta = profile.timeDeltas[i] ?? 0;
    busy += delta;
    if (inside(id)) counted += delta;
  });
  return counted / busy;
}

const SECONDS = 15;
const USERS = 100;
await requireWrk();
const postgres = await PostgresServer.create({ durable: true });
const profileDir = await mkdtemp(join(tmpdir(), 'wiki-log-line-'));
try {
  const url = await postgres.createDatabase('logline');
  const service = await startService(
    { DATABASE_URL: url, SHUTDOWN_DELAY_SECONDS: '0' },
    { discardStdout: true, extraNodeArgs: ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] },
  );
  for (let i = 0; i < USERS; i++) {
    await fetch(`${service.baseUrl}/users`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: `user ${i}` }) });
  }
  const reads = `request = function() return wrk.format("GET", "/user/" .. math.random(1, ${USERS})) end`;
  await runWrk(service.baseUrl, reads, { connections: 32, seconds: 5 }); // warm-up
  const cpuBefore = cpuSecondsOf([service.pid]);
  const timing = await runWrk(service.baseUrl, reads, { connections: 32, seconds: SECONDS });
  const cpuPerRequestUs = ((cpuSecondsOf([service.pid]) - cpuBefore) * 1e6) / (timing.rps * SECONDS);
  await service.stop(); // the profile is written as the process exits
  const [file] = (await readdir(profileDir)).filter((name) => name.endsWith('.cpuprofile'));
  const profile = JSON.parse(await readFile(join(profileDir, file!), 'utf8')) as CpuProfile;
  const line = shareOf(profile, (node) => node.callFrame.functionName === 'requestCompleted' && node.callFrame.url.includes('request-log'));
  const child = shareOf(profile, (node) => node.callFrame.functionName === 'child' && node.callFrame.url.includes('/pino/'));
  // Every sample in pino's and sonic-boom's own code, whoever called it: a check on the
  // two above, should the compiler have inlined requestCompleted out of the stacks.
  const logger = shareOf(profile, (node) => /\/node_modules\/(pino|sonic-boom)\//.test(node.callFrame.url));
  console.error(
    `\nin the running service (GET /user/{id} under wrk for ${SECONDS} s, profiled): ${cpuPerRequestUs.toFixed(0)} µs of the process's CPU per request, of which\n` +
      `  the line (requestCompleted and all it calls)   ${(100 * line).toFixed(1).padStart(5)}%  ${(line * cpuPerRequestUs).toFixed(1).padStart(5)} µs\n` +
      `  the request's child logger (pino child())      ${(100 * child).toFixed(1).padStart(5)}%  ${(child * cpuPerRequestUs).toFixed(1).padStart(5)} µs\n` +
      `  all of pino's and sonic-boom's code             ${(100 * logger).toFixed(1).padStart(5)}%  ${(logger * cpuPerRequestUs).toFixed(1).padStart(5)} µs\n` +
      '  (garbage collection the line causes is not counted: V8 samples it apart, as "(garbage collector)")',
  );
} finally {
  await postgres.destroy();
  await rm(profileDir, { recursive: true, force: true });
}
