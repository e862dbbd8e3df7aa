// `npm run bench:durability`: what a write's durability costs. POST /users (one
// INSERT, one commit) through the built service, under wrk at 32 connections, with the
// commit acknowledged once it is
// - on the primary's disk only (no standby),
// - on the primary's disk, while an asynchronous standby streams it,
// - on the primary's disk and a synchronous standby's (synchronous_standby_names
//   'ANY 1 (sync)', synchronous_commit on: what CloudNativePG's required durability sets),
// and through PgBouncer in transaction mode (max_prepared_statements) in front of the
// primary alone.
//
// Every server has fsync on, as in production. All four are up at once, and the rounds
// interleave them, rotating the order, so that a noisy moment of the machine falls on
// each alike; the report gives each its median throughput and p99, and the median of
// its per-round throughput ratio to "no standby".
//
// What this machine cannot show: here the standby is on the same host and disk, so a
// synchronous commit waits for a loopback round trip and a second fsync on the same
// device. Between nodes it waits for the network as well (about 0.1-1 ms within a zone,
// more across zones), once per commit.

import { machineCpuSeconds } from '@wiki/test-support/cpu';
import { PgBouncer } from '@wiki/test-support/pgbouncer';
import { TEST_DB_PASSWORD, TEST_DB_USER } from '@wiki/test-support/postgres';
import { startReplicatedCluster, type ReplicatedCluster } from '@wiki/test-support/replication';
import { startService, type ServiceProcess } from '../test/support/service-process.js';
import { fmt, requireWrk, runWrk, type Timing } from './wrk.js';
import { median } from '@wiki/test-support/median';

const CONNECTIONS = 32;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 4);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 6);
const POST_USERS = `wrk.headers["Content-Type"] = "application/json"
request = function() return wrk.format("POST", "/users", nil, '{"name":"durability bench"}') end`;

const BASELINE = 'no standby';

interface Configuration {
  name: string;
  service: ServiceProcess;
}

async function main(): Promise<void> {
  await requireWrk();
  const clusters: ReplicatedCluster[] = [];
  const bouncers: PgBouncer[] = [];
  const configurations: Configuration[] = [];
  const start = async (name: string, databaseUrl: string) => {
    const service = await startService({ DATABASE_URL: databaseUrl, SHUTDOWN_DELAY_SECONDS: '0' }, { discardStdout: true });
    configurations.push({ name, service });
  };
  try {
    for (const [name, synchronous, asynchronous] of [
      [BASELINE, false, false],
      ['asynchronous standby', false, true],
      ['synchronous standby', true, false],
    ] as const) {
      let databaseUrl = '';
      const cluster = await startReplicatedCluster({
        durable: true,
        synchronous,
        asynchronous,
        prepare: async (primary) => {
          databaseUrl = await primary.createDatabase('durability');
        },
      });
      clusters.push(cluster);
      await start(name, databaseUrl);
      if (name === BASELINE) {
        // PgBouncer in front of the same server, on a database of its own.
        const bouncer = await PgBouncer.start({ targetPort: cluster.primary.port, user: TEST_DB_USER, password: TEST_DB_PASSWORD });
        bouncers.push(bouncer);
        const url = new URL(await cluster.primary.createDatabase('durability'));
        url.port = String(bouncer.port);
        await start('through PgBouncer', url.toString());
      }
    }

    const results = new Map<string, Timing[]>(configurations.map((configuration) => [configuration.name, []]));
    const ratios = new Map<string, number[]>(configurations.map((configuration) => [configuration.name, []]));
    // The whole machine's CPU time per request, in µs: the service, wrk, PostgreSQL and, where there is one, the
    // standby's WAL receiver and replay, and the primary's WAL sender, all on the same two cores.
    const cpuPerRequest = new Map<string, number[]>(configurations.map((configuration) => [configuration.name, []]));
    console.log(`POST /users, ${CONNECTIONS} connections, ${SECONDS} s per run, ${ROUNDS} rounds (and one warm-up), every server with fsync on`);
    for (let round = 0; round <= ROUNDS; round++) {
      // Rotate the order, so that no configuration always runs first or last.
      const order = configurations.map((_, index) => configurations[(index + round) % configurations.length]!);
      const thisRound = new Map<string, Timing>();
      for (const { name, service } of order) {
        const cpuBefore = machineCpuSeconds();
        const timing = await runWrk(service.baseUrl, POST_USERS, { connections: CONNECTIONS, seconds: SECONDS });
        cpuPerRequest.get(name)!.push((1e6 * (machineCpuSeconds() - cpuBefore)) / (timing.rps * SECONDS));
        thisRound.set(name, timing);
      }
      if (round === 0) continue; // warm-up: caches, JIT, the first connections
      for (const [name, timing] of thisRound) {
        results.get(name)!.push(timing);
        ratios.get(name)!.push(timing.rps / thisRound.get(BASELINE)!.rps);
      }
      console.log(`round ${round}: ${[...thisRound].map(([name, timing]) => `${name} ${timing.rps.toFixed(0)} req/s`).join(', ')}`);
    }

    console.log(
      `\n${'configuration'.padEnd(24)} ${'req/s'.padStart(7)} ${'p50 ms'.padStart(7)} ${'p99 ms'.padStart(7)} ${'CPU µs/req'.padStart(11)}  throughput vs ${BASELINE} (median of rounds)`,
    );
    for (const { name } of configurations) {
      const timings = results.get(name)!;
      const rps = median(timings.map((timing) => timing.rps));
      const p50 = median(timings.map((timing) => timing.p50));
      const p99 = median(timings.map((timing) => timing.p99));
      const cpu = median(cpuPerRequest.get(name)!.slice(1)); // the warm-up round left out
      console.log(`${name.padEnd(24)} ${fmt(rps, 7)} ${fmt(p50, 7, 1)} ${fmt(p99, 7, 1)} ${fmt(cpu, 11)}  ${median(ratios.get(name)!).toFixed(2)}`);
    }
    console.log(
      '\nThe load generator, the service, PostgreSQL and its standby share two cores: compare the ratios, not the absolute figures. ' +
        "CPU µs/req is the whole machine's: where it grows, the throughput lost is CPU that would be on another node in a cluster.",
    );
  } finally {
    await Promise.all(configurations.map(({ service }) => service.stop()));
    await Promise.all(bouncers.map((bouncer) => bouncer.destroy()));
    await Promise.all(clusters.map((cluster) => cluster.destroy()));
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
