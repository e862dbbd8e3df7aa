// `npm run bench:capacity`: what the release holds as deployed, under its own limits.
//
// The chart is rendered (`helm template`, default values), and everything is read
// from it, never copied by hand: the API container's CPU request and limit and its
// memory limit, its environment, PostgreSQL's limits and settings, the replicas,
// autoscaling's maximum and target, and the latency objective's threshold.
// - PostgreSQL 15 is set up by the chart's setup.sh, fsync on, and runs in a cgroup
//   with the PostgreSQL container's CPU and memory limits.
// - The API is the image built from wiki-service/Dockerfile, run by Podman with
//   --cpus and --memory from the API container's limits, read-only and unprivileged
//   as the chart runs it. One pod is measured at its CPU request (what the scheduler
//   guarantees it when every neighbour is busy), at its CPU limit (what it may burst
//   to when they are not), and at one whole CPU if neither is one, for comparison;
//   then the release: its replicas at their limits, behind round-robin.
// - Load is open-loop (support/load.ts): requests leave at a fixed rate whether or not
//   earlier ones were answered, and each latency counts from when its request was due,
//   so a throttled pod's queue shows in the figures. (wrk, a closed loop, slows down
//   with the server it measures; no open-loop tool is packaged here: Debian has no
//   wrk2.) Rates double until one fails, then the gap is halved four times.
// - A rate holds when every request gets a 2xx and the 99th percentile is within the
//   threshold. Per pod: the latency objective's threshold. For the release (two pods
//   behind round-robin, as a Service spreads connections): the goals of issue 18,
//   50 ms for reads and 100 ms for the mix.
// - Like with like: every configuration is measured CAPACITY_REPEATS times (default 3),
//   interleaved (each repeat goes through all of them, in alternating order, with new
//   pods), and the figures are medians over the repeats, beside their range. Before
//   every run the tables are emptied and seeded again, so each run starts from the same
//   2,000 users and posts, whatever earlier runs created.
// - The load generator is this process, on the same machine: it shares the cores with
//   the pods and PostgreSQL. Its CPU and the whole machine's are measured over each
//   best run and printed, and a figure the machine rather than the chart limited is
//   marked as such.
// Two workloads: reads (GET /user/{id}), and a mix of reads by id, list pages and
// creations. Each run lasts CAPACITY_SECONDS (default 10).
//
// To measure candidate values before making them the defaults, pass them as helm
// --set values: `npm run bench:capacity -- --set api.resources.limits.cpu=500m`.

import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { performance } from 'node:perf_hooks';
import { apiEnvironment, pointedAt, postgresMissing, startChartDatabase } from '../support/chart-env.js';
import { cgroupsMissing, cpuCgroupOf, createCgroup, readCpuStat, type Cgroup } from '../support/cgroup.js';
import { configMapData, renderChart, type K8sObject } from '../support/helm.js';
import { highestRate, openLoop, type LoadRequest, type LoadResult } from '../support/load.js';
import { buildServiceImage, podman, podmanMissing, startServiceContainer } from '../support/podman.js';
import { cpuCores } from '../support/quantity.js';
import { cpuSecondsOf, machineCpuSeconds } from '@wiki/test-support/cpu';
import { median } from '@wiki/test-support/median';
import type { PostgresServer } from '@wiki/test-support/postgres';
import { until } from '@wiki/test-support/wait';

const SECONDS = Number(process.env.CAPACITY_SECONDS ?? 10);
const REPEATS = Number(process.env.CAPACITY_REPEATS ?? 3);
const MACHINE_CORES = cpus().length;
/** The machine's CPUs at least this busy over a run: what ran out was the machine. */
const MACHINE_BUSY = 0.9;
/** Below this many times one pod's rate, a second pod added too little to call the release's figure the chart's. */
const SCALING_EXPECTED = 1.3;
const SEEDED = 2000;
const RELEASE_GOALS_MS = { reads: 50, mix: 100 } as const;

