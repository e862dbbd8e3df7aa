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
//   to when they are not), and at one whole CPU if neither is one, for comparison.
// - Load is open-loop (support/load.ts): requests leave at a fixed rate whether or not
//   earlier ones were answered, and each latency counts from when its request was due,
//   so a throttled pod's queue shows in the figures. (wrk, a closed loop, slows down
//   with the server it measures; no open-loop tool is packaged here: Debian has no
//   wrk2.) Rates grow by half until a rate fails twice in a row, then the gap is
//   halved three times.
// - A rate holds when every request gets a 2xx and the 99th percentile is within the
//   threshold. Per pod: the latency objective's threshold. For the release (two pods
//   behind round-robin, as a Service spreads connections): the goals of issue 18,
//   50 ms for reads and 100 ms for the mix.
// Two workloads: reads (GET /user/{id}), and a mix of reads by id, list pages and
// creations. Each run lasts CAPACITY_SECONDS (default 10).
//
// To measure candidate values before making them the defaults, pass them as helm
// --set values: `npm run bench:capacity -- --set api.resources.limits.cpu=500m`.

import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { apiEnvironment, pointedAt, postgresMissing, startChartDatabase } from '../support/chart-env.js';
import { cgroupsMissing, cpuCgroupOf, createCgroup, readCpuStat, type Cgroup } from '../support/cgroup.js';
import { configMapData, renderChart, type K8sObject } from '../support/helm.js';
import { highestRate, openLoop, type LoadRequest, type LoadResult } from '../support/load.js';
import { buildServiceImage, podman, podmanMissing, startServiceContainer } from '../support/podman.js';
import { cpuCores } from '../support/quantity.js';
import { cpuSecondsOf } from '@wiki/test-support/cpu';
import type { PostgresServer } from '@wiki/test-support/postgres';
import { sleep } from '@wiki/test-support/wait';

const SECONDS = Number(process.env.CAPACITY_SECONDS ?? 10);
const SEEDED = 2000;
const RELEASE_GOALS_MS = { reads: 50, mix: 100 } as const;

type Workload = keyof typeof RELEASE_GOALS_MS;

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

interface Measured {
  workload: Workload;
  best: LoadResult | undefined;
  /** Share of CFS periods in which the pods ran out of CPU quota, over the best run. */
  throttled: number;
  /** CPU used by each pod over the best run, in cores. */
  cpuPerPod: number;
}

/**
 * Waits until every pod answers /health within 20 ms three times in a row: an overloaded
 * run leaves a queue that the pods work through after the load has stopped, and the
 * next run must not start behind it.
 */
