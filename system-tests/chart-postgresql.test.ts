import { describe, expect, it } from 'vitest';
import { CHART_DIR, helm, KUBE_VERSION, NAMESPACE, RELEASE, renderChart, type K8sObject } from './support/helm.js';
import { LONG_RUNNING_KINDS, podSpecOf } from './support/kubernetes.js';
import { byKind, componentObject, VALUES_SETS } from './support/rendered.js';

// The chart's own PostgreSQL, rendered and read as a real cluster will treat it: what
// `helm install --wait` waits for, which pods must share a node, and the values the
// chart must refuse before they reach a running database.

/** `helm template` with --set values, to see what the chart refuses and why. */
const templateWith = (...set: string[]) =>
  helm(['template', RELEASE, CHART_DIR, '--namespace', NAMESPACE, '--kube-version', KUBE_VERSION, ...set.flatMap((value) => ['--set', value])]);

describe('`helm install --wait` on a cluster whose StorageClass binds a volume at its first consumer (kind, GKE, EKS)', () => {
  // Helm's --wait waits until every PersistentVolumeClaim is Bound; a
  // WaitForFirstConsumer StorageClass binds a claim only once a pod uses it. A claim
  // used only by the nightly CronJob stayed Pending until 02:30, and the install timed
  // out (and, with --atomic, was rolled back).
  const claimsWithoutALongRunningPod = (objects: K8sObject[]) => {
    const used = new Set(
      objects
        .filter((object) => LONG_RUNNING_KINDS.includes(object.kind))
        .flatMap((workload) => (podSpecOf(workload).volumes ?? []).map((volume: any) => volume.persistentVolumeClaim?.claimName)),
    );
    return byKind(objects, 'PersistentVolumeClaim')
      .map((claim) => claim.metadata.name)
      .filter((name) => !used.has(name));
  };

  it.each(VALUES_SETS)('%s: every claim the chart creates is mounted by a pod that starts at install', async (_name, files) => {
    expect(claimsWithoutALongRunningPod(await renderChart(files))).toEqual([]);
  });

  it('the check finds a claim no pod starts with (it can fail)', () => {
    const claim = { apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name: 'backups' } };
    const cronJob = {
      apiVersion: 'batch/v1',
      kind: 'CronJob',
      metadata: { name: 'backup' },
      spec: { jobTemplate: { spec: { template: { spec: { volumes: [{ name: 'b', persistentVolumeClaim: { claimName: 'backups' } }] } } } } },
    };
    expect(claimsWithoutALongRunningPod([claim, cronJob])).toEqual(['backups']);
  });

  it("PostgreSQL's pod mounts the backups read-only; the backup and restore pods run on its node, where the ReadWriteOnce volume is attached", async () => {
    const objects = await renderChart([], ['postgresql.backup.restore.file=latest']);
    const postgresql = podSpecOf(byKind(objects, 'StatefulSet')[0]!);
    const claim = byKind(objects, 'PersistentVolumeClaim').find((candidate) => candidate.metadata.labels['app.kubernetes.io/component'] === 'backup')!;
    expect(claim.spec.accessModes).toEqual(['ReadWriteOnce']);
    const backupsVolume = postgresql.volumes.find((volume: any) => volume.persistentVolumeClaim?.claimName === claim.metadata.name);
    expect(backupsVolume.persistentVolumeClaim.readOnly).toBe(true);
    expect(postgresql.containers[0].volumeMounts).toContainEqual({ name: backupsVolume.name, mountPath: '/backups', readOnly: true });

    const postgresqlLabels = byKind(objects, 'StatefulSet')[0]!.spec.selector.matchLabels;
    for (const workload of [byKind(objects, 'CronJob')[0]!, byKind(objects, 'Job')[0]!]) {
      expect(podSpecOf(workload).affinity, workload.kind).toEqual({
        podAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: [{ labelSelector: { matchLabels: postgresqlLabels }, topologyKey: 'kubernetes.io/hostname' }],
        },
      });
    }
  });
});

describe('the chart refuses PostgreSQL roles that would break the database, when it renders', () => {
  it.each([
    // setup.sql would strip the only superuser of SUPERUSER.
    ['postgresql.auth.username=postgres', 'postgresql.auth.username is "postgres", a name reserved'],
    ['postgresql.metrics.username=pg_monitor', 'postgresql.metrics.username is "pg_monitor", a name reserved'],
    ['postgresql.backup.username=wiki_chart_setup', 'postgresql.backup.username is "wiki_chart_setup", a name reserved'],
    // The exporter's CONNECTION LIMIT 3 would land on the API's role.
    ['postgresql.metrics.username=wiki', 'postgresql.auth.username and postgresql.metrics.username are both "wiki"'],
    ['postgresql.backup.username=wiki_monitoring', 'postgresql.metrics.username and postgresql.backup.username are both "wiki_monitoring"'],
  ])('%s', async (set, message) => {
    const result = await templateWith(set);
    expect(result.ok).toBe(false);
    expect(result.output).toContain(message);
  });

  it('a role of a feature that is off may share a name (it is never created)', async () => {
    const result = await templateWith('postgresql.metrics.enabled=false', 'postgresql.metrics.username=wiki');
    expect(result.ok, result.output).toBe(true);
    expect(componentObject(await renderChart(), 'StatefulSet', 'postgresql')).toBeDefined();
  });
});

// A restore replaces the API's database. Given to `helm upgrade`, the value stayed in
// the release (--reuse-values kept it): once the finished Job's TTL removed it, the
// next upgrade created it again and restored "latest" over live data.
describe('the restore Job cannot run again by accident', () => {
  it('an upgrade that carries postgresql.backup.restore.file is refused, saying how to unset it', async () => {
    const result = await helm([
      'template',
      RELEASE,
      CHART_DIR,
      '--namespace',
      NAMESPACE,
      '--kube-version',
      KUBE_VERSION,
      '--is-upgrade',
      '--set',
      'postgresql.backup.restore.file=latest',
    ]);
    expect(result.ok).toBe(false);
    expect(result.output).toContain('postgresql.backup.restore.file is set, and an upgrade would restore that backup over the live database');
    expect(result.output).toContain('--set postgresql.backup.restore.file=');
    // Without the value, the same upgrade renders.
    const plain = await helm(['template', RELEASE, CHART_DIR, '--namespace', NAMESPACE, '--kube-version', KUBE_VERSION, '--is-upgrade']);
    expect(plain.ok, plain.output).toBe(true);
  });

  it("rendered for `kubectl apply` or a first `helm install`, it is a post-install hook: never one of the release's objects, so no upgrade or rollback re-creates it", async () => {
    const job = byKind(await renderChart([], ['postgresql.backup.restore.file=latest']), 'Job')[0]!;
    expect(job.metadata.annotations).toMatchObject({ 'helm.sh/hook': 'post-install', 'helm.sh/hook-delete-policy': 'before-hook-creation' });
    expect(job.spec.backoffLimit).toBe(0);
  });
});
