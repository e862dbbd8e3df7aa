import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import { CHART_DIR, helm, KUBE_VERSION, NAMESPACE, RELEASE, renderChart, type K8sObject } from './support/helm.js';
import { memoryBytes } from './support/quantity.js';
import { containersOf, LONG_RUNNING_KINDS, podSpecOf, podTemplateOf, validateAgainstKubernetesSchema, WORKLOAD_KINDS } from './support/kubernetes.js';
import { generatedDatabaseSecret } from './support/chart-env.js';
import { renderedPrometheusYml } from './support/prometheus.js';
import { byKind, CI_DIR, componentObject, named, VALUES_SETS, valuesOf } from './support/rendered.js';

// The chart, checked without a cluster: helm lint, and every rendered object against
// the Kubernetes API schemas and the chart's own invariants, for the default values and
// every ci/*-values.yaml (the prometheus-community convention).

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

  it("renders the API, PostgreSQL as database.mode says (the chart's StatefulSet, or CloudNativePG's Cluster, or neither); Prometheus, Grafana and Alertmanager when enabled", () => {
    const expected = ['alertmanager', 'api', 'grafana', 'prometheus'].filter((component) => component === 'api' || values[component].enabled);
    expect(
      byKind(objects, 'Deployment')
        .map((object) => object.metadata.labels['app.kubernetes.io/component'])
        .sort(),
    ).toEqual(expected);
    expect(byKind(objects, 'StatefulSet')).toHaveLength(values.database.mode === 'builtin' ? 1 : 0);
    expect(byKind(objects, 'Cluster')).toHaveLength(values.database.mode === 'cloudnative-pg' ? 1 : 0);
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
      postgresql: values.database.mode === 'cloudnative-pg' ? values.cloudnativePg.image.tag : values.postgresql.image.tag,
      pooler: values.cloudnativePg.pooler.image.tag,
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
    const secretsByValue = [
      values.postgresql.auth.existingSecret,
      values.externalDatabase.existingSecret,
      values.cloudnativePg.appSecret,
      values.postgresql.backup.objectStore.credentialsSecret,
    ].filter(Boolean);
    // The Secrets the CloudNativePG operator makes for a rendered Cluster, with their keys.
    const operatorSecrets: Record<string, string[]> = Object.fromEntries(
      byKind(objects, 'Cluster').flatMap((cluster) => [
        [`${cluster.metadata.name}-app`, ['username', 'password', 'host', 'port', 'dbname', 'uri', 'jdbc-uri', 'pgpass']],
        [`${cluster.metadata.name}-ca`, ['ca.crt', 'ca.key']],
      ]),
    );
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
        const generated = generatedDatabaseSecret(objects)?.metadata.name === secret.secretName;
        expect(
          named(objects, 'Secret', secret.secretName) ?? (generated || secretsByValue.includes(secret.secretName) || secret.secretName in operatorSecrets),
          secret.secretName,
        ).toBeTruthy();
        const operatorItems: Array<{ key: string }> = secret.secretName in operatorSecrets ? (secret.items ?? []) : [];
        for (const { key } of operatorItems) expect(operatorSecrets[secret.secretName], secret.secretName).toContain(key);
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
          // A Secret of the chart (or the one its credentials Job generates) has the key; one the values name must exist already.
          const secret =
            named(objects, 'Secret', secretKeyRef.name) ??
            [generatedDatabaseSecret(objects)].find((generated) => generated?.metadata.name === secretKeyRef.name);
          // One the operator makes has the keys it gives it.
          const operatorKeys = operatorSecrets[secretKeyRef.name];
          const available = operatorKeys ?? (secret ? Object.keys(secret.data ?? secret.stringData ?? {}) : secretsByValue);
          const wanted = operatorKeys !== undefined || secret ? secretKeyRef.key : secretKeyRef.name;
          expect(available, `Secret ${secretKeyRef.name}, key ${secretKeyRef.key}`).toContain(wanted);
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
    // binds to a read-only Role (Prometheus's pod discovery), and the database-credentials
    // hook, which may read and add to the database Secret and create it, and whose
    // account is deleted once it succeeded.
    const roleOf = (workload: K8sObject) => {
      const binding = byKind(objects, 'RoleBinding').find((candidate) =>
        candidate.subjects.some(
          (subject: { kind: string; name: string }) => subject.kind === 'ServiceAccount' && subject.name === podSpecOf(workload).serviceAccountName,
        ),
      );
      expect(binding, `${workload.metadata.name} mounts a token without a RoleBinding`).toBeDefined();
      return { binding: binding!, role: named(objects, 'Role', binding!.roleRef.name)! };
    };
    const withToken = workloads.filter((candidate) => podSpecOf(candidate).automountServiceAccountToken !== false);
    const isCredentials = (workload: K8sObject) => workload.metadata.labels['app.kubernetes.io/component'] === 'credentials';
    for (const workload of withToken.filter((candidate) => !isCredentials(candidate))) {
      for (const rule of roleOf(workload).role.rules) expect(rule.verbs.sort()).toEqual(['get', 'list', 'watch']);
    }
    for (const workload of withToken.filter(isCredentials)) {
      const { binding, role } = roleOf(workload);
      const secretName = podSpecOf(workload).containers[0].env.find((variable: { name: string }) => variable.name === 'SECRET_NAME').value;
      expect(role.rules).toEqual([
        { apiGroups: [''], resources: ['secrets'], resourceNames: [secretName], verbs: ['get', 'patch'] },
        { apiGroups: [''], resources: ['secrets'], verbs: ['create'] },
      ]);
      for (const object of [workload, role, binding, named(objects, 'ServiceAccount', podSpecOf(workload).serviceAccountName)!])
        expect(object.metadata.annotations['helm.sh/hook-delete-policy'], `${object.kind} ${object.metadata.name}`).toBe('before-hook-creation,hook-succeeded');
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
    expect(statefulSet !== undefined, 'a PostgreSQL StatefulSet exactly in the builtin mode').toBe(values.database.mode === 'builtin');
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
