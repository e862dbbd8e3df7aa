import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { describe, expect, it } from 'vitest';
import { CHART_DIR, helm, KUBE_VERSION, NAMESPACE, RELEASE, REPO_ROOT, renderChart } from './support/helm.js';
import { memoryBytes } from './support/quantity.js';
import { podSpecOf } from './support/kubernetes.js';
import { byKind, CI_DIR, componentObject, componentObjects } from './support/rendered.js';
import { generatedDatabaseSecret } from './support/chart-env.js';

// The chart's values, checked without a cluster: values.yaml documents every key,
// values.schema.json refuses what cannot work with a clear message, and each value
// renders what it promises (images, Secrets, checksums, NOTES.txt, what uninstall keeps).

describe('values.yaml', () => {
  // Every key a user may set has a comment saying what it does: on the line above it,
  // or, inside a block documented as a whole (resources, alerting.for, the Alertmanager
  // configuration...), on the line above that block.
  const DOCUMENTED_AS_A_WHOLE = new Set(['resources', 'initResources', 'sidecarResources', 'retention', 'for', 'config', 'parameters', 'sidecarLabel']);

  function undocumentedKeys(text: string): string[] {
    const lines = text.split('\n');
    const stack: Array<{ indent: number; key: string; commented: boolean }> = [];
    const undocumented: string[] = [];
    lines.forEach((line, index) => {
      const match = /^(\s*)([A-Za-z_][\w.-]*):(.*)$/.exec(line);
      if (match === null) return;
      const indent = match[1]!.length;
      while (stack.length > 0 && stack.at(-1)!.indent >= indent) stack.pop();
      const commented = index > 0 && lines[index - 1]!.trim().startsWith('#');
      const isLeaf = match[3]!.trim() !== '';
      const coveredByBlock = stack.some((parent) => parent.commented && DOCUMENTED_AS_A_WHOLE.has(parent.key));
      if (isLeaf && !commented && !coveredByBlock) undocumented.push([...stack.map((parent) => parent.key), match[2]].join('.'));
      stack.push({ indent, key: match[2]!, commented });
    });
    return undocumented;
  }

  it('every key has a comment (docs/PHASE4_HELM.md says so)', () => {
    expect(undocumentedKeys(readFileSync(join(CHART_DIR, 'values.yaml'), 'utf8'))).toEqual([]);
  });

  it('the check finds an uncommented key (it can fail)', () => {
    expect(undocumentedKeys('api:\n  # -- Pods.\n  replicaCount: 2\n  image:\n    pullPolicy: IfNotPresent\n')).toEqual(['api.image.pullPolicy']);
  });
});

describe('what `helm uninstall` keeps (docs/OPERATIONS.md, section 5)', () => {
  it("only the data: the StatefulSet's volume claim (Retain), the backups' claim (resource-policy keep) and the generated passwords' Secret (not the release's), under the names the document gives", async () => {
    const objects = await renderChart();
    const doc = readFileSync(join(REPO_ROOT, 'docs', 'OPERATIONS.md'), 'utf8');
    const kept = objects.filter((object) => object.metadata.annotations?.['helm.sh/resource-policy'] === 'keep');
    expect(kept.map((object) => `${object.kind}/${object.metadata.name}`).sort()).toEqual([`PersistentVolumeClaim/${RELEASE}-wiki-chart-postgresql-backups`]);
    // The passwords' Secret is made by the database-credentials hook Job, not rendered: uninstall never deletes it.
    expect(componentObjects(objects, 'Secret', 'database')).toEqual([]);
    expect(generatedDatabaseSecret(objects)!.metadata.name).toBe(`${RELEASE}-wiki-chart-database`);
    expect(doc).toContain(`\`kubectl delete secret -n wiki ${RELEASE}-wiki-chart-database\``);
    expect(doc).toContain(`\`kubectl delete pvc -n wiki ${RELEASE}-wiki-chart-postgresql-backups\``);
    const statefulSet = byKind(objects, 'StatefulSet')[0]!;
    expect(statefulSet.spec.persistentVolumeClaimRetentionPolicy).toEqual({ whenDeleted: 'Retain', whenScaled: 'Retain' });
    const claim = `${statefulSet.spec.volumeClaimTemplates[0].metadata.name}-${statefulSet.metadata.name}-0`;
    expect(doc).toContain(`\`kubectl delete pvc -n wiki ${claim}\``);
    // The other volumes are the chart's own objects: uninstall deletes them.
    const deleted = byKind(objects, 'PersistentVolumeClaim').filter((pvc) => !kept.includes(pvc));
    expect(deleted.map((pvc) => pvc.metadata.labels['app.kubernetes.io/component']).sort()).toEqual(['prometheus']);
    expect(doc).toContain('Not kept: the PVCs of Prometheus, and of Grafana and Alertmanager when their persistence is on');
  });
});