type Workload = keyof typeof RELEASE_GOALS_MS;

// Ctrl-C (or SIGTERM) ends the run after the current rate, through the cleanup a
// finished run does: the pods removed, PostgreSQL stopped, its cgroup removed. A
// terminal's Ctrl-C reaches this process twice (from the terminal, and relayed by tsx),
// so the handler stays for every signal.
let interrupted = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (!interrupted) process.stderr.write(`${signal}: stopping after the current run, then removing the pods, PostgreSQL and its cgroup\n`);
    interrupted = true;
  });
}
const stopIfInterrupted = () => {
  if (interrupted) throw new Error('interrupted');
};

const randomId = () => 1 + Math.floor(Math.random() * SEEDED);

/** GET /user/{id} of a seeded user. */
const reads = (): LoadRequest => ({ method: 'GET', path: `/user/${randomId()}` });

/** Reads by id (users 50%, posts 15%), list pages (15%), creations (users 10%, posts 10%). */
function mix(): LoadRequest {
  const draw = Math.random();
  if (draw < 0.5) return { method: 'GET', path: `/user/${randomId()}` };
  if (draw < 0.65) return { method: 'GET', path: `/posts/${randomId()}` };
  if (draw < 0.8) return { method: 'GET', path: `/${draw < 0.725 ? 'users' : 'posts'}?limit=20&cursor=${randomId()}` };
  if (draw < 0.9) return { method: 'POST', path: '/users', body: JSON.stringify({ name: `capacity ${randomUUID()}` }) };
  return { method: 'POST', path: '/posts', body: JSON.stringify({ user_id: randomId(), content: `a post of the capacity benchmark, ${randomUUID()}` }) };
}

const WORKLOADS: Record<Workload, () => LoadRequest> = { reads, mix };

interface Limits {
  apiCpuRequest: string;
  apiCpu: string;
  apiMemory: string;
  postgresCpu: string;
  postgresMemory: string;
  replicas: number;
  maxReplicas: number;
  /** The autoscaler's target: average CPU use in percent of the request. */
  targetCpuPercent: number;
  objectiveMs: number;
}

function limitsOf(objects: K8sObject[]): Limits {
  const workload = (component: string) =>
    objects.find((object) => ['Deployment', 'StatefulSet'].includes(object.kind) && object.metadata.labels['app.kubernetes.io/component'] === component)!;
  const api = workload('api').spec.template.spec.containers.find((container: { name: string }) => container.name === 'api');
  const postgres = workload('postgresql').spec.template.spec.containers.find((container: { name: string }) => container.name === 'postgresql');
  return {
    apiCpuRequest: api.resources.requests.cpu,
    apiCpu: api.resources.limits.cpu,
    apiMemory: api.resources.limits.memory,
    postgresCpu: postgres.resources.limits.cpu,
    postgresMemory: postgres.resources.limits.memory,
    replicas: workload('api').spec.replicas,
    maxReplicas: 0,
    targetCpuPercent: 0,
    // The threshold the rendered latency objective counts requests against (its histogram bucket).
    objectiveMs: Number(/http_request_duration_seconds_bucket\{[^}]*le="([0-9.]+)"/.exec(configMapData(objects, 'prometheus-rules')['slo.yaml']!)![1]) * 1000,
  };
}

interface Pod {
  name: string;
  baseUrl: string;
  cpuDir: string;
  pid: number;
}

async function startPod(name: string, env: Record<string, string>, cpus: string, memory: string): Promise<Pod> {
  await podman(['rm', '--force', '--time', '0', name]).catch(() => undefined);
  const baseUrl = await startServiceContainer(
    name,
    { LOG_LEVEL: 'info', ...env },
    { extraArgs: [`--cpus=${cpuCores(cpus)}`, `--memory=${memory}`], readyPath: '/ready' },
  );
  const pid = Number(await podman(['inspect', name, '--format', '{{.State.Pid}}']));
  return { name, baseUrl, cpuDir: await cpuCgroupOf(pid), pid };
}

