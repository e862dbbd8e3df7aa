import { describe, expect, it } from 'vitest';
import { renderChart } from './support/helm.js';
import { cpuCores, memoryBytes } from './support/quantity.js';
import { podSpecOf, WORKLOAD_KINDS } from './support/kubernetes.js';
import { byKind } from './support/rendered.js';

// What the release asks of a cluster with the default values: every pod's requests
// and limits, and the volumes, summed and held to the budget docs/PHASE4_HELM.md gives.

describe('resource budget of the defaults', () => {
  // Volumes as many clusters' storage hands them out: in whole GiB, rounded up.
  const wholeGiB = (quantity: string) => Math.ceil(memoryBytes(quantity) / 2 ** 30) * 2 ** 30;

  it('a volume is counted in whole GiB, rounded up', () => {
    expect([wholeGiB('64Mi'), wholeGiB('1Gi'), wholeGiB('1025Mi'), wholeGiB('2G')].map((bytes) => bytes / 2 ** 30)).toEqual([1, 1, 2, 2]);
  });

  // What everything the chart runs needs at a given moment: CPU by its requests (what
  // the scheduler reserves; CPU is compressible, and a pod bursting to its limit only
  // borrows what its neighbours leave idle), memory by its limits (memory is not
  // compressible: a container over its limit is killed). docs/PHASE6, "Requests,
  // limits and CPU throttling", gives the measured reasons.
  async function budget(set: string[], busiest: boolean) {
    const objects = await renderChart([], set);
    const total = { cpu: 0, memory: 0, storage: 0 };
    const sum = (containers: any[], of: (c: any) => number) => containers.reduce((acc, c) => acc + of(c), 0);
    const max = (containers: any[], of: (c: any) => number) => Math.max(0, ...containers.map(of));
    const addPods = (pod: any, count: number) => {
      // A pod's effective request and limit: its containers together, or its largest init container.
      total.cpu +=
        count *
        Math.max(
          sum(pod.containers, (c) => cpuCores(c.resources.requests.cpu)),
          max(pod.initContainers ?? [], (c) => cpuCores(c.resources.requests.cpu)),
        );
      total.memory +=
        count *
        Math.max(
          sum(pod.containers, (c) => memoryBytes(c.resources.limits.memory)),
          max(pod.initContainers ?? [], (c) => memoryBytes(c.resources.limits.memory)),
        );
    };
    for (const workload of objects.filter((object) => WORKLOAD_KINDS.includes(object.kind))) {
      // A CronJob's pod runs now and then (concurrencyPolicy Forbid: one at a time): at the busiest moment.
      if (workload.kind === 'CronJob') {
        expect(workload.spec.concurrencyPolicy).toBe('Forbid');
        if (busiest) addPods(podSpecOf(workload), 1);
        continue;
      }
      // A hook's Job (the database credentials) runs before each install and upgrade: counted at the busiest moment too.
      if (workload.kind === 'Job' && workload.metadata.annotations?.['helm.sh/hook'] !== undefined) {
        if (busiest) addPods(podSpecOf(workload), 1);
        continue;
      }
      const autoscaler = byKind(objects, 'HorizontalPodAutoscaler').find((hpa) => hpa.spec.scaleTargetRef.name === workload.metadata.name);
      let pods = autoscaler === undefined ? (workload.spec.replicas ?? 1) : busiest ? autoscaler.spec.maxReplicas : autoscaler.spec.minReplicas;
      // A rolling update runs maxSurge extra pods until the old ones are gone.
      const surge = workload.spec.strategy?.rollingUpdate?.maxSurge;
      if (busiest && surge !== undefined) pods += typeof surge === 'number' ? surge : Math.ceil((pods * Number.parseInt(surge, 10)) / 100);
      addPods(podSpecOf(workload), pods);
      for (const claim of workload.spec.volumeClaimTemplates ?? [])
        total.storage += (workload.spec.replicas ?? 1) * wholeGiB(claim.spec.resources.requests.storage);
    }
    // `helm test` pods run on top of everything else.
    const testPods = byKind(objects, 'Pod').filter((pod) => pod.metadata.annotations?.['helm.sh/hook'] === 'test');
    expect(testPods.length).toBeGreaterThan(0);
    if (busiest) for (const pod of testPods) addPods(pod.spec, 1);
    for (const claim of byKind(objects, 'PersistentVolumeClaim')) total.storage += wholeGiB(claim.spec.resources.requests.storage);
    // Every component of the roadmap is in the budget.
    const components = objects.filter((object) => WORKLOAD_KINDS.includes(object.kind)).map((object) => object.metadata.labels['app.kubernetes.io/component']);
    expect(components.sort()).toEqual(['alertmanager', 'api', 'backup', 'credentials', 'grafana', 'postgresql', 'prometheus']);
    return total;
  }

  it.each([
    ['the steady state', [], false],
    ['a rolling update of the API (maxSurge) while `helm test` runs', [], true],
    ['the same with autoscaling enabled, at maxReplicas', ['api.autoscaling.enabled=true'], true],
  ] as Array<[string, string[], boolean]>)(
    '%s fits 2 CPUs of requests, 4 GiB of memory limits and 5 GiB of volumes in whole GiB (backups, Grafana and Alertmanager included)',
    async (moment, set, busiest) => {
      const { cpu, memory, storage } = await budget(set, busiest);
      console.log(
        `budget, ${moment}: ${cpu.toFixed(2)} CPU requested, ${(memory / 2 ** 30).toFixed(2)} GiB memory limits, ${(storage / 2 ** 30).toFixed(2)} GiB volumes`,
      );
      expect(cpu).toBeLessThanOrEqual(2);
      expect(memory).toBeLessThanOrEqual(4 * 2 ** 30);
      expect(storage).toBeLessThanOrEqual(5 * 2 ** 30);
    },
  );

  it('counts CPU by requests, not limits: a larger API request breaks it, a larger API limit does not', async () => {
    // Four API pods at the busiest moment (three, and the rollout's extra one).
    const busiest = (set: string[]) => budget(['api.autoscaling.enabled=true', ...set], true);
    const defaults = await busiest([]);
    expect((await busiest(['api.resources.requests.cpu=500m'])).cpu).toBeCloseTo(defaults.cpu + 4 * 0.15, 6);
    expect((await busiest(['api.resources.requests.cpu=500m'])).cpu).toBeGreaterThan(2);
    expect((await busiest(['api.resources.limits.cpu=2'])).cpu).toBeCloseTo(defaults.cpu, 6);
    // Memory by limits: a container over its memory limit is killed, so they must all fit.
    expect((await busiest(['api.resources.limits.memory=512Mi'])).memory).toBe(defaults.memory + 4 * 256 * 2 ** 20);
  });
});
