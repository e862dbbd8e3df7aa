import { readdirSync, readFileSync } from 'node:fs';
import { appendFile, cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import { CHART_DIR, helm, KUBE_VERSION, NAMESPACE, RELEASE, REPO_ROOT, renderChart, type K8sObject } from './support/helm.js';
import { cpuCores, memoryBytes } from './support/quantity.js';
import { containersOf, LONG_RUNNING_KINDS, podSpecOf, podTemplateOf, validateAgainstKubernetesSchema, WORKLOAD_KINDS } from './support/kubernetes.js';
import { DASHBOARD_DATASOURCE_UID, dashboardFiles } from './support/dashboards.js';
import { allowedConnections, connectionsTable, releasePods, type Endpoint } from './support/network-policy.js';
import { renderedPrometheusYml } from './support/prometheus.js';

// The chart, checked without a cluster: helm lint, the values schema, every rendered
// object against the Kubernetes API schemas, and the chart's own invariants, for the
// default values and every ci/*-values.yaml (the prometheus-community convention).

const CI_DIR = join(CHART_DIR, 'ci');
const VALUES_SETS: Array<[string, string[]]> = [
  ['default values', []],
  ...readdirSync(CI_DIR)
    .filter((file) => file.endsWith('-values.yaml'))
    .sort()
    .map((file): [string, string[]] => [file, [join(CI_DIR, file)]]),
];

function valuesOf(files: string[]): Record<string, any> {
  const defaults = parseYaml(readFileSync(join(CHART_DIR, 'values.yaml'), 'utf8')) as Record<string, any>;
  const overrides = files.map((file) => parseYaml(readFileSync(file, 'utf8')) as Record<string, any>);
  return overrides.reduce(deepMerge, defaults);
}

function deepMerge(base: Record<string, any>, override: Record<string, any>): Record<string, any> {
  const result = { ...base };
  for (const [key, value] of Object.entries(override ?? {})) {
    result[key] = value && typeof value === 'object' && !Array.isArray(value) && typeof base[key] === 'object' ? deepMerge(base[key], value) : value;
  }
  return result;
}

const byKind = (objects: K8sObject[], kind: string) => objects.filter((object) => object.kind === kind);
/** The objects of one kind that belong to one component (app.kubernetes.io/component). */
const componentObjects = (objects: K8sObject[], kind: string, component: string) =>
  byKind(objects, kind).filter((object) => object.metadata.labels['app.kubernetes.io/component'] === component);
const componentObject = (objects: K8sObject[], kind: string, component: string) => componentObjects(objects, kind, component)[0];
const named = (objects: K8sObject[], kind: string, name: string) => objects.find((object) => object.kind === kind && object.metadata.name === name);

describe('helm lint --strict', () => {
  it.each(VALUES_SETS)('passes with %s', async (_name, files) => {
    const result = await helm(['lint', '--strict', CHART_DIR, '--kube-version', KUBE_VERSION, ...files.flatMap((file) => ['--values', file])]);
    expect(result.output).toContain('0 chart(s) failed');
    expect(result.ok).toBe(true);
  });
});

describe.each(VALUES_SETS)('rendered with %s', (_name, files) => {
  let objects: K8sObject[];
  const values = valuesOf(files);

  beforeAll(async () => {
    objects = await renderChart(files);
  });

  it('renders the API and, unless external, PostgreSQL; Prometheus, Grafana and Alertmanager when enabled', () => {
    const expected = ['alertmanager', 'api', 'grafana', 'prometheus'].filter((component) => component === 'api' || values[component].enabled);
    expect(
      byKind(objects, 'Deployment')
        .map((object) => object.metadata.labels['app.kubernetes.io/component'])
        .sort(),
    ).toEqual(expected);
    expect(byKind(objects, 'StatefulSet')).toHaveLength(values.postgresql.enabled ? 1 : 0);
  });

  it('every object validates against the Kubernetes API schemas', () => {
    for (const object of objects) {
      expect(() => validateAgainstKubernetesSchema(object), `${object.kind}/${object.metadata.name}`).not.toThrow();
    }
  });

  it('every object carries the standard labels and lives in the release namespace', () => {
    for (const object of objects) {
      const labels = object.metadata.labels ?? {};
      for (const label of [
        'app.kubernetes.io/name',
        'app.kubernetes.io/instance',
        'app.kubernetes.io/component',
        'app.kubernetes.io/version',
        'app.kubernetes.io/managed-by',
        'helm.sh/chart',
      ]) {
        expect(labels, `${object.kind}/${object.metadata.name} ${label}`).toHaveProperty([label]);
      }
      expect(labels['app.kubernetes.io/instance']).toBe(RELEASE);
      expect(object.metadata.namespace, `${object.kind}/${object.metadata.name}`).toBe(NAMESPACE);
    }
  });

  it("app.kubernetes.io/version is the version of what each component runs (its image's tag)", () => {
    const expected: Record<string, string> = {
      postgresql: values.postgresql.image.tag,
      // The backup CronJob and the restore Job run PostgreSQL's image (pg_dump of the server's version).
      backup: values.postgresql.image.tag,
      prometheus: values.prometheus.image.tag,
      grafana: values.grafana.image.tag,
      alertmanager: values.alertmanager.image.tag,
    };
    for (const object of objects) {
      const labels = object.metadata.labels;
      const version = expected[labels['app.kubernetes.io/component']] ?? (values.api.image.tag || '1.0.0');
      expect(labels['app.kubernetes.io/version'], `${object.kind}/${object.metadata.name}`).toBe(version);
    }
    // And for workloads, the tag of the image their main container really runs.
    for (const workload of objects.filter((object) => WORKLOAD_KINDS.includes(object.kind))) {
      const image: string = podSpecOf(workload).containers[0].image;
      if (image.includes('@')) continue; // a digest: the tag is informational
      expect(image.endsWith(`:${workload.metadata.labels['app.kubernetes.io/version']}`), `${workload.kind}/${workload.metadata.name} runs ${image}`).toBe(
        true,
      );
    }
  });

  it("every emptyDir has a sizeLimit (unbounded, one could fill the node's disk)", () => {
    for (const workload of objects.filter((object) => object.kind === 'Pod' || WORKLOAD_KINDS.includes(object.kind))) {
      for (const volume of podSpecOf(workload).volumes ?? []) {
        if (volume.emptyDir === undefined) continue;
        expect(volume.emptyDir.sizeLimit, `${workload.kind}/${workload.metadata.name} volume ${volume.name}`).toMatch(/^[0-9.]+(Ki|Mi|Gi|Ti|k|M|G|T)?$/);
      }
    }
  });

  it("every workload's selector matches its pod template's labels", () => {
    for (const workload of objects.filter((object) => LONG_RUNNING_KINDS.includes(object.kind))) {
      const selector = workload.spec.selector.matchLabels as Record<string, string>;
      expect(Object.keys(selector).sort()).toEqual(['app.kubernetes.io/component', 'app.kubernetes.io/instance', 'app.kubernetes.io/name']);
      expect(workload.spec.template.metadata.labels, workload.metadata.name).toMatchObject(selector);
    }
  });

  it("every Service selects exactly one workload, and its targetPorts name that workload's container ports", () => {
    for (const service of byKind(objects, 'Service')) {
      const selected = objects.filter(
        (object) =>
          WORKLOAD_KINDS.includes(object.kind) &&
          Object.entries(service.spec.selector).every(([key, value]) => podTemplateOf(object).metadata.labels[key] === value),
      );
      expect(selected, service.metadata.name).toHaveLength(1);
      const portNames = containersOf(selected[0]!).flatMap((container) => (container.ports ?? []).map((port: { name: string }) => port.name));
      for (const port of service.spec.ports) {
        expect(typeof port.targetPort, `${service.metadata.name} targetPort should be a port name`).toBe('string');
        expect(portNames, service.metadata.name).toContain(port.targetPort);
      }
    }
  });

  it('every Deployment with a ReadWriteOnce volume uses strategy Recreate', () => {
    for (const deployment of byKind(objects, 'Deployment')) {
      const claims = (deployment.spec.template.spec.volumes ?? []).filter((volume: any) => volume.persistentVolumeClaim);
      const expected = claims.length > 0 ? 'Recreate' : deployment.spec.strategy.type;
      expect(deployment.spec.strategy.type, deployment.metadata.name).toBe(expected);
    }
  });

  it('PodDisruptionBudgets and autoscalers point at rendered workloads', () => {
    for (const pdb of byKind(objects, 'PodDisruptionBudget')) {
      const matches = objects.filter(
        (object) =>
          WORKLOAD_KINDS.includes(object.kind) &&
          Object.entries(pdb.spec.selector.matchLabels).every(([key, value]) => podTemplateOf(object).metadata.labels[key] === value),
      );
      expect(matches, pdb.metadata.name).toHaveLength(1);
    }
    for (const hpa of byKind(objects, 'HorizontalPodAutoscaler')) {
      const target = named(objects, hpa.spec.scaleTargetRef.kind, hpa.spec.scaleTargetRef.name);
      expect(target, hpa.metadata.name).toBeDefined();
      expect(target!.spec.replicas, 'an autoscaled Deployment must not also fix replicas').toBeUndefined();
    }
  });

  it('every referenced ConfigMap, Secret, PVC and ServiceAccount is rendered or named by a value', () => {
    const secretsByValue = [values.postgresql.auth.existingSecret, values.externalDatabase.existingSecret].filter(Boolean);
    const claimsByValue = [
      ...['prometheus', 'grafana', 'alertmanager'].map((component) => values[component].persistence.existingClaim),
      values.postgresql.backup.persistence.existingClaim,
    ].filter(Boolean);
    for (const workload of objects.filter((object) => object.kind === 'Pod' || WORKLOAD_KINDS.includes(object.kind))) {
      const pod = podSpecOf(workload);
      const claimTemplates = (workload.spec.volumeClaimTemplates ?? []).map((claim: K8sObject) => claim.metadata.name);
      const volumes: any[] = pod.volumes ?? [];
      for (const { configMap } of volumes.filter((volume) => volume.configMap))
        expect(named(objects, 'ConfigMap', configMap.name), configMap.name).toBeDefined();
      for (const { secret } of volumes.filter((volume) => volume.secret)) {
        expect(named(objects, 'Secret', secret.secretName) ?? secretsByValue.includes(secret.secretName), secret.secretName).toBeTruthy();
      }
      for (const { persistentVolumeClaim } of volumes.filter((volume) => volume.persistentVolumeClaim)) {
        const claim = persistentVolumeClaim.claimName;
        expect(named(objects, 'PersistentVolumeClaim', claim) ?? claimsByValue.includes(claim), `claim ${claim}`).toBeTruthy();
      }
      for (const container of containersOf(workload)) {
        const mounted = (container.volumeMounts ?? []).map((mount: { name: string }) => mount.name);
        const declared = [...(pod.volumes ?? []).map((volume: { name: string }) => volume.name), ...claimTemplates];
        for (const mount of mounted) expect(declared, `${workload.metadata.name}/${container.name} mounts ${mount}`).toContain(mount);
        const sources: any[] = container.envFrom ?? [];
        for (const { configMapRef } of sources.filter((source) => source.configMapRef)) expect(named(objects, 'ConfigMap', configMapRef.name)).toBeDefined();
        for (const { secretRef } of sources.filter((source) => source.secretRef)) {
          expect(named(objects, 'Secret', secretRef.name) ?? secretsByValue.includes(secretRef.name), secretRef.name).toBeTruthy();
        }
        const valuesFrom: any[] = (container.env ?? []).map((variable: any) => variable.valueFrom ?? {});
        for (const { secretKeyRef } of valuesFrom.filter((valueFrom) => valueFrom.secretKeyRef)) {
          // A Secret of the chart has the key; one the values name must exist already.
          const secret = named(objects, 'Secret', secretKeyRef.name);
          const available = secret ? Object.keys(secret.data ?? secret.stringData ?? {}) : secretsByValue;
          expect(available, `Secret ${secretKeyRef.name}, key ${secretKeyRef.key}`).toContain(secret ? secretKeyRef.key : secretKeyRef.name);
        }
        for (const { configMapKeyRef } of valuesFrom.filter((valueFrom) => valueFrom.configMapKeyRef))
          expect(named(objects, 'ConfigMap', configMapKeyRef.name)).toBeDefined();
      }
      const serviceAccount: string = pod.serviceAccountName ?? 'default';
      expect(serviceAccount === 'default' || named(objects, 'ServiceAccount', serviceAccount) !== undefined, `ServiceAccount ${serviceAccount}`).toBe(true);
    }
  });

  it('every container: resources, hardened security context; long-running ones: probes', () => {
    const workloads = objects.filter((object) => object.kind === 'Pod' || WORKLOAD_KINDS.includes(object.kind));
    // No Kubernetes API token, except for a pod whose own ServiceAccount the chart
    // binds to a read-only Role (Prometheus's pod discovery).
    for (const workload of workloads.filter((candidate) => podSpecOf(candidate).automountServiceAccountToken !== false)) {
      const binding = byKind(objects, 'RoleBinding').find((candidate) =>
        candidate.subjects.some(
          (subject: { kind: string; name: string }) => subject.kind === 'ServiceAccount' && subject.name === podSpecOf(workload).serviceAccountName,
        ),
      );
      expect(binding, `${workload.metadata.name} mounts a token without a RoleBinding`).toBeDefined();
      const role = named(objects, 'Role', binding!.roleRef.name)!;
      for (const rule of role.rules) expect(rule.verbs.sort()).toEqual(['get', 'list', 'watch']);
    }
    for (const workload of workloads) {
      const pod = podSpecOf(workload);
      expect(pod.securityContext.runAsNonRoot).toBe(true);
      expect(pod.securityContext.seccompProfile.type).toBe('RuntimeDefault');
      for (const [container, isInit] of [...(pod.initContainers ?? []).map((c: any) => [c, true]), ...pod.containers.map((c: any) => [c, false])]) {
        const where = `${workload.metadata.name}/${container.name}`;
        for (const part of ['requests', 'limits']) {
          expect(container.resources?.[part]?.cpu, `${where} ${part}.cpu`).toBeDefined();
          expect(container.resources?.[part]?.memory, `${where} ${part}.memory`).toBeDefined();
        }
        expect(container.securityContext, where).toMatchObject({
          allowPrivilegeEscalation: false,
          readOnlyRootFilesystem: true,
          runAsNonRoot: true,
          capabilities: { drop: ['ALL'] },
          seccompProfile: { type: 'RuntimeDefault' },
        });
        const probes = !isInit && LONG_RUNNING_KINDS.includes(workload.kind) ? ['startupProbe', 'livenessProbe', 'readinessProbe'] : [];
        for (const probe of probes) expect(container[probe], `${where} ${probe}`).toBeDefined();
      }
    }
  });

  it('every image is pinned: a tag or digest, never latest', () => {
    for (const workload of objects.filter((object) => object.kind === 'Pod' || WORKLOAD_KINDS.includes(object.kind))) {
      for (const container of containersOf(workload)) {
        expect(container.image, `${workload.metadata.name}/${container.name}`).toMatch(/^[^\s]+(:[^\s:@/]+|@sha256:[a-f0-9]{64})$/);
        expect(container.image).not.toMatch(/:latest$/);
      }
    }
  });

  it('Prometheus: scrapes every API pod of this release, retention below 85% of the volume, config changes restart it', () => {
    const deployment = componentObject(objects, 'Deployment', 'prometheus');
    expect(deployment !== undefined, 'a Prometheus Deployment exactly when prometheus.enabled').toBe(values.prometheus.enabled);
    if (deployment === undefined) return;
    const args: string[] = deployment.spec.template.spec.containers[0].args;
    const flag = (name: string) => args.find((arg) => arg.startsWith(`--${name}=`))?.split('=')[1];
    expect(flag('config.file')).toBe('/etc/prometheus/prometheus.yml');
    expect(flag('storage.tsdb.path')).toBe('/prometheus');
    expect(flag('storage.tsdb.retention.time')).toBe(values.prometheus.retention.time);
    // Anyone who reaches the port could POST /-/quit; the chart never reloads by hand.
    expect(args.filter((arg) => arg.startsWith('--web.enable-lifecycle'))).toEqual([]);
    const retentionMiB =
      Number(/^(\d+)(MB|GB)$/.exec(flag('storage.tsdb.retention.size')!)![1]) * (flag('storage.tsdb.retention.size')!.endsWith('GB') ? 1024 : 1);
    expect(retentionMiB * 2 ** 20).toBeLessThanOrEqual(0.85 * memoryBytes(values.prometheus.persistence.size));
    expect(deployment.spec.replicas).toBe(1);
    expect(deployment.spec.template.spec.securityContext).toMatchObject({ runAsUser: 65534, fsGroup: 65534 });
    // Time to write the head block to disk on SIGTERM (upstream allows 300 s).
    expect(deployment.spec.template.spec.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(300);
    expect(Object.keys(deployment.spec.template.metadata.annotations)).toEqual(expect.arrayContaining(['checksum/config', 'checksum/rules']));

    const config = parseYaml(named(objects, 'ConfigMap', `${deployment.metadata.name}-config`)!.data['prometheus.yml']);
    const externalLabels = Object.keys(values.prometheus.externalLabels).length > 0 ? { external_labels: values.prometheus.externalLabels } : {};
    expect(config.global).toEqual({
      scrape_interval: values.prometheus.scrapeInterval,
      evaluation_interval: values.prometheus.evaluationInterval,
      ...externalLabels,
    });
    const job = config.scrape_configs.find((candidate: { job_name: string }) => candidate.job_name === 'wiki-api');
    expect(job.static_configs).toBeUndefined(); // never the Service
    expect(job.kubernetes_sd_configs[0].namespaces.names).toEqual([NAMESPACE]);
    expect(job.kubernetes_sd_configs[0].selectors[0].label).toContain(`app.kubernetes.io/instance=${RELEASE}`);
    expect(job.kubernetes_sd_configs[0].selectors[0].label).toContain('app.kubernetes.io/component=api');
    expect(job.relabel_configs.map((rule: { target_label?: string }) => rule.target_label).filter(Boolean)).toEqual(['namespace', 'pod']);
    const self = config.scrape_configs.find((candidate: { job_name: string }) => candidate.job_name === 'prometheus');
    expect(self.static_configs[0].targets).toEqual(['localhost:9090']);
    // The Service selects the Prometheus pod only.
    const service = named(objects, 'Service', deployment.metadata.name)!;
    expect(service.spec.ports).toEqual([{ name: 'web', port: 9090, targetPort: 'web', protocol: 'TCP' }]);
    expect(service.spec.selector['app.kubernetes.io/component']).toBe('prometheus');
  });

  it('Alertmanager: one replica with its volume, config from a Secret that restarts it, and Prometheus sends it alerts', () => {
    const deployment = componentObject(objects, 'Deployment', 'alertmanager');
    const prometheusConfig = componentObject(objects, 'Deployment', 'prometheus') ? parseYaml(renderedPrometheusYml(objects)) : undefined;
    const alertmanagerTargets: string[] = (prometheusConfig?.alerting?.alertmanagers ?? []).flatMap((entry: any) =>
      (entry.static_configs ?? []).flatMap((config: any) => config.targets),
    );
    expect(deployment !== undefined, 'an Alertmanager Deployment exactly when alertmanager.enabled').toBe(values.alertmanager.enabled);
    const ownTargets = alertmanagerTargets.filter((target) => target.includes('-alertmanager:'));
    expect(ownTargets.length > 0, "Prometheus sends alerts to the release's Alertmanager exactly when both run").toBe(
      deployment !== undefined && prometheusConfig !== undefined,
    );
    if (deployment === undefined) return;
    const pod = deployment.spec.template.spec;
    const args: string[] = pod.containers[0].args;
    expect(args).toEqual(
      expect.arrayContaining(['--config.file=/etc/alertmanager/alertmanager.yml', '--storage.path=/alertmanager', '--cluster.listen-address=']),
    );
    expect(deployment.spec.replicas).toBe(1);
    expect(deployment.spec.strategy.type).toBe('Recreate');
    expect(pod.automountServiceAccountToken).toBe(false);
    // Its configuration: a Secret holding alertmanager.config with the Watchdog's route put
    // first and its receiver added (alertmanager.deadMansSwitch), whose change restarts the pod.
    const configVolume = pod.volumes.find((volume: any) => volume.name === 'config');
    const secret = named(objects, 'Secret', configVolume.secret.secretName)!;
    const { config, deadMansSwitch } = values.alertmanager;
    const watchdogRoute = {
      matchers: ['alertname="Watchdog"'],
      receiver: 'dead-mans-switch',
      group_wait: '0s',
      group_interval: deadMansSwitch.interval,
      repeat_interval: deadMansSwitch.interval,
    };
    expect(parseYaml(secret.stringData['alertmanager.yml'])).toEqual({
      ...config,
      route: { ...config.route, routes: [watchdogRoute, ...(config.route.routes ?? [])] },
      receivers: [...config.receivers, { name: 'dead-mans-switch', ...deadMansSwitch.receiver }],
    });
    expect(deployment.spec.template.metadata.annotations['checksum/config']).toMatch(/^[a-f0-9]{64}$/);
    // Silences and the notification log on the volume.
    const dataVolume = pod.volumes.find((volume: any) => volume.name === 'data');
    const { persistence } = values.alertmanager;
    const claimName: string | undefined = dataVolume.persistentVolumeClaim?.claimName;
    expect(claimName !== undefined, 'a claim exactly when alertmanager.persistence.enabled').toBe(persistence.enabled);
    // The size: of the claim the chart makes, or of the emptyDir; an existing claim is as it is.
    const size = claimName === undefined ? dataVolume.emptyDir.sizeLimit : named(objects, 'PersistentVolumeClaim', claimName)?.spec.resources.requests.storage;
    expect(size).toBe(persistence.existingClaim ? undefined : persistence.size);
    // Prometheus sends alerts to its Service and scrapes it.
    const service = named(objects, 'Service', deployment.metadata.name)!;
    const address = `${service.metadata.name}:${service.spec.ports[0].port}`;
    if (prometheusConfig === undefined) return;
    expect(alertmanagerTargets).toContain(address);
    const job = prometheusConfig.scrape_configs.find((candidate: { job_name: string }) => candidate.job_name === 'alertmanager');
    expect(job.static_configs[0].targets).toEqual([address]);
  });

  it('the API: graceful-shutdown timing agrees, config changes roll the pods, the password comes from a Secret', () => {
    const deployment = componentObject(objects, 'Deployment', 'api')!;
    const pod = deployment.spec.template.spec;
    const configMap = named(objects, 'ConfigMap', pod.containers[0].envFrom[0].configMapRef.name)!;
    const delay = Number(configMap.data.SHUTDOWN_DELAY_SECONDS);
    expect(delay).toBe(values.api.shutdownDelaySeconds);
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(delay + 5);
    // The service gives up closing a second before the kubelet's SIGKILL.
    expect(delay + Number(configMap.data.SHUTDOWN_TIMEOUT_SECONDS)).toBe(pod.terminationGracePeriodSeconds - 1);
    expect(deployment.spec.template.metadata.annotations['checksum/config']).toMatch(/^[a-f0-9]{64}$/);
    for (const container of [...pod.initContainers, ...pod.containers]) {
      const password = container.env.find((variable: { name: string }) => variable.name === 'PGPASSWORD');
      expect(password.valueFrom.secretKeyRef, container.name).toBeDefined();
      expect(password.value).toBeUndefined();
    }
    // No secret in the ConfigMap.
    expect(Object.keys(configMap.data).filter((key) => /PASSWORD|SECRET/i.test(key))).toEqual([]);
    expect(JSON.stringify(configMap.data)).not.toContain(values.externalDatabase.password || '\u0000');
    // The init container waits with a timeout, from the API's own image.
    expect(pod.initContainers[0].image).toBe(pod.containers[0].image);
    expect(pod.initContainers[0].command).toEqual(['node', 'dist/wait-for-database.js', String(values.api.waitForDatabaseTimeoutSeconds)]);
  });

  it('PostgreSQL: data in a subfolder of the volume, fsGroup for the image user, pg_isready probes', () => {
    const statefulSet = byKind(objects, 'StatefulSet')[0];
    expect(statefulSet !== undefined, 'a PostgreSQL StatefulSet exactly when postgresql.enabled').toBe(values.postgresql.enabled);
    if (statefulSet === undefined) return;
    const pod = statefulSet.spec.template.spec;
    const container = pod.containers[0];
    const pgdata = container.env.find((variable: { name: string }) => variable.name === 'PGDATA').value as string;
    const dataMount = container.volumeMounts.find((mount: { name: string }) => mount.name === 'data').mountPath as string;
    expect(pgdata.startsWith(`${dataMount}/`)).toBe(true);
    expect(pod.securityContext).toMatchObject({ runAsUser: 999, fsGroup: 999 });
    expect(container.readinessProbe.exec.command.join(' ')).toContain('pg_isready');
    expect(statefulSet.spec.serviceName).toBe(byKind(objects, 'Service').find((service) => service.spec.clusterIP === 'None')?.metadata.name);
    const claims = statefulSet.spec.volumeClaimTemplates ?? [];
    expect(claims).toHaveLength(values.postgresql.persistence.enabled ? 1 : 0);
    for (const claim of claims) expect(claim.spec.resources.requests.storage).toBe(values.postgresql.persistence.size);
  });
});

describe('the Kubernetes schema check itself', () => {
  it('rejects objects Kubernetes would reject', async () => {
    const deployment = (await renderChart()).find((object) => object.kind === 'Deployment')!;
    expect(() => validateAgainstKubernetesSchema({ ...deployment, spec: { ...deployment.spec, replicas: 'two' } })).toThrow();
    const withoutImage = structuredClone(deployment);
    delete withoutImage.spec.template.spec.containers[0].image;
    withoutImage.spec.template.spec.containers[0].ports[0].containerPort = 'http';
    expect(() => validateAgainstKubernetesSchema(withoutImage)).toThrow();
    expect(() => validateAgainstKubernetesSchema({ apiVersion: 'v1', kind: 'NoSuchKind', metadata: { name: 'x' } })).toThrow('no Kubernetes schema');
  });

  it("rejects a PodMonitor that the Prometheus Operator's CRD would reject", async () => {
    const podMonitor = (await renderChart([join(CI_DIR, 'existing-monitoring-values.yaml')])).find((object) => object.kind === 'PodMonitor')!;
    expect(() => validateAgainstKubernetesSchema(podMonitor)).not.toThrow();
    const broken = structuredClone(podMonitor);
    broken.spec.podMetricsEndpoints[0].interval = 'every 30 seconds';
    expect(() => validateAgainstKubernetesSchema(broken)).toThrow(/interval/);
  });

  it("rejects a PrometheusRule that the Prometheus Operator's CRD would reject", async () => {
    const rule = (await renderChart([join(CI_DIR, 'existing-monitoring-values.yaml')])).find((object) => object.kind === 'PrometheusRule')!;
    expect(() => validateAgainstKubernetesSchema(rule)).not.toThrow();
    const broken = structuredClone(rule);
    broken.spec.groups[0].rules[0].for = 'two minutes';
    expect(() => validateAgainstKubernetesSchema(broken)).toThrow(/for/);
  });
});

describe('for a cluster that already runs a monitoring stack (ci/existing-monitoring-values.yaml)', () => {
  let objects: K8sObject[];
  beforeAll(async () => {
    objects = await renderChart([join(CI_DIR, 'existing-monitoring-values.yaml')]);
  });
  const apiDeployment = () => componentObject(objects, 'Deployment', 'api')!;

  it('off by default: no PodMonitor, PrometheusRule or prometheus.io annotations', async () => {
    const defaults = await renderChart();
    expect(byKind(defaults, 'PodMonitor')).toEqual([]);
    expect(byKind(defaults, 'PrometheusRule')).toEqual([]);
    const annotations = componentObject(defaults, 'Deployment', 'api')!.spec.template.metadata.annotations;
    expect(Object.keys(annotations).filter((key) => key.startsWith('prometheus.io/'))).toEqual([]);
  });

  it('the PodMonitor selects exactly the API pods, on their metrics port, with the job name the rules use', () => {
    const [podMonitor] = byKind(objects, 'PodMonitor');
    expect(podMonitor).toBeDefined();
    expect(podMonitor!.metadata.labels.release).toBe('kube-prometheus-stack');
    const pod = apiDeployment().spec.template;
    for (const [key, value] of Object.entries(podMonitor!.spec.selector.matchLabels)) expect(pod.metadata.labels[key], key).toBe(value);
    expect(podMonitor!.spec.selector.matchLabels).toEqual(apiDeployment().spec.selector.matchLabels);
    const endpoint = podMonitor!.spec.podMetricsEndpoints[0];
    expect(pod.spec.containers[0].ports.map((port: { name: string }) => port.name)).toContain(endpoint.port);
    expect(endpoint).toMatchObject({ path: '/metrics', interval: '30s', scrapeTimeout: '10s' });
    // The chart's recording rules aggregate by job: the same job name as the chart's own Prometheus.
    expect(endpoint.relabelings).toContainEqual({ targetLabel: 'job', replacement: 'wiki-api' });
  });

  it('the prometheus.io annotations name the port and path the API really serves metrics on', () => {
    const pod = apiDeployment().spec.template;
    expect(pod.metadata.annotations).toMatchObject({ 'prometheus.io/scrape': 'true', 'prometheus.io/path': '/metrics' });
    const port = pod.spec.containers[0].ports.find((candidate: { name: string }) => candidate.name === 'http');
    expect(pod.metadata.annotations['prometheus.io/port']).toBe(String(port.containerPort));
  });
});

describe('Prometheus and placement options (ci/prometheus-options-values.yaml)', () => {
  let objects: K8sObject[];
  const values = valuesOf([join(CI_DIR, 'prometheus-options-values.yaml')]);
  beforeAll(async () => {
    objects = await renderChart([join(CI_DIR, 'prometheus-options-values.yaml')]);
  });
  const workload = (component: string) =>
    objects.find((object) => LONG_RUNNING_KINDS.includes(object.kind) && object.metadata.labels['app.kubernetes.io/component'] === component)!;

  it('externalUrl sets --web.external-url, and its path becomes the prefix of the probes and the self-scrape', () => {
    const pod = podSpecOf(workload('prometheus'));
    expect(pod.containers[0].args).toContain('--web.external-url=https://wiki.example.com/prometheus');
    expect(pod.containers[0].args).toContain('--query.timeout=1m');
    for (const probe of ['startupProbe', 'livenessProbe', 'readinessProbe']) expect(pod.containers[0][probe].httpGet.path, probe).toMatch(/^\/prometheus\/-\//);
    const config = parseYaml(named(objects, 'ConfigMap', `${workload('prometheus').metadata.name}-config`)!.data['prometheus.yml']);
    expect(config.scrape_configs.find((job: { job_name: string }) => job.job_name === 'prometheus').metrics_path).toBe('/prometheus/metrics');
    expect(config.scrape_configs.find((job: { job_name: string }) => job.job_name === 'node')).toEqual(values.prometheus.extraScrapeConfigs[0]);
    expect(config.global.external_labels).toEqual({ cluster: 'demo-eu' });
  });

  it('routePrefix alone sets --web.route-prefix and the same paths', async () => {
    const rendered = await renderChart([], ['prometheus.routePrefix=/metrics-db']);
    const pod = podSpecOf(componentObject(rendered, 'Deployment', 'prometheus')!);
    expect(pod.containers[0].args).toContain('--web.route-prefix=/metrics-db');
    expect(pod.containers[0].livenessProbe.httpGet.path).toBe('/metrics-db/-/healthy');
  });

  it("every component gets its pod labels and annotations, and none can replace the chart's own labels", async () => {
    for (const component of ['api', 'postgresql', 'prometheus']) {
      const template = workload(component).spec.template;
      expect(template.metadata.labels.team, component).toBe('wiki');
      expect(template.metadata.annotations['example.com/owner'], component).toBe('wiki-team');
    }
    const hijacked = await renderChart([], ['api.podLabels.app\\.kubernetes\\.io/component=other']);
    const api = byKind(hijacked, 'Deployment').find((object) => object.metadata.name.endsWith('-api'))!;
    expect(api.spec.template.metadata.labels['app.kubernetes.io/component']).toBe('api');
  });

  it('every component gets its nodeSelector, tolerations and affinity', () => {
    for (const component of ['api', 'postgresql', 'prometheus']) {
      const pod = podSpecOf(workload(component));
      expect(pod.nodeSelector, component).toEqual(values[component].nodeSelector);
      expect(pod.tolerations, component).toEqual(values[component].tolerations);
      // An empty affinity in the values renders as none.
      const affinity = values[component].affinity ?? {};
      expect(pod.affinity ?? {}, component).toEqual(affinity);
    }
  });
});

describe('values.yaml', () => {
  // Every key a user may set has a comment saying what it does: on the line above it,
  // or, inside a block documented as a whole (resources, alerting.for, the Alertmanager
  // configuration...), on the line above that block.
  const DOCUMENTED_AS_A_WHOLE = new Set(['resources', 'initResources', 'retention', 'for', 'config', 'sidecarLabel']);

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
  it("only the data: the StatefulSet's volume claim (Retain), the backups' claim and the generated passwords' Secret (resource-policy keep), under the names the document gives", async () => {
    const objects = await renderChart();
    const doc = readFileSync(join(REPO_ROOT, 'docs', 'OPERATIONS.md'), 'utf8');
    const kept = objects.filter((object) => object.metadata.annotations?.['helm.sh/resource-policy'] === 'keep');
    expect(kept.map((object) => `${object.kind}/${object.metadata.name}`).sort()).toEqual([
      `PersistentVolumeClaim/${RELEASE}-wiki-chart-postgresql-backups`,
      `Secret/${RELEASE}-wiki-chart-database`,
    ]);
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
    expect(components.sort()).toEqual(['alertmanager', 'api', 'backup', 'grafana', 'postgresql', 'prometheus']);
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
    const noHost = await templateWith('postgresql.enabled=false', 'externalDatabase.password=x');
    expect(noHost.output).toContain('externalDatabase.host is required');
    const noPassword = await templateWith('postgresql.enabled=false', 'externalDatabase.host=db');
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
    const external = ['postgresql.enabled=false', 'externalDatabase.host=db.example'];
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
    const passwordOf = (container: any, name: string) => container.env.find((variable: { name: string }) => variable.name === name).valueFrom.secretKeyRef;
    const pod = byKind(objects, 'StatefulSet')[0]!.spec.template.spec;
    const setup = pod.initContainers[0];
    expect(passwordOf(setup, 'API_PASSWORD')).toEqual({ name: 'wiki-db-credentials', key: 'db-password' });
    expect(passwordOf(setup, 'POSTGRES_PASSWORD')).toEqual({ name: 'wiki-db-credentials', key: 'postgres-password' });
    expect(passwordOf(setup, 'MONITORING_PASSWORD')).toEqual({ name: 'wiki-db-credentials', key: 'monitoring-password' });
    expect(passwordOf(setup, 'BACKUP_PASSWORD')).toEqual({ name: 'wiki-db-credentials', key: 'backup-password' });
    expect(passwordOf(pod.containers[1], 'DATA_SOURCE_PASS')).toEqual(passwordOf(setup, 'MONITORING_PASSWORD'));
    expect(passwordOf(podSpecOf(byKind(objects, 'CronJob')[0]!).containers[0], 'PGPASSWORD')).toEqual(passwordOf(setup, 'BACKUP_PASSWORD'));
    expect(passwordOf(podSpecOf(componentObject(objects, 'Deployment', 'api')!).containers[0], 'PGPASSWORD')).toEqual(passwordOf(setup, 'API_PASSWORD'));
  });

  it('the generated Secret is kept on uninstall and holds a 32-character password for each role, each different', async () => {
    const secret = componentObject(await renderChart(), 'Secret', 'database')!;
    expect(secret.metadata.annotations['helm.sh/resource-policy']).toBe('keep');
    expect(Object.keys(secret.data).sort()).toEqual(['backup-password', 'monitoring-password', 'password', 'postgres-password']);
    const passwords = Object.values(secret.data as Record<string, string>).map((value) => Buffer.from(value, 'base64').toString());
    for (const password of passwords) expect(password).toMatch(/^[A-Za-z0-9]{32}$/);
    expect(new Set(passwords).size).toBe(4);
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

describe('Grafana (phase 8)', () => {
  const grafanaOf = (objects: K8sObject[]) => componentObject(objects, 'Deployment', 'grafana');
  const configMap = (objects: K8sObject[], suffix: string) =>
    objects.find((object) => object.kind === 'ConfigMap' && object.metadata.name.endsWith(`-grafana-${suffix}`));
  const ini = (objects: K8sObject[]) => configMap(objects, 'config')!.data['grafana.ini'] as string;
  let objects: K8sObject[];
  beforeAll(async () => {
    objects = await renderChart();
  });

  it('one pod, Recreate (its volume is ReadWriteOnce), as the image user 472 with a matching fsGroup, probes on /api/health', () => {
    const grafana = grafanaOf(objects)!;
    expect(grafana.spec.replicas).toBe(1);
    expect(grafana.spec.strategy.type).toBe('Recreate');
    const pod = grafana.spec.template.spec;
    expect(pod.securityContext).toMatchObject({
      runAsUser: 472,
      runAsGroup: 472,
      fsGroup: 472,
      runAsNonRoot: true,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    const container = pod.containers[0];
    expect(container.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
    for (const probe of ['startupProbe', 'livenessProbe', 'readinessProbe'])
      expect(container[probe].httpGet, probe).toEqual({ path: '/api/health', port: 'http' });
    const service = named(objects, 'Service', grafana.metadata.name)!;
    expect(service.spec.ports[0]).toMatchObject({ port: 3000, targetPort: 'http' });
    expect(container.ports[0]).toMatchObject({ name: 'http', containerPort: 3000 });
    // Writable places only: the data volume and bounded emptyDirs.
    const writable = container.volumeMounts
      .filter((mount: { readOnly?: boolean }) => !mount.readOnly)
      .map((mount: { mountPath: string }) => mount.mountPath)
      .sort();
    expect(writable).toEqual(['/tmp', '/var/lib/grafana', '/var/log/grafana']);
  });

  it('the admin login comes from a Secret: generated once (32 characters), from values, or an existing Secret', async () => {
    const secret = componentObject(objects, 'Secret', 'grafana')!;
    expect(Buffer.from(secret.data['admin-user'], 'base64').toString()).toBe('admin');
    expect(Buffer.from(secret.data['admin-password'], 'base64').toString()).toMatch(/^[A-Za-z0-9]{32}$/);
    const env = grafanaOf(objects)!.spec.template.spec.containers[0].env;
    expect(env.find((variable: { name: string }) => variable.name === 'GF_SECURITY_ADMIN_PASSWORD').valueFrom.secretKeyRef).toEqual({
      name: secret.metadata.name,
      key: 'admin-password',
    });

    const given = componentObject(await renderChart([], ['grafana.admin.password=chosen-password']), 'Secret', 'grafana')!;
    expect(Buffer.from(given.data['admin-password'], 'base64').toString()).toBe('chosen-password');

    const existing = await renderChart([], ['grafana.admin.existingSecret=grafana-login']);
    expect(componentObjects(existing, 'Secret', 'grafana')).toEqual([]);
    const existingEnv = grafanaOf(existing)!.spec.template.spec.containers[0].env;
    expect(existingEnv.find((variable: { name: string }) => variable.name === 'GF_SECURITY_ADMIN_USER').valueFrom.secretKeyRef).toEqual({
      name: 'grafana-login',
      key: 'admin-user',
    });
  });

  it('anonymous access and sign-up are off; no calls home', () => {
    expect(ini(objects)).toMatch(/\[auth\.anonymous\]\n(#[^\n]*\n)*enabled = false/);
    expect(ini(objects)).toMatch(/allow_sign_up = false/);
    expect(ini(objects)).toMatch(/reporting_enabled = false/);
  });

  it('one value serves Grafana under a sub-path: root_url, serve_from_sub_path and the probes agree', async () => {
    expect(ini(objects)).toContain('root_url = %(protocol)s://%(domain)s:%(http_port)s/\n');
    expect(ini(objects)).toContain('serve_from_sub_path = false');
    const sub = await renderChart([], ['grafana.subPath=/grafana']);
    expect(ini(sub)).toContain('root_url = %(protocol)s://%(domain)s:%(http_port)s/grafana/\n');
    expect(ini(sub)).toContain('serve_from_sub_path = true');
    expect(grafanaOf(sub)!.spec.template.spec.containers[0].livenessProbe.httpGet.path).toBe('/grafana/api/health');
    // A change of configuration restarts Grafana with it.
    expect(grafanaOf(sub)!.spec.template.metadata.annotations['checksum/config']).not.toBe(
      grafanaOf(objects)!.spec.template.metadata.annotations['checksum/config'],
    );
  });

  it("exactly one data source: the chart's Prometheus, not editable, and the default, which the dashboards' $datasource variable then picks", async () => {
    const datasources = parseYaml(configMap(objects, 'provisioning')!.data['datasources.yaml']);
    expect(datasources.datasources).toHaveLength(1);
    const prometheus = componentObject(objects, 'Service', 'prometheus')!;
    expect(datasources.datasources[0]).toMatchObject({
      uid: DASHBOARD_DATASOURCE_UID,
      type: 'prometheus',
      isDefault: true,
      editable: false,
      url: `http://${prometheus.metadata.name}:${prometheus.spec.ports[0].port}`,
      jsonData: { timeInterval: '15s' },
    });
    const prefixed = parseYaml(configMap(await renderChart([], ['prometheus.routePrefix=/prometheus']), 'provisioning')!.data['datasources.yaml']);
    expect(prefixed.datasources[0].url).toBe(`http://${prometheus.metadata.name}:9090/prometheus`);
    const elsewhere = await helm(['template', RELEASE, CHART_DIR, '--kube-version', KUBE_VERSION, '--set', 'prometheus.enabled=false']);
    expect(elsewhere.output).toContain('grafana needs a Prometheus: set prometheus.enabled=true or grafana.prometheusUrl');
  });

  it('the dashboards: every file of wiki-chart/dashboards/, unchanged, provisioned in a folder named after the release', () => {
    const dashboards = configMap(objects, 'dashboards')!;
    const files = dashboardFiles();
    expect(Object.keys(dashboards.data).sort()).toEqual(files.map((file) => file.name));
    for (const file of files) expect(JSON.parse(dashboards.data[file.name])).toEqual(file.dashboard);
    const provider = parseYaml(configMap(objects, 'provisioning')!.data['dashboards.yaml']).providers[0];
    expect(provider).toMatchObject({ folder: RELEASE, type: 'file', allowUiUpdates: false });
    const pod = grafanaOf(objects)!.spec.template.spec;
    const mount = pod.containers[0].volumeMounts.find((candidate: { mountPath: string }) => candidate.mountPath === provider.options.path);
    expect(pod.volumes.find((volume: { name: string }) => volume.name === mount.name).configMap.name).toBe(dashboards.metadata.name);
  });

  it("the dashboards ConfigMap carries the sidecar label, and is there for a cluster's own Grafana when the chart's is off", async () => {
    expect(configMap(objects, 'dashboards')!.metadata.labels.grafana_dashboard).toBe('1');
    const without = await renderChart([], ['grafana.enabled=false']);
    expect(grafanaOf(without)).toBeUndefined();
    expect(configMap(without, 'dashboards')!.metadata.labels.grafana_dashboard).toBe('1');
    // Without the chart's Prometheus, its dashboard would show another one's, or nothing.
    const existing = await renderChart([join(CI_DIR, 'existing-monitoring-values.yaml')]);
    expect(Object.keys(configMap(existing, 'dashboards')!.data).sort()).toEqual(['api.json', 'creation.json', 'postgresql.json']);
    // No label and no Grafana (ci/no-monitoring-values.yaml): no dashboards at all.
    expect(configMap(await renderChart([join(CI_DIR, 'no-monitoring-values.yaml')]), 'dashboards')).toBeUndefined();
  });
});

describe('the Ingress and the network policies (ci/ingress-values.yaml)', () => {
  let objects: K8sObject[];
  beforeAll(async () => {
    objects = await renderChart([join(CI_DIR, 'ingress-values.yaml')]);
  });

  it('both are off by default', async () => {
    const defaults = await renderChart();
    expect(byKind(defaults, 'Ingress')).toEqual([]);
    expect(byKind(defaults, 'NetworkPolicy')).toEqual([]);
  });

  it("every path of the Ingress leads to a rendered Service's port; what is not exposed has no path", () => {
    const [ingress] = byKind(objects, 'Ingress');
    expect(ingress!.spec.ingressClassName).toBe('nginx');
    expect(ingress!.spec.tls).toEqual([{ secretName: 'wiki-tls', hosts: ['wiki.example.com'] }]);
    const paths = ingress!.spec.rules[0].http.paths as Array<{
      path: string;
      pathType: string;
      backend: { service: { name: string; port: { name: string } } };
    }>;
    for (const { path, backend } of paths) {
      const service = named(objects, 'Service', backend.service.name);
      expect(service, path).toBeDefined();
      expect(
        service!.spec.ports.map((port: { name: string }) => port.name),
        path,
      ).toContain(backend.service.port.name);
    }
    const component = (name: string) => named(objects, 'Service', name)!.metadata.labels['app.kubernetes.io/component'];
    expect(paths.map(({ path, pathType, backend }) => `${path} ${pathType} ${component(backend.service.name)}`)).toEqual([
      '/users Prefix api',
      '/user Prefix api',
      '/posts Prefix api',
      '/docs Prefix api',
      '/openapi.json Exact api',
      '/grafana Prefix grafana',
      '/prometheus Prefix prometheus',
    ]);
    expect(ingress!.spec.rules[0].host).toBe('wiki.example.com');
  });

  it.each([
    [
      'a host without TLS',
      ['ingress.enabled=true', 'ingress.hosts[0]=wiki.example.org'],
      'root_url = http://wiki.example.org/grafana/',
      'cookie_secure = false',
    ],
    ['no host (the Ingress answers any)', ['ingress.enabled=true'], 'root_url = %(protocol)s://%(domain)s:%(http_port)s/grafana/', 'cookie_secure = false'],
    ['no Ingress', [], 'root_url = %(protocol)s://%(domain)s:%(http_port)s/', 'cookie_secure = false'],
  ])("Grafana's root_url and cookie_secure with %s", async (_, set, rootUrl, cookieSecure) => {
    const ini = (await renderChart([], set)).find((object) => object.kind === 'ConfigMap' && object.metadata.name.endsWith('-grafana-config'))!.data[
      'grafana.ini'
    ];
    expect(ini).toContain(`${rootUrl}\n`);
    expect(ini).toContain(`${cookieSecure}\n`);
  });

  it('Grafana and Prometheus serve under the paths the Ingress gives them', () => {
    const grafanaIni = objects.find((object) => object.kind === 'ConfigMap' && object.metadata.name.endsWith('-grafana-config'))!.data['grafana.ini'];
    // Grafana's links, redirects and cookies follow the Ingress's host and TLS, as Prometheus's external URL does.
    expect(grafanaIni).toContain('domain = wiki.example.com\n');
    expect(grafanaIni).toContain('root_url = https://wiki.example.com/grafana/\n');
    expect(grafanaIni).toContain('cookie_secure = true\n');
    expect(grafanaIni).toContain('serve_from_sub_path = true');
    const prometheus = componentObject(objects, 'Deployment', 'prometheus')!;
    expect(prometheus.spec.template.spec.containers[0].args).toContain('--web.route-prefix=/prometheus');
    // The UI's links and redirects follow the external URL, derived from the Ingress's host and TLS.
    expect(prometheus.spec.template.spec.containers[0].args).toContain('--web.external-url=https://wiki.example.com/prometheus');
    expect(prometheus.spec.template.spec.containers[0].readinessProbe.httpGet.path).toBe('/prometheus/-/ready');
  });

  it('every network policy selects pods the chart really runs', () => {
    const pods = releasePods(objects, {});
    for (const policy of byKind(objects, 'NetworkPolicy')) {
      const selected = pods.filter((pod) => Object.entries(policy.spec.podSelector.matchLabels ?? {}).every(([key, value]) => pod.labels[key] === value));
      expect(selected.length, policy.metadata.name).toBeGreaterThan(0);
    }
  });

  // Who may talk to whom, computed from the rendered policies (support/network-policy.ts)
  // for the chart's pods and the peers outside the release a cluster would have.
  const NAMESPACE_LABELS = { 'kubernetes.io/metadata.name': NAMESPACE };
  const OUTSIDE: Endpoint[] = [
    {
      name: 'ingress controller',
      labels: { 'app.kubernetes.io/name': 'ingress-nginx' },
      namespaceLabels: { 'kubernetes.io/metadata.name': 'ingress-nginx' },
      ports: [],
      inRelease: false,
    },
    {
      name: 'DNS',
      labels: { 'k8s-app': 'kube-dns' },
      namespaceLabels: { 'kubernetes.io/metadata.name': 'kube-system' },
      ports: [
        { protocol: 'UDP', port: 53 },
        { protocol: 'TCP', port: 53 },
      ],
      inRelease: false,
    },
    {
      name: 'Kubernetes API',
      labels: {},
      namespaceLabels: undefined,
      ports: [
        { protocol: 'TCP', port: 443 },
        { protocol: 'TCP', port: 6443 },
      ],
      inRelease: false,
    },
    {
      name: 'another pod in the namespace',
      labels: { app: 'other' },
      namespaceLabels: NAMESPACE_LABELS,
      ports: [{ protocol: 'TCP', port: 8080 }],
      inRelease: false,
    },
    // Where Alertmanager's notifications go: a webhook, Slack or a mail server on the internet.
    {
      name: 'a receiver on the internet',
      labels: {},
      namespaceLabels: undefined,
      ports: [
        { protocol: 'TCP', port: 443 },
        { protocol: 'TCP', port: 587 },
        { protocol: 'TCP', port: 25 },
      ],
      inRelease: false,
    },
  ];
  const connections = () => allowedConnections(byKind(objects, 'NetworkPolicy'), NAMESPACE_LABELS, [...releasePods(objects, NAMESPACE_LABELS), ...OUTSIDE]);

  it('allow exactly: the ingress controller to the API, Grafana and (exposed) Prometheus; Prometheus to the API, the exporter, Alertmanager and the Kubernetes API; Grafana to Prometheus; the API and the backup to PostgreSQL; Alertmanager to its receivers; the test pod to the API; every pod to DNS', () => {
    const dns = (from: string) => [`${from} -> DNS:53/TCP`, `${from} -> DNS:53/UDP`];
    expect(connections()).toEqual(
      [
        ...dns('alertmanager'),
        // Receivers are anywhere, so that rule names ports only: 443 reaches the
        // Kubernetes API too (Alertmanager has no token for it), and 25 stays closed.
        'alertmanager -> Kubernetes API:443/TCP',
        'alertmanager -> a receiver on the internet:443/TCP',
        'alertmanager -> a receiver on the internet:587/TCP',
        // Likewise the Kubernetes API's address varies between clusters: Prometheus's
        // rule names its ports only, so any HTTPS address is open to Prometheus.
        'prometheus -> a receiver on the internet:443/TCP',
        'prometheus -> alertmanager:9093/TCP',
        'api -> postgresql:5432/TCP',
        // The backup CronJob (and the restore Job) reach PostgreSQL only.
        'backup -> postgresql:5432/TCP',
        ...dns('backup'),
        ...dns('api'),
        ...dns('grafana'),
        'grafana -> prometheus:9090/TCP',
        'ingress controller -> api:8000/TCP',
        'ingress controller -> grafana:3000/TCP',
        'ingress controller -> prometheus:9090/TCP',
        ...dns('postgresql'),
        ...dns('prometheus'),
        'prometheus -> Kubernetes API:443/TCP',
        'prometheus -> Kubernetes API:6443/TCP',
        'prometheus -> api:8000/TCP',
        // PostgreSQL's exporter, in PostgreSQL's pod.
        'prometheus -> postgresql:9187/TCP',
        ...dns('test'),
        'test -> api:8000/TCP',
      ].sort(),
    );
  });

  it('docs/PHASE9_INGRESS.md shows that computed table', () => {
    const doc = readFileSync(join(REPO_ROOT, 'docs', 'PHASE9_INGRESS.md'), 'utf8');
    expect(doc).toContain(connectionsTable(connections()));
  });

  it("a cluster's Prometheus (networkPolicy.externalPrometheus) may scrape the API and the exporter, and the chart's Grafana may query it; nothing else in its namespace may", async () => {
    const monitoring = { 'kubernetes.io/metadata.name': 'monitoring' };
    const clusterPrometheus: Endpoint = {
      name: 'cluster Prometheus',
      labels: { 'app.kubernetes.io/name': 'prometheus' },
      namespaceLabels: monitoring,
      ports: [{ protocol: 'TCP', port: 9090 }],
      inRelease: false,
    };
    const otherMonitoringPod: Endpoint = {
      name: 'another monitoring pod',
      labels: { 'app.kubernetes.io/name': 'grafana' },
      namespaceLabels: monitoring,
      ports: [{ protocol: 'TCP', port: 9090 }],
      inRelease: false,
    };
    const lines = async (set: string[]) => {
      const rendered = await renderChart([join(CI_DIR, 'existing-monitoring-values.yaml')], ['networkPolicy.enabled=true', ...set]);
      return allowedConnections(byKind(rendered, 'NetworkPolicy'), NAMESPACE_LABELS, [
        ...releasePods(rendered, NAMESPACE_LABELS),
        ...OUTSIDE,
        clusterPrometheus,
        otherMonitoringPod,
      ]);
    };
    const withGrafana = ['grafana.enabled=true', 'grafana.prometheusUrl=http://kube-prometheus-stack-prometheus.monitoring:9090'];
    const connected = await lines(withGrafana);
    expect(connected).toEqual(
      expect.arrayContaining(['cluster Prometheus -> api:8000/TCP', 'cluster Prometheus -> postgresql:9187/TCP', 'grafana -> cluster Prometheus:9090/TCP']),
    );
    expect(connected.filter((line) => line.includes('another monitoring pod'))).toEqual([]);
    expect(connected.filter((line) => line.startsWith('grafana -> ') && !line.includes('DNS'))).toEqual(['grafana -> cluster Prometheus:9090/TCP']);
    // Without the peers, the same release keeps the cluster's Prometheus out.
    const closed = await lines([...withGrafana, 'networkPolicy.externalPrometheus.peers=null']);
    expect(closed.filter((line) => line.includes('cluster Prometheus'))).toEqual([]);
  });

  it('without the policies, everything would be allowed (the evaluation can tell)', async () => {
    const open = await renderChart([], ['ingress.enabled=true']);
    const lines = allowedConnections(byKind(open, 'NetworkPolicy'), NAMESPACE_LABELS, [...releasePods(open, NAMESPACE_LABELS), ...OUTSIDE]);
    expect(lines).toContain('another pod in the namespace -> postgresql:5432/TCP');
    expect(lines).toContain('api -> another pod in the namespace:8080/TCP');
  });
});

describe('PostgreSQL operations (phase 11)', () => {
  const rulesOf = (objects: K8sObject[]) => named(objects, 'ConfigMap', `${RELEASE}-wiki-chart-prometheus-rules`)!.data as Record<string, string>;
  const scrapeJobs = (objects: K8sObject[]) =>
    (parseYaml(renderedPrometheusYml(objects)) as { scrape_configs: Array<{ job_name: string }> }).scrape_configs.map((job) => job.job_name);

  it('by default: the exporter beside PostgreSQL, scraped as job "postgresql"; the backup CronJob and its kept volume; the PostgreSQL alerts', async () => {
    const objects = await renderChart();
    const pod = byKind(objects, 'StatefulSet')[0]!.spec.template.spec;
    expect(pod.initContainers.map((container: { name: string }) => container.name)).toEqual(['setup']);
    expect(pod.containers.map((container: { name: string }) => container.name)).toEqual(['postgresql', 'postgres-exporter']);
    expect(pod.volumes.find((volume: { name: string }) => volume.name === 'shm').emptyDir).toEqual({ medium: 'Memory', sizeLimit: '512Mi' });
    expect(scrapeJobs(objects)).toEqual(['prometheus', 'wiki-api', 'postgresql', 'alertmanager']);
    const cronJob = byKind(objects, 'CronJob')[0]!;
    expect(cronJob.spec.schedule).toBe('30 2 * * *');
    expect(podSpecOf(cronJob).volumes.find((volume: { name: string }) => volume.name === 'backups').persistentVolumeClaim.claimName).toBe(
      `${RELEASE}-wiki-chart-postgresql-backups`,
    );
    expect(Object.keys(rulesOf(objects)).sort()).toEqual(['alerts.yaml', 'postgresql.yaml', 'recording.yaml', 'slo.yaml']);
    expect(rulesOf(objects)['postgresql.yaml']).toContain('> 48h');
    // No restore Job unless asked for.
    expect(byKind(objects, 'Job')).toEqual([]);
  });

  it('the exporter off: no sidecar, scrape job, PodMonitor or PostgreSQL rules; backups off: no CronJob, volume or backup alert', async () => {
    const objects = await renderChart([], ['postgresql.metrics.enabled=false', 'postgresql.backup.enabled=false', 'api.metrics.podMonitor.enabled=true']);
    expect(byKind(objects, 'StatefulSet')[0]!.spec.template.spec.containers.map((container: { name: string }) => container.name)).toEqual(['postgresql']);
    expect(scrapeJobs(objects)).not.toContain('postgresql');
    expect(byKind(objects, 'PodMonitor').map((monitor) => monitor.metadata.labels['app.kubernetes.io/component'])).toEqual(['api']);
    expect(Object.keys(rulesOf(objects))).not.toContain('postgresql.yaml');
    expect(byKind(objects, 'CronJob')).toEqual([]);
    expect(byKind(objects, 'PersistentVolumeClaim').map((claim) => claim.metadata.name)).not.toContain(`${RELEASE}-wiki-chart-postgresql-backups`);
    const secret = componentObject(objects, 'Secret', 'database')!;
    expect(Object.keys(secret.data).sort()).toEqual(['password', 'postgres-password']);
    const backupOff = await renderChart([], ['postgresql.backup.enabled=false']);
    expect(rulesOf(backupOff)['postgresql.yaml']).not.toContain('PostgresqlBackupMissing');
    expect(rulesOf(backupOff)['postgresql.yaml']).toContain('PostgresqlDown');
    // The exporter without backups reads no backup records.
    expect(byKind(backupOff, 'StatefulSet')[0]!.spec.template.spec.containers[1].args).toEqual(['--web.listen-address=:9187']);
  });

  it("with the PodMonitor option, PostgreSQL's exporter gets one too, with the job name the rules use", async () => {
    const objects = await renderChart([], ['api.metrics.podMonitor.enabled=true']);
    const monitor = byKind(objects, 'PodMonitor').find((candidate) => candidate.metadata.labels['app.kubernetes.io/component'] === 'postgresql')!;
    expect(monitor.spec.podMetricsEndpoints[0]).toMatchObject({ port: 'metrics', relabelings: [{ targetLabel: 'job', replacement: 'postgresql' }] });
  });

  it.each([
    ['30 2 * * *', '48h'],
    ['0 * * * *', '2h'],
    ['15 */6 * * *', '12h'],
    ['0 3 * * 0', '336h'],
    ['@daily', '48h'],
    ['@hourly', '2h'],
  ])('a backup schedule of "%s" makes the backup alert wait %s', async (schedule, maxAge) => {
    const rules = rulesOf(await renderChart([], [`postgresql.backup.schedule=${schedule}`]));
    expect(rules['postgresql.yaml']).toContain(`) > ${maxAge}\n`);
  });

  it('a schedule the chart cannot read is refused unless backupMaxAge is set', async () => {
    await expect(renderChart([], ['postgresql.backup.schedule=0 2\\,14 * * 1-5'])).rejects.toThrow(
      'the chart cannot tell its interval; set alerting.postgresql.backupMaxAge',
    );
    const rules = rulesOf(await renderChart([], ['postgresql.backup.schedule=0 2\\,14 * * 1-5', 'alerting.postgresql.backupMaxAge=26h']));
    expect(rules['postgresql.yaml']).toContain(') > 26h\n');
  });

  it.each([
    // 2 replicas + 1 surge = 3 pods x 10 + 3 + 2 + 3 = 38: fits 100.
    [[], true],
    // autoscaling to 3: 4 pods x 10 + 8 = 48.
    [['api.autoscaling.enabled=true'], true],
    // 4 pods x 23 + 8 = 100: just fits; 4 x 24 + 8 = 104 does not.
    [['api.autoscaling.enabled=true', 'api.databasePoolSize=23'], true],
    [['api.autoscaling.enabled=true', 'api.databasePoolSize=24'], false],
    [['api.replicaCount=9'], false],
  ] as Array<[string[], boolean]>)('the connections of %j fit max_connections: %s', async (set, fits) => {
    const error = await renderChart([], set).then(
      () => undefined,
      (failure: Error) => failure.message,
    );
    expect(error ?? '').toMatch(fits ? /^$/ : /postgresql.config.max_connections is 100, but up to \d+ connections may be needed/);
  });

  it("postgresql.config settings reach the server's command line", async () => {
    const objects = await renderChart([], ['postgresql.config.work_mem=8MB', 'postgresql.config.max_connections=150']);
    const args: string[] = byKind(objects, 'StatefulSet')[0]!.spec.template.spec.containers[0].args;
    expect(args).toEqual(expect.arrayContaining(['postgres', '-c', 'work_mem=8MB', 'max_connections=150']));
  });
});

describe("PostgreSQL's restarts", () => {
  const checksum = (objects: K8sObject[]) => byKind(objects, 'StatefulSet')[0]!.spec.template.metadata.annotations['checksum/scripts'];

  it('a changed setup script restarts PostgreSQL (its setup runs at every start); other values and the chart version do not', async () => {
    const defaults = await renderChart();
    expect(checksum(defaults)).toMatch(/^[a-f0-9]{64}$/);
    expect(checksum(await renderChart([], ['api.replicaCount=3', 'postgresql.podLabels.team=wiki']))).toBe(checksum(defaults));
    // A copy of the chart: one byte more in setup.sql, and, separately, a new version.
    const copy = await mkdtemp(join(tmpdir(), 'wiki-chart-copy-'));
    try {
      const render = async () => {
        const result = await helm(['template', RELEASE, join(copy, 'wiki-chart'), '--namespace', NAMESPACE, '--kube-version', KUBE_VERSION]);
        expect(result.ok, result.output).toBe(true);
        return parseAllDocuments(result.output)
          .map((document) => document.toJS() as K8sObject)
          .filter((object) => object !== null);
      };
      await cp(CHART_DIR, join(copy, 'wiki-chart'), { recursive: true });
      const chartYaml = join(copy, 'wiki-chart', 'Chart.yaml');
      await writeFile(chartYaml, (await readFile(chartYaml, 'utf8')).replace(/^version: .*$/m, 'version: 99.0.0'));
      expect(checksum(await render())).toBe(checksum(defaults));
      await appendFile(join(copy, 'wiki-chart', 'postgresql', 'setup.sql'), '\n');
      expect(checksum(await render())).not.toBe(checksum(defaults));
    } finally {
      await rm(copy, { recursive: true, force: true });
    }
  });
});