const stopPod = (pod: Pod) => podman(['rm', '--force', '--time', '0', pod.name]).catch(() => undefined);

/** One search's result: the best run it found and what was measured over that run. */
interface Measured {
  best: LoadResult | undefined;
  /** Share of CFS periods in which the pods ran out of CPU quota. */
  throttled: number;
  /** CPU used by each pod, in cores. */
  cpuPerPod: number;
  /** CPU used by the load generator (this process), in cores. */
  loadGeneratorCpu: number;
  /** CPU used by the whole machine, in cores. */
  machineCpu: number;
}

/**
 * Waits until every pod answers /health within 20 ms three times in a row: an overloaded
 * run leaves a queue that the pods work through after the load has stopped, and the
 * next run must not start behind it.
 */
async function untilIdle(pods: Pod[]): Promise<void> {
  let quick = 0;
  await until(
    'the pods to be idle',
    120_000,
    async () => {
      const started = performance.now();
      await Promise.all(pods.map((pod) => fetch(`${pod.baseUrl}/health`)));
      quick = performance.now() - started < 20 ? quick + 1 : 0;
      return quick >= 3;
    },
    { intervalMs: 100 },
  );
}

/**
 * New pods warm up on the whole mix (every route, reads and writes) for 20 s: the JIT
 * (slow at a fifth of a CPU) and the database pool's connections (each one a SCRAM
 * login, which costs CPU on both sides).
 */
async function warmUp(pods: Pod[]): Promise<void> {
  await openLoop(
    pods.map((pod) => pod.baseUrl),
    50,
    20,
    mix,
  );
  await untilIdle(pods);
}

/** The highest rate `pods` hold for a workload within `p99LimitMs`, each run from the same seeded tables. */
async function measure(pods: Pod[], workload: Workload, p99LimitMs: number, startRate: number, seedAgain: () => Promise<void>): Promise<Measured> {
  const targets = pods.map((pod) => pod.baseUrl);
  // A ramp of the workload itself, doubling from the start rate to 8 times it, 3 s at
  // each: code a workload only makes hot at higher rates is compiled here, not in the
  // middle of a measured run. At a 350m quota a burst of V8's compilation threads uses
  // up the period and stalls the requests behind it, and now that one run decides a
  // rate, such a stall would end the search far below what the pod holds.
  for (let rate = startRate; rate <= 8 * startRate; rate *= 2) await openLoop(targets, rate, 3, WORKLOADS[workload]);
  await untilIdle(pods);
  // Keyed by rate: highestRate runs each rate once, so a rate names one run.
  const measuredAt = new Map<number, Omit<Measured, 'best'>>();
  const { best } = await highestRate(
    async (rate) => {
      stopIfInterrupted();
      await seedAgain();
      await untilIdle(pods);
      const before = await Promise.all(pods.map((pod) => readCpuStat(pod.cpuDir)));
      const cpuBefore = { pods: pods.reduce((sum, pod) => sum + cpuSecondsOf([pod.pid]), 0), self: process.cpuUsage(), machine: machineCpuSeconds() };
      const started = performance.now();
      const result = await openLoop(targets, rate, SECONDS, WORKLOADS[workload]);
      const seconds = (performance.now() - started) / 1000;
      const self = process.cpuUsage(cpuBefore.self);
      const after = await Promise.all(pods.map((pod) => readCpuStat(pod.cpuDir)));
      const periods = after.reduce((sum, stat, i) => sum + stat.periods - before[i]!.periods, 0);
      const throttled = after.reduce((sum, stat, i) => sum + stat.throttled - before[i]!.throttled, 0);
      const figures = {
        throttled: periods === 0 ? 0 : throttled / periods,
        cpuPerPod: (pods.reduce((sum, pod) => sum + cpuSecondsOf([pod.pid]), 0) - cpuBefore.pods) / seconds / pods.length,
        loadGeneratorCpu: (self.user + self.system) / 1e6 / seconds,
        machineCpu: (machineCpuSeconds() - cpuBefore.machine) / seconds,
      };
      measuredAt.set(rate, figures);
      process.stderr.write(
        `  ${workload} at ${rate}/s: p50 ${result.p50.toFixed(1)} ms, p99 ${result.p99.toFixed(1)} ms, ${result.failed} failed, ` +
          `throttled ${(100 * figures.throttled).toFixed(0)}% of periods, ${figures.cpuPerPod.toFixed(2)} CPU per pod, ` +
          `load generator ${figures.loadGeneratorCpu.toFixed(2)} CPU, machine ${figures.machineCpu.toFixed(2)} of ${MACHINE_CORES} CPUs\n`,
      );
      return result;
    },
    p99LimitMs,
    { startRate },
  );
  const none = { throttled: Number.NaN, cpuPerPod: Number.NaN, loadGeneratorCpu: Number.NaN, machineCpu: Number.NaN };
  return { best, ...(best === undefined ? none : measuredAt.get(best.rate)!) };
}

