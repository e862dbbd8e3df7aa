import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import { CHART_DIR, helm, KUBE_VERSION, RELEASE, renderChart, type K8sObject } from './support/helm.js';
import { DASHBOARD_DATASOURCE_UID, dashboardFiles } from './support/dashboards.js';
import { CI_DIR, componentObject, componentObjects, named } from './support/rendered.js';

// Grafana as the chart renders it (phase 8): the pod, its login, its settings, the data
// source and the dashboards.

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