describe('values.schema.json rejects bad values with a clear message', () => {
  const templateWith = (...set: string[]) =>
    helm(['template', RELEASE, CHART_DIR, '--kube-version', KUBE_VERSION, ...set.flatMap((value) => ['--set', value])]);

  it.each([
    ['a misspelt key', 'api.replicas=3', "additional properties 'replicas' not allowed"],
    ['a misspelt top-level key', 'postgres.enabled=false', "additional properties 'postgres' not allowed"],
    ['a string for a number', 'api.replicaCount=two', 'got string, want integer'],
    ['zero replicas', 'api.replicaCount=0', 'minimum'],
    ['the latest tag', 'api.image.tag=latest', "'not' failed"],
    ['a malformed digest', 'api.image.digest=sha256:xyz', 'does not match pattern'],
    ['a malformed volume size', 'postgresql.persistence.size=lots', 'does not match pattern'],
    ['an unknown log level', 'api.logLevel=loud', 'value must be one of'],
    ['an unknown sslmode', 'externalDatabase.sslmode=maybe', 'value must be one of'],
    ['a missing CPU limit', 'api.resources.limits.cpu=null', "missing property 'cpu'"],
    ['a bad retention policy', 'postgresql.persistence.retention.whenDeleted=Keep', 'value must be one of'],
    ['a malformed scrape interval', 'prometheus.scrapeInterval=15 seconds', 'does not match pattern'],
    ['a retention size in the wrong unit', 'prometheus.retention.size=2Gi', 'does not match pattern'],
    ['a retention size above 85% of the volume', 'prometheus.retention.size=1800MB', 'is more than 85% of the 2Gi volume (at most 1740MB)'],
    ['a retention size of zero (Prometheus: no limit)', 'prometheus.retention.size=0MB', 'prometheus.retention.size 0MB is 0'],
    ['a Prometheus volume too small for any retention size', 'prometheus.persistence.size=1Mi', 'prometheus.persistence.size 1Mi is too small'],
    ['a volume size in a unit Kubernetes does not know', 'prometheus.persistence.size=2GB', 'does not match pattern'],
    ['an objective of 100% (no error budget at all)', 'alerting.availability.objective=1', "'anyOf' failed"],
    ['an objective given as a percentage', 'alerting.availability.objective=99.5', "'99.5' does not match pattern"],
    ['a latency threshold that is not a histogram bucket', 'alerting.latency.thresholdSeconds=0.3', 'value must be one of'],
    ['a malformed `for:` duration', 'alerting.for.WikiApiPodDown=5 minutes', 'does not match pattern'],
    ['a `for:` for an alert that does not exist', 'alerting.for.WikiApiPodGone=5m', "additional properties 'WikiApiPodGone' not allowed"],
    ['a runbook URL with its own anchor', 'alerting.runbookUrl=https://wiki.example.com/runbook#top', 'does not match pattern'],
    ['an Alertmanager configuration without receivers', 'alertmanager.config.receivers=null', "missing property 'receivers'"],
  ])('%s (%s)', async (_name, set, message) => {
    const result = await templateWith(set);
    expect(result.ok).toBe(false);
    expect(result.output).toContain(message);
  });

  it('a grace period too short for the shutdown delay', async () => {
    const result = await templateWith('api.shutdownDelaySeconds=30', 'api.terminationGracePeriodSeconds=20');
    expect(result.ok).toBe(false);
    expect(result.output).toContain('api.terminationGracePeriodSeconds must be at least api.shutdownDelaySeconds + 5');
  });

  it('an external database without a host or password', async () => {
    const noHost = await templateWith('database.mode=external', 'externalDatabase.password=x');
    expect(noHost.output).toContain("at '/externalDatabase/host': minLength: got 0, want 1");
    const noPassword = await templateWith('database.mode=external', 'externalDatabase.host=db');
    expect(noPassword.output).toContain('externalDatabase.password or externalDatabase.existingSecret is required');
  });
});