/** Empties the tables and seeds them again: the same 2,000 users and posts, the same ids, fresh statistics. */
async function reseed(postgres: PostgresServer, database: string): Promise<void> {
  await postgres.query(
    `TRUNCATE posts, users RESTART IDENTITY;
     INSERT INTO users (name) SELECT 'seeded user ' || g FROM generate_series(1, ${SEEDED}) AS g;
     INSERT INTO posts (user_id, content) SELECT g, 'seeded post ' || g FROM generate_series(1, ${SEEDED}) AS g;
     ANALYZE users; ANALYZE posts;`,
    database,
  );
}

/** What is measured: a number of pods at a CPU limit, against a goal per workload. */
interface Configuration {
  label: string;
  cpus: string;
  pods: number;
  goalsMs: Record<Workload, number>;
  startRate: number;
}

/** One configuration's searches over the repeats, per workload. */
type Samples = Record<Workload, Measured[]>;

const medianOf = (searches: Measured[], figure: (m: Measured) => number | undefined) =>
  median(searches.map(figure).filter((value): value is number => value !== undefined && !Number.isNaN(value)));
/** The highest rate held; a search that held no rate counts as 0. */
const heldRate = (m: Measured) => m.best?.achieved ?? 0;

const row = (cells: string[]) => `| ${cells.join(' | ')} |`;
const cores = (value: number) => (Number.isNaN(value) ? '-' : `${value.toFixed(2)} CPU`);
const ms = (value: number) => (Number.isNaN(value) ? '-' : `${value.toFixed(0)} ms`);
const perSecond = (value: number) => `${Math.round(value).toLocaleString('en')}/s`;
/** The median highest rate, with the range over the repeats. */
const held = (searches: Measured[]) => {
  const rates = searches.map(heldRate);
  return `${perSecond(median(rates))} (${perSecond(Math.min(...rates))} to ${perSecond(Math.max(...rates))})`;
};
/** Where the machine's CPUs were nearly all busy over the best runs, the figure is the machine's, not the chart's. */
const machineBound = (searches: Measured[]) => medianOf(searches, (m) => m.machineCpu) >= MACHINE_BUSY * MACHINE_CORES;

