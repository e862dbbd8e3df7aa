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
    for (const workload of [byKind(objects, 'CronJob')[0]!, componentObject(objects, 'Job', 'backup')!]) {
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
    const job = componentObject(await renderChart([], ['postgresql.backup.restore.file=latest']), 'Job', 'backup')!;
    expect(job.metadata.annotations).toMatchObject({ 'helm.sh/hook': 'post-install', 'helm.sh/hook-delete-policy': 'before-hook-creation' });
    expect(job.spec.backoffLimit).toBe(0);
  });
});

// A container over its memory limit is killed, and PostgreSQL is one pod: the API
// answers 503 until it is back. The chart's defaults once allowed 784MB against 512Mi.
describe("PostgreSQL's settings against its memory limit", () => {
  it.each([
    // PostgreSQL's own defaults: 128MB + 3 x 64MB + 100 x 4MB + 64MB = 784MB.
    [['postgresql.config.work_mem=4MB', 'postgresql.config.maintenance_work_mem=64MB'], 'may use up to 784MB'],
    [['postgresql.config.max_connections=200'], 'may use up to 688MB'],
    // A bare number is in the setting's own unit: 8kB pages for shared_buffers (32768 = 256MB).
    [['postgresql.config.shared_buffers=32768'], 'may use up to 616MB'],
    [['postgresql.config.autovacuum_max_workers=6'], 'may use up to 584MB'],
    // autovacuum_work_mem, when set, is what each autovacuum worker may use.
    [['postgresql.config.autovacuum_work_mem=128MB'], 'may use up to 776MB'],
  ])('refused when they do not fit in 512Mi: %s', async (set, message) => {
    const result = await templateWith(...set);
    expect(result.ok).toBe(false);
    expect(result.output).toContain(`postgresql.resources.limits.memory is 512Mi, but PostgreSQL's settings ${message}`);
  });

  it('the defaults fit (488MB of 512Mi), and a larger limit takes larger settings', async () => {
    expect((await templateWith()).ok).toBe(true);
    const larger = await templateWith(
      'postgresql.config.work_mem=4MB',
      'postgresql.config.maintenance_work_mem=64MB',
      'postgresql.resources.limits.memory=1Gi',
    );
    expect(larger.ok, larger.output).toBe(true);
  });

  it('a setting in a unit PostgreSQL does not know is refused', async () => {
    const result = await templateWith('postgresql.config.work_mem=2MiB');
    expect(result.ok).toBe(false);
    expect(result.output).toContain('postgresql.config.work_mem "2MiB" is not a PostgreSQL memory setting');
  });
});

describe('the backups volume against the database it backs up', () => {
  it('a 1Gi backups volume for a 50Gi database is refused (7 dumps of 5% of it need 17.5Gi)', async () => {
    const result = await templateWith('postgresql.persistence.size=50Gi');
    expect(result.ok).toBe(false);
    expect(result.output).toContain(
      'postgresql.backup.persistence.size 1Gi is too small for postgresql.backup.keep 7 dumps of a database on a 50Gi volume: give it at least 17.5Gi',
    );
    expect((await templateWith('postgresql.persistence.size=50Gi', 'postgresql.backup.persistence.size=18Gi')).ok).toBe(true);
    // keep counts: 7 dumps of a 4Gi database need 1.4Gi, 5 need 1Gi.
    expect((await templateWith('postgresql.persistence.size=4Gi')).ok).toBe(false);
    expect((await templateWith('postgresql.persistence.size=4Gi', 'postgresql.backup.keep=5')).ok).toBe(true);
  });

  it('an existing claim, whose size the chart does not set, is not checked', async () => {
    expect((await templateWith('postgresql.persistence.size=50Gi', 'postgresql.backup.persistence.existingClaim=backups')).ok).toBe(true);
  });
});