describe('templating details', () => {
  // Each was rendered as --storage.tsdb.retention.size=0MB, which Prometheus reads as
  // "no size limit": the guard against a full volume silently disappeared.
  it.each(['2Gi', '1.5Gi', '2.5Gi', '1500Mi', '2G', '0.5Gi', '3Ti'])('a Prometheus volume of %s gets a retention size of 85 percent of it', async (size) => {
    const objects = await renderChart([], [`prometheus.persistence.size=${size}`]);
    const prometheus = componentObject(objects, 'Deployment', 'prometheus')!;
    const flag = (prometheus.spec.template.spec.containers[0].args as string[]).find((arg) => arg.startsWith('--storage.tsdb.retention.size='))!;
    expect(flag).toBe(`--storage.tsdb.retention.size=${Math.floor((0.85 * memoryBytes(size)) / 2 ** 20)}MB`);
    expect(Number(/=(\d+)MB$/.exec(flag)![1])).toBeGreaterThan(0);
  });

  it('fastapi.image_name, the original chart value, overrides the API image', async () => {
    const objects = await renderChart([], ['fastapi.image_name=registry.example/wiki:2.0.0']);
    const pod = componentObject(objects, 'Deployment', 'api')!.spec.template.spec;
    expect(pod.containers[0].image).toBe('registry.example/wiki:2.0.0');
    expect(pod.initContainers[0].image).toBe('registry.example/wiki:2.0.0');
  });

  it('a digest replaces the tag; an empty tag means the appVersion', async () => {
    const digest = `sha256:${'a'.repeat(64)}`;
    const pinned = await renderChart([], [`api.image.digest=${digest}`]);
    expect(componentObject(pinned, 'Deployment', 'api')!.spec.template.spec.containers[0].image).toBe(`ghcr.io/example/wiki-service@${digest}`);
    const appVersion = (parseYaml(readFileSync(join(CHART_DIR, 'Chart.yaml'), 'utf8')) as { appVersion: string }).appVersion;
    const defaults = await renderChart();
    expect(componentObject(defaults, 'Deployment', 'api')!.spec.template.spec.containers[0].image).toBe(`ghcr.io/example/wiki-service:${appVersion}`);
  });

  it('a settings change changes the checksum annotation (and so rolls the pods)', async () => {
    const checksum = async (set: string[]) =>
      componentObject(await renderChart([], set), 'Deployment', 'api')!.spec.template.metadata.annotations['checksum/config'];
    expect(await checksum(['api.logLevel=debug'])).not.toBe(await checksum([]));
    expect(await checksum([])).toBe(await checksum([]));
  });

  it('a new database password rolls the API pods; a generated one never causes a roll by itself', async () => {
    const annotation = async (set: string[]) =>
      componentObject(await renderChart([], set), 'Deployment', 'api')!.spec.template.metadata.annotations['checksum/database-password'];
    const external = ['database.mode=external', 'externalDatabase.host=db.example'];
    const before = await annotation([...external, 'externalDatabase.password=first']);
    expect(before).toMatch(/^[a-f0-9]{64}$/);
    expect(await annotation([...external, 'externalDatabase.password=second'])).not.toBe(before);
    expect(await annotation([...external, 'externalDatabase.password=first'])).toBe(before);
    // Generated: random at every `helm template`, yet the annotation stays the same.
    expect(await annotation([])).toBe(await annotation([]));
    // An existing Secret is read with `lookup` at install/upgrade time (no cluster here).
    expect(await annotation(['postgresql.auth.existingSecret=wiki-db'])).toMatch(/^[a-f0-9]{64}$/);
  });

  it('no PodDisruptionBudget that would block every drain (one replica, minAvailable 1)', async () => {
    const pdbs = async (set: string[]) => byKind(await renderChart([], set), 'PodDisruptionBudget');
    expect(await pdbs([])).toHaveLength(1);
    expect(await pdbs(['api.replicaCount=1'])).toHaveLength(0);
    expect(await pdbs(['api.replicaCount=3', 'api.podDisruptionBudget.minAvailable=2'])).toHaveLength(1);
    expect(await pdbs(['api.autoscaling.enabled=true', 'api.autoscaling.minReplicas=1'])).toHaveLength(0);
  });

  it('an existing Secret replaces the generated one, for every role', async () => {
    const objects = await renderChart([join(CI_DIR, 'existing-secret-values.yaml')]);
    expect(componentObjects(objects, 'Secret', 'database')).toHaveLength(0);
    const passwordOf = (container: any, name: string) => {
      const { name: secret, key } = container.env.find((variable: { name: string }) => variable.name === name).valueFrom.secretKeyRef;
      return { name: secret, key };
    };
    const pod = byKind(objects, 'StatefulSet')[0]!.spec.template.spec;
    const setup = pod.initContainers[0];
    // The setup container starts without a key, to say which one is missing (setup.sh).
    for (const variable of setup.env.filter((candidate: any) => candidate.valueFrom))
      expect(variable.valueFrom.secretKeyRef.optional, variable.name).toBe(true);
    expect(passwordOf(setup, 'API_PASSWORD')).toEqual({ name: 'wiki-db-credentials', key: 'db-password' });
    expect(passwordOf(setup, 'POSTGRES_PASSWORD')).toEqual({ name: 'wiki-db-credentials', key: 'postgres-password' });
    expect(passwordOf(setup, 'MONITORING_PASSWORD')).toEqual({ name: 'wiki-db-credentials', key: 'monitoring-password' });
    expect(passwordOf(setup, 'BACKUP_PASSWORD')).toEqual({ name: 'wiki-db-credentials', key: 'backup-password' });
    const exporter = pod.containers.find((container: { name: string }) => container.name === 'postgres-exporter');
    expect(passwordOf(exporter, 'DATA_SOURCE_PASS')).toEqual(passwordOf(setup, 'MONITORING_PASSWORD'));
    // The passwords container watches the same Secret.
    expect(pod.volumes.find((volume: { name: string }) => volume.name === 'credentials').secret.secretName).toBe('wiki-db-credentials');
    expect(passwordOf(podSpecOf(byKind(objects, 'CronJob')[0]!).containers[0], 'PGPASSWORD')).toEqual(passwordOf(setup, 'BACKUP_PASSWORD'));
    expect(passwordOf(podSpecOf(componentObject(objects, 'Deployment', 'api')!).containers[0], 'PGPASSWORD')).toEqual(passwordOf(setup, 'API_PASSWORD'));
  });

  it("the database-credentials hook Job: before every install and upgrade, for every role's key, with the API's image", async () => {
    const objects = await renderChart();
    const job = componentObject(objects, 'Job', 'credentials')!;
    expect(job.metadata.annotations).toMatchObject({
      'helm.sh/hook': 'pre-install,pre-upgrade',
      'helm.sh/hook-delete-policy': 'before-hook-creation,hook-succeeded',
    });
    const container = podSpecOf(job).containers[0];
    expect(container.image).toBe(podSpecOf(componentObject(objects, 'Deployment', 'api')!).containers[0].image);
    expect(container.command.slice(0, 3)).toEqual(['node', '--input-type=module', '-e']);
    expect(container.command[3]).toBe(readFileSync(join(CHART_DIR, 'postgresql', 'credentials.mjs'), 'utf8'));
    const env = Object.fromEntries(container.env.map((variable: { name: string; value: string }) => [variable.name, variable.value]));
    expect(env.KEYS).toBe('password,postgres-password,monitoring-password,backup-password');
    expect(env.SECRET_NAME).toBe(`${RELEASE}-wiki-chart-database`);
    // With an existing Secret, or an external database, there is nothing to generate.
    expect(componentObjects(await renderChart([join(CI_DIR, 'existing-secret-values.yaml')]), 'Job', 'credentials')).toEqual([]);
    expect(componentObjects(await renderChart([join(CI_DIR, 'external-database-values.yaml')]), 'Job', 'credentials')).toEqual([]);
  });

  it('the same key for two roles is refused', async () => {
    await expect(renderChart([], ['postgresql.metrics.secretKey=password'])).rejects.toThrow("the database Secret's keys must differ");
  });

  it('the helm test pod creates and reads back a user through the API Service', async () => {
    const objects = await renderChart();
    const testPod = byKind(objects, 'Pod').find((pod) => pod.metadata.annotations?.['helm.sh/hook'] === 'test')!;
    const service = componentObject(objects, 'Service', 'api')!;
    const env = testPod.spec.containers[0].env.find((variable: { name: string }) => variable.name === 'API_URL');
    expect(env.value).toBe(`http://${service.metadata.name}:${service.spec.ports[0].port}`);
    const script = testPod.spec.containers[0].command.join(' ');
    expect(script).toContain('fetch(`${api}/users`');
    expect(script).toContain('fetch(`${api}/user/${user.id}`)');
  });

  it('NOTES.txt tells how to reach the API and fetch the password', async () => {
    const result = await helm(['install', RELEASE, CHART_DIR, '--dry-run=client', '--namespace', NAMESPACE]);
    expect(result.ok).toBe(true);
    expect(result.output).toContain(`kubectl port-forward --namespace ${NAMESPACE} svc/${RELEASE}-wiki-chart-api 8000:8000`);
    expect(result.output).toContain(`kubectl get secret --namespace ${NAMESPACE} ${RELEASE}-wiki-chart-database -o jsonpath='{.data.password}' | base64 -d`);
    expect(result.output).toContain(`kubectl port-forward --namespace ${NAMESPACE} svc/${RELEASE}-wiki-chart-prometheus 9090:9090`);
    expect(result.output).toContain(
      `kubectl get secret --namespace ${NAMESPACE} ${RELEASE}-wiki-chart-grafana-admin -o jsonpath='{.data.admin-password}' | base64 -d`,
    );
    expect(result.output).toContain(`kubectl port-forward --namespace ${NAMESPACE} svc/${RELEASE}-wiki-chart-grafana 3000:3000`);
    expect(result.output).toContain('open http://localhost:3000/d/creation-dashboard-678/creation');
    // The backup on demand names the CronJob the chart renders.
    const cronJob = byKind(await renderChart(), 'CronJob')[0]!;
    expect(result.output).toContain(`kubectl create job --namespace ${NAMESPACE} --from=cronjob/${cronJob.metadata.name} backup-now`);
  });
});