async function main(): Promise<void> {
  const missing = podmanMissing() ?? cgroupsMissing() ?? postgresMissing();
  if (missing !== undefined) throw new Error(`cannot measure the release here: ${missing}`);
  if (!Number.isInteger(REPEATS) || REPEATS < 3)
    throw new Error(`CAPACITY_REPEATS must be 3 or more, for a median that one stray search cannot move (got ${REPEATS})`);
  const set = process.argv.slice(2).flatMap((arg, i, args) => (args[i - 1] === '--set' ? [arg] : []));
  if (set.length > 0) console.log(`values set: ${set.join(', ')}`);
  const objects = await renderChart([], set);
  const autoscaled = await renderChart([], [...set, 'api.autoscaling.enabled=true']);
  const autoscaler = autoscaled.find((object) => object.kind === 'HorizontalPodAutoscaler')!;
  const limits: Limits = {
    ...limitsOf(objects),
    maxReplicas: autoscaler.spec.maxReplicas,
    targetCpuPercent: autoscaler.spec.metrics[0].resource.target.averageUtilization,
  };
  console.log(
    `the release as rendered: API pods ${limits.replicas} (autoscaling up to ${limits.maxReplicas} at ${limits.targetCpuPercent}% of the request), ` +
      `each requesting ${limits.apiCpuRequest} CPU and limited to ${limits.apiCpu} CPU and ${limits.apiMemory}; ` +
      `PostgreSQL limited to ${limits.postgresCpu} CPU and ${limits.postgresMemory}; the latency objective's threshold ${limits.objectiveMs} ms`,
  );
  console.log(
    `this machine has ${MACHINE_CORES} CPUs, shared by the load generator (this process), the API pods and PostgreSQL; ` +
      `${REPEATS} repeats of every configuration, interleaved, ${SECONDS} s per rate`,
  );

  console.log('building the image (podman build; cached layers make a rebuild quick)');
  await buildServiceImage();

  const postgres = await startChartDatabase(objects, {}, { durable: true });
  let cgroup: Cgroup | undefined;
  const pods: Pod[] = [];
  try {
    cgroup = await createCgroup('wiki-capacity-postgresql', limits.postgresCpu, limits.postgresMemory);
    const postmaster = Number(readFileSync(`${postgres.dataDir}/postmaster.pid`, 'utf8').split('\n')[0]);
    const children = execFileSync('pgrep', ['-P', String(postmaster)])
      .toString()
      .split('\n')
      .filter(Boolean)
      .map(Number);
    await cgroup.add([postmaster, ...children]);

    const env = pointedAt(postgres, apiEnvironment(objects).api);
    const database = env.PGDATABASE!;
    const perPod = { reads: limits.objectiveMs, mix: limits.objectiveMs };
    // One pod at its request, at its limit, and at one whole CPU (each once), then the release.
    const configurations: Configuration[] = [
      ...[...new Map([limits.apiCpuRequest, limits.apiCpu, '1'].map((cpus) => [cpuCores(cpus), cpus])).values()].map((cpus) => ({
        label: `one pod at ${cpus} CPU`,
        cpus,
        pods: 1,
        goalsMs: perPod,
        startRate: 50,
      })),
      {
        label: `the release, ${limits.replicas} pods at ${limits.apiCpu} CPU`,
        cpus: limits.apiCpu,
        pods: limits.replicas,
        goalsMs: RELEASE_GOALS_MS,
        startRate: 100,
      },
    ];
    const samples = new Map<Configuration, Samples>(configurations.map((configuration) => [configuration, { reads: [], mix: [] }]));
    for (let repeat = 0; repeat < REPEATS; repeat++) {
      // Alternating order, so that no configuration always runs first or last in a repeat.
      for (const configuration of repeat % 2 === 0 ? configurations : [...configurations].reverse()) {
        stopIfInterrupted();
        for (let i = 0; i < configuration.pods; i++) {
          pods.push(await startPod(`wiki-capacity-api-${i}`, env, configuration.cpus, limits.apiMemory));
        }
        await reseed(postgres, database);
        await warmUp(pods);
        for (const workload of ['reads', 'mix'] as const) {
          console.log(`repeat ${repeat + 1} of ${REPEATS}: ${configuration.label}, ${workload}, p99 within ${configuration.goalsMs[workload]} ms:`);
          const measured = await measure(pods, workload, configuration.goalsMs[workload], configuration.startRate, () => reseed(postgres, database));
          samples.get(configuration)![workload].push(measured);
        }
        while (pods.length > 0) await stopPod(pods.pop()!);
      }
    }
    const postgresThrottling = await cgroup.cpuStat();

    const release = configurations.at(-1)!;
    const onePod = configurations.slice(0, -1);
    const at = (cpus: string) => samples.get(onePod.find((configuration) => cpuCores(configuration.cpus) === cpuCores(cpus))!)!;
    const role = (cpus: string) =>
      [cpuCores(cpus) === cpuCores(limits.apiCpuRequest) ? 'request' : '', cpuCores(cpus) === cpuCores(limits.apiCpu) ? 'limit' : '']
        .filter(Boolean)
        .join(' and ') || 'comparison';
    const machineNote = (searches: Measured[]) => (machineBound(searches) ? ' (machine-bound)' : '');
    console.log(`\n## One API pod, p99 within the latency objective's threshold (medians over ${REPEATS} repeats, range in brackets)\n`);
    console.log(
      row(['API container CPU', 'workload', 'highest rate held', 'p50', 'p99', 'CPU periods throttled', 'CPU used', 'load generator CPU', 'machine CPU']),
    );
    console.log(row(Array(9).fill('---')));
    for (const configuration of onePod) {
      for (const workload of ['reads', 'mix'] as const) {
        const searches = samples.get(configuration)![workload];
        const throttled = medianOf(searches, (m) => m.throttled);
        console.log(
          row([
            `${configuration.cpus} (${role(configuration.cpus)})`,
            workload,
            held(searches) + machineNote(searches),
            ms(medianOf(searches, (m) => m.best?.p50)),
            ms(medianOf(searches, (m) => m.best?.p99)),
            Number.isNaN(throttled) ? '-' : `${(100 * throttled).toFixed(0)}%`,
            cores(medianOf(searches, (m) => m.cpuPerPod)),
            cores(medianOf(searches, (m) => m.loadGeneratorCpu)),
            `${cores(medianOf(searches, (m) => m.machineCpu))} of ${MACHINE_CORES}`,
          ]),
        );
      }
    }
    console.log('\n## Per CPU (median highest rate / CPU given)\n');
    console.log(row(['workload', ...onePod.map(({ cpus }) => `at ${cpus} (${role(cpus)})`), 'efficiency of the request, against 1 CPU']));
    console.log(row(Array(onePod.length + 2).fill('---')));
    const perCpu = (cpus: string, workload: Workload) => median(at(cpus)[workload].map(heldRate)) / cpuCores(cpus);
    for (const workload of ['reads', 'mix'] as const) {
      const ofOne = perCpu('1', workload);
      console.log(
        row([
          workload,
          ...onePod.map(({ cpus }) => `${perSecond(perCpu(cpus, workload))} per CPU`),
          ofOne === 0 ? '-' : `${((100 * perCpu(limits.apiCpuRequest, workload)) / ofOne).toFixed(0)}%`,
        ]),
      );
    }
    console.log(
      `\n## The release: ${limits.replicas} API pods (request ${limits.apiCpuRequest}, limit ${limits.apiCpu} CPU), PostgreSQL limited to ${limits.postgresCpu} CPU\n`,
    );
    const guaranteedPerPod = (workload: Workload) => median(at(limits.apiCpuRequest)[workload].map(heldRate));
    console.log(
      row([
        'workload',
        'goal',
        'highest rate held',
        'p50',
        'p99',
        'CPU used per pod',
        'load generator CPU',
        'machine CPU',
        `guaranteed, ${limits.replicas} pods at their request`,
        `guaranteed, ${limits.maxReplicas} pods (autoscaling's maximum)`,
      ]),
    );
    console.log(row(Array(10).fill('---')));
    for (const workload of ['reads', 'mix'] as const) {
      const searches = samples.get(release)![workload];
      console.log(
        row([
          workload,
          `p99 <= ${RELEASE_GOALS_MS[workload]} ms`,
          held(searches) + machineNote(searches),
          ms(medianOf(searches, (m) => m.best?.p50)),
          ms(medianOf(searches, (m) => m.best?.p99)),
          cores(medianOf(searches, (m) => m.cpuPerPod)),
          cores(medianOf(searches, (m) => m.loadGeneratorCpu)),
          `${cores(medianOf(searches, (m) => m.machineCpu))} of ${MACHINE_CORES}`,
          perSecond(guaranteedPerPod(workload) * limits.replicas),
          perSecond(guaranteedPerPod(workload) * limits.maxReplicas),
        ]),
      );
    }
    console.log(
      `(guaranteed: one pod's median highest rate within ${limits.objectiveMs} ms at its CPU request, times the pods; the scheduler reserves each pod its request, so that ` +
        'holds however busy the neighbours are. The release bursts above it, towards its limits, when the node has idle CPU, as here.)',
    );
    console.log(
      `\nThe load generator runs on this machine: it and PostgreSQL share the ${MACHINE_CORES} CPUs with the pods, so no figure here is what a ` +
        `pod gets on a node of its own. "machine-bound": over the best runs the machine's CPUs were at least ${100 * MACHINE_BUSY}% busy; that figure ` +
        'is what this machine could drive and serve at once, a lower bound for the chart, not its limit.',
    );
    for (const workload of ['reads', 'mix'] as const) {
      const searches = samples.get(release)![workload];
      const ofRelease = median(searches.map(heldRate));
      const ofOne = median(at(limits.apiCpu)[workload].map(heldRate));
      if (ofRelease >= SCALING_EXPECTED * ofOne) continue;
      const busy = cores(medianOf(searches, (m) => m.machineCpu));
      console.log(
        `${workload}: the release's ${limits.replicas} pods held ${perSecond(ofRelease)} (p99 within ${RELEASE_GOALS_MS[workload]} ms) against ` +
          `${perSecond(ofOne)} for one pod at the same CPU limit (p99 within ${limits.objectiveMs} ms): adding a pod added little. ` +
          (machineBound(searches)
            ? `The machine's CPUs were busy (${busy} of ${MACHINE_CORES}): the host, not the chart, is the bottleneck there.`
            : `Over the release's best runs the machine's CPUs were ${busy} of ${MACHINE_CORES} busy, shared with the load generator and ` +
              `PostgreSQL: the host bounds this figure as much as the chart does, and the release's latency goal is ` +
              `${Math.round(limits.objectiveMs / RELEASE_GOALS_MS[workload])} times tighter.`),
      );
    }
    // The autoscaler adds a pod before the pods need more CPU than they are guaranteed.
    const atRequest = at(limits.apiCpuRequest).reads;
    const cpuAtRequest = medianOf(atRequest, (m) => m.cpuPerPod);
    if (!Number.isNaN(cpuAtRequest)) {
      console.log(
        `\nAutoscaling: one pod at its request held a median ${perSecond(median(atRequest.map(heldRate)))} reads using ${cores(cpuAtRequest)}, ` +
          `${Math.round((100 * cpuAtRequest) / cpuCores(limits.apiCpuRequest))}% of its request; the target is ${limits.targetCpuPercent}% ` +
          `(${cores((limits.targetCpuPercent / 100) * cpuCores(limits.apiCpuRequest))}).`,
      );
    }
    console.log(`\nPostgreSQL's cgroup: ${postgresThrottling.throttled} of ${postgresThrottling.periods} CPU periods throttled over the whole run.`);
  } finally {
    for (const pod of pods) await stopPod(pod);
    await postgres.destroy();
    await cgroup?.remove();
  }
}

try {
  await main();
} catch (error) {
  if (!interrupted) throw error;
  process.stderr.write('stopped: the pods, PostgreSQL and its cgroup are removed\n');
  process.exitCode = 130;
}