async function untilIdle(pods: Pod[]): Promise<void> {
  const deadline = performance.now() + 120_000;
  let quick = 0;
  while (quick < 3) {
    if (performance.now() > deadline) throw new Error('the pods did not become idle within 2 minutes');
    const started = performance.now();
    await Promise.all(pods.map((pod) => fetch(`${pod.baseUrl}/health`)));
    quick = performance.now() - started < 20 ? quick + 1 : 0;
    await sleep(100);
  }
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

/** The highest rate `pods` hold for a workload within `p99LimitMs`. */
async function measure(pods: Pod[], workload: Workload, p99LimitMs: number, startRate: number): Promise<Measured> {
  const targets = pods.map((pod) => pod.baseUrl);
  await openLoop(targets, startRate, 5, WORKLOADS[workload]);
  const throttling = new Map<number, number>();
  const cpuPerPod = new Map<number, number>();
  const { best } = await highestRate(
    async (rate) => {
      await untilIdle(pods);
      const before = await Promise.all(pods.map((pod) => readCpuStat(pod.cpuDir)));
      const cpuBefore = pods.reduce((sum, pod) => sum + cpuSecondsOf([pod.pid]), 0);
      const started = performance.now();
      const result = await openLoop(targets, rate, SECONDS, WORKLOADS[workload]);
      cpuPerPod.set(rate, (pods.reduce((sum, pod) => sum + cpuSecondsOf([pod.pid]), 0) - cpuBefore) / ((performance.now() - started) / 1000) / pods.length);
      const after = await Promise.all(pods.map((pod) => readCpuStat(pod.cpuDir)));
      const periods = after.reduce((sum, stat, i) => sum + stat.periods - before[i]!.periods, 0);
      const throttled = after.reduce((sum, stat, i) => sum + stat.throttled - before[i]!.throttled, 0);
      throttling.set(rate, periods === 0 ? 0 : throttled / periods);
      process.stderr.write(
        `  ${workload} at ${rate}/s: p50 ${result.p50.toFixed(1)} ms, p99 ${result.p99.toFixed(1)} ms, ${result.failed} failed, ` +
          `throttled ${(100 * throttling.get(rate)!).toFixed(0)}% of periods, ${cpuPerPod.get(rate)!.toFixed(2)} CPU per pod\n`,
      );
      return result;
    },
    p99LimitMs,
    { startRate },
  );
  return {
    workload,
    best,
    throttled: best === undefined ? Number.NaN : throttling.get(best.rate)!,
    cpuPerPod: best === undefined ? Number.NaN : cpuPerPod.get(best.rate)!,
  };
}

async function seed(postgres: PostgresServer, database: string): Promise<void> {
  await postgres.query(
    `INSERT INTO users (name) SELECT 'seeded user ' || g FROM generate_series(1, ${SEEDED}) AS g;
     INSERT INTO posts (user_id, content) SELECT g, 'seeded post ' || g FROM generate_series(1, ${SEEDED}) AS g;
     ANALYZE users; ANALYZE posts;`,
    database,
  );
}

const row = (cells: string[]) => `| ${cells.join(' | ')} |`;
const rate = (measured: Measured) => (measured.best === undefined ? 'none' : `${Math.round(measured.best.achieved)}/s`);
const cores = (value: number) => (Number.isNaN(value) ? '-' : `${value.toFixed(2)} CPU`);
const ms = (value: number | undefined) => (value === undefined || Number.isNaN(value) ? '-' : `${value.toFixed(0)} ms`);

async function main(): Promise<void> {
  const missing = podmanMissing() ?? cgroupsMissing() ?? postgresMissing();
  if (missing !== undefined) throw new Error(`cannot measure the release here: ${missing}`);
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
    // One pod at its request, at its limit, and at one whole CPU (each once).
    const configs = [...new Map([limits.apiCpuRequest, limits.apiCpu, '1'].map((cpus) => [cpuCores(cpus), cpus])).values()];
    const results: Array<{ cpus: string; measured: Measured[] }> = [];
    for (const cpus of configs) {
      const pod = await startPod('wiki-capacity-api-0', env, cpus, limits.apiMemory);
      pods.push(pod);
      if (results.length === 0) await seed(postgres, env.PGDATABASE!);
      await warmUp([pod]);
      const measured: Measured[] = [];
      for (const workload of ['reads', 'mix'] as const) {
        console.log(`one API pod at ${cpus} CPU, ${workload}, p99 within ${limits.objectiveMs} ms:`);
        measured.push(await measure([pod], workload, limits.objectiveMs, 50));
      }
      results.push({ cpus, measured });
      await stopPod(pods.pop()!);
    }

    // The release: its replicas at their limits, behind round-robin.
    for (let i = 0; i < limits.replicas; i++) pods.push(await startPod(`wiki-capacity-api-${i}`, env, limits.apiCpu, limits.apiMemory));
    await warmUp(pods);
    const release: Measured[] = [];
    for (const workload of ['reads', 'mix'] as const) {
      console.log(`the release, ${limits.replicas} pods at ${limits.apiCpu} CPU, ${workload}, p99 within ${RELEASE_GOALS_MS[workload]} ms:`);
      release.push(await measure(pods, workload, RELEASE_GOALS_MS[workload], 100));
    }
    const postgresThrottling = await cgroup.cpuStat();

    const at = (cpus: string) => results.find((result) => cpuCores(result.cpus) === cpuCores(cpus))!;
    const role = (cpus: string) =>
      [cpuCores(cpus) === cpuCores(limits.apiCpuRequest) ? 'request' : '', cpuCores(cpus) === cpuCores(limits.apiCpu) ? 'limit' : '']
        .filter(Boolean)
        .join(' and ') || 'comparison';
    console.log("\n## One API pod, p99 within the latency objective's threshold\n");
    console.log(row(['API container CPU', 'workload', 'highest rate held', 'p50', 'p99', 'CPU periods throttled', 'CPU used']));
    console.log(row(['---', '---', '---', '---', '---', '---', '---']));
    for (const { cpus, measured } of results) {
      for (const m of measured) {
        const throttled = Number.isNaN(m.throttled) ? '-' : `${(100 * m.throttled).toFixed(0)}%`;
        console.log(row([`${cpus} (${role(cpus)})`, m.workload, rate(m), ms(m.best?.p50), ms(m.best?.p99), throttled, cores(m.cpuPerPod)]));
      }
    }
    console.log('\n## Per CPU (highest rate / CPU given)\n');
    console.log(row(['workload', ...results.map(({ cpus }) => `at ${cpus} (${role(cpus)})`), 'efficiency of the request, against 1 CPU']));
    console.log(row(['---', ...results.map(() => '---'), '---']));
    const perCpu = (m: Measured | undefined, cpus: string) => (m?.best === undefined ? 0 : m.best.achieved / cpuCores(cpus));
    (['reads', 'mix'] as const).forEach((workload, i) => {
      const figures = results.map(({ cpus, measured }) => perCpu(measured[i], cpus));
      const ofRequest = perCpu(at(limits.apiCpuRequest).measured[i], limits.apiCpuRequest);
      const ofOne = perCpu(at('1').measured[i], '1');
      console.log(
        row([workload, ...figures.map((figure) => `${Math.round(figure)}/s per CPU`), ofOne === 0 ? '-' : `${((100 * ofRequest) / ofOne).toFixed(0)}%`]),
      );
    });
    console.log(
      `\n## The release: ${limits.replicas} API pods (request ${limits.apiCpuRequest}, limit ${limits.apiCpu} CPU), PostgreSQL limited to ${limits.postgresCpu} CPU\n`,
    );
    const guaranteedPerPod = (i: number) => at(limits.apiCpuRequest).measured[i]!.best?.achieved ?? 0;
    console.log(
      row([
        'workload',
        'goal',
        'highest rate held',
        'p50',
        'p99',
        'CPU used per pod',
        `guaranteed, ${limits.replicas} pods at their request`,
        `guaranteed, ${limits.maxReplicas} pods (autoscaling's maximum)`,
      ]),
    );
    console.log(row(['---', '---', '---', '---', '---', '---', '---', '---']));
    release.forEach((m, i) => {
      const guaranteed = (pods: number) => `${Math.round(guaranteedPerPod(i) * pods)}/s`;
      console.log(
        row([
          m.workload,
          `p99 <= ${RELEASE_GOALS_MS[m.workload]} ms`,
          rate(m),
          ms(m.best?.p50),
          ms(m.best?.p99),
          cores(m.cpuPerPod),
          guaranteed(limits.replicas),
          guaranteed(limits.maxReplicas),
        ]),
      );
    });
    console.log(
      `(guaranteed: one pod's highest rate within ${limits.objectiveMs} ms at its CPU request, times the pods; the scheduler reserves each pod its request, so that ` +
        'holds however busy the neighbours are. The release bursts above it, towards its limits, when the node has idle CPU, as here.)',
    );
    // The autoscaler adds a pod before the pods need more CPU than they are guaranteed.
    const atRequest = at(limits.apiCpuRequest).measured[0]!;
    if (atRequest.best !== undefined) {
      console.log(
        `\nAutoscaling: one pod at its request held ${Math.round(atRequest.best.achieved)} reads/s using ${cores(atRequest.cpuPerPod)}, ` +
          `${Math.round((100 * atRequest.cpuPerPod) / cpuCores(limits.apiCpuRequest))}% of its request; the target is ${limits.targetCpuPercent}% ` +
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

await main();
