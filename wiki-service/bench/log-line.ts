// `npm run bench:log-line`: what the request log line costs, alone, and what it is
// made of. The full bench (`npm run bench`) compares the service with and without the
// line (LOG_LEVEL=warn), but on two shared cores its CPU per request moves by more
// between rounds (±40 %) than the line can cost, so the line is measured here on its
// own: the service's logger (src/logger.ts) writing the line the service writes
// (plugins/request-log.ts), through a child logger per request as Fastify makes one,
// to /dev/null as the bench's service does. Each variant leaves one part out; they run
// interleaved, in an order reversed every other round, and the medians are reported.
//
// Run it with the service's Node flags: `npm run bench:log-line` does.

import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { createLogger } from '../src/logger.js';
import { median } from '@wiki/test-support/median';

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
