import { appendFile, cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import { CHART_DIR, helm, KUBE_VERSION, NAMESPACE, RELEASE, renderChart, type K8sObject } from './support/helm.js';
import { LONG_RUNNING_KINDS, podSpecOf } from './support/kubernetes.js';
import { generatedDatabaseSecret } from './support/chart-env.js';
import { renderedPrometheusYml } from './support/prometheus.js';
import { byKind, CI_DIR, componentObject, named, valuesOf } from './support/rendered.js';

// The chart's monitoring options without a cluster: a cluster's own Prometheus stack
// (PodMonitor, PrometheusRule, annotations), Prometheus' options and placement, and
// PostgreSQL's exporter, backups, settings and restarts (phase 11).

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

describe('PostgreSQL operations (phase 11)', () => {
  const rulesOf = (objects: K8sObject[]) => named(objects, 'ConfigMap', `${RELEASE}-wiki-chart-prometheus-rules`)!.data as Record<string, string>;
  const scrapeJobs = (objects: K8sObject[]) =>
    (parseYaml(renderedPrometheusYml(objects)) as { scrape_configs: Array<{ job_name: string }> }).scrape_configs.map((job) => job.job_name);

  it('by default: the exporter beside PostgreSQL, scraped as job "postgresql"; the backup CronJob and its kept volume; the PostgreSQL alerts', async () => {
    const objects = await renderChart();
    const pod = byKind(objects, 'StatefulSet')[0]!.spec.template.spec;
    expect(pod.initContainers.map((container: { name: string }) => container.name)).toEqual(['setup']);
    expect(pod.containers.map((container: { name: string }) => container.name)).toEqual(['postgresql', 'passwords', 'postgres-exporter']);
    expect(pod.volumes.find((volume: { name: string }) => volume.name === 'shm').emptyDir).toEqual({ medium: 'Memory', sizeLimit: '512Mi' });
    expect(scrapeJobs(objects)).toEqual(['prometheus', 'wiki-api', 'postgresql', 'alertmanager']);
    const cronJob = byKind(objects, 'CronJob')[0]!;
    expect(cronJob.spec.schedule).toBe('30 2 * * *');
    expect(podSpecOf(cronJob).volumes.find((volume: { name: string }) => volume.name === 'backups').persistentVolumeClaim.claimName).toBe(
      `${RELEASE}-wiki-chart-postgresql-backups`,
    );
    expect(Object.keys(rulesOf(objects)).sort()).toEqual(['alerts.yaml', 'postgresql.yaml', 'recording.yaml', 'slo.yaml']);
    expect(rulesOf(objects)['postgresql.yaml']).toContain('> 172800\n');
    // No restore Job unless asked for (the database-credentials hook is the only Job).
    expect(byKind(objects, 'Job').map((job) => job.metadata.labels['app.kubernetes.io/component'])).toEqual(['credentials']);
  });

  it('the exporter off: no sidecar, scrape job, PodMonitor or PostgreSQL rules; backups off: no CronJob, volume or backup alert', async () => {
    const objects = await renderChart([], ['postgresql.metrics.enabled=false', 'postgresql.backup.enabled=false', 'api.metrics.podMonitor.enabled=true']);
    expect(byKind(objects, 'StatefulSet')[0]!.spec.template.spec.containers.map((container: { name: string }) => container.name)).toEqual([
      'postgresql',
      'passwords',
    ]);
    expect(scrapeJobs(objects)).not.toContain('postgresql');
    expect(byKind(objects, 'PodMonitor').map((monitor) => monitor.metadata.labels['app.kubernetes.io/component'])).toEqual(['api']);
    expect(Object.keys(rulesOf(objects))).not.toContain('postgresql.yaml');
    expect(byKind(objects, 'CronJob')).toEqual([]);
    expect(byKind(objects, 'PersistentVolumeClaim').map((claim) => claim.metadata.name)).not.toContain(`${RELEASE}-wiki-chart-postgresql-backups`);
    // The credentials Job generates a password for the two roles left.
    expect(Object.keys(generatedDatabaseSecret(objects)!.data).sort()).toEqual(['password', 'postgres-password']);
    const backupOff = await renderChart([], ['postgresql.backup.enabled=false']);
    expect(rulesOf(backupOff)['postgresql.yaml']).not.toContain('PostgresqlBackupMissing');
    expect(rulesOf(backupOff)['postgresql.yaml']).toContain('PostgresqlDown');
    // The exporter without backups reads no backup records.
    expect(
      byKind(backupOff, 'StatefulSet')[0]!.spec.template.spec.containers.find((container: { name: string }) => container.name === 'postgres-exporter').args,
    ).toEqual(['--web.listen-address=:9187', '--collector.database_wraparound']);
  });

  it("with the PodMonitor option, PostgreSQL's exporter gets one too, with the job name the rules use", async () => {
    const objects = await renderChart([], ['api.metrics.podMonitor.enabled=true']);
    const monitor = byKind(objects, 'PodMonitor').find((candidate) => candidate.metadata.labels['app.kubernetes.io/component'] === 'postgresql')!;
    expect(monitor.spec.podMetricsEndpoints[0]).toMatchObject({ port: 'metrics', relabelings: [{ targetLabel: 'job', replacement: 'postgresql' }] });
  });

  // In seconds: a duration literal in a PromQL expression (`> 48h`) needs Prometheus 2.54 or newer.
  it.each([
    ['30 2 * * *', '48h', 172800],
    ['0 * * * *', '2h', 7200],
    ['15 */6 * * *', '12h', 43200],
    ['0 3 * * 0', '336h', 1209600],
    ['@daily', '48h', 172800],
    ['@hourly', '2h', 7200],
  ])('a backup schedule of "%s" makes the backup alert wait %s, compared in seconds', async (schedule, maxAge, seconds) => {
    const rules = rulesOf(await renderChart([], [`postgresql.backup.schedule=${schedule}`]));
    expect(rules['postgresql.yaml']).toContain(`) > ${seconds}\n`);
    expect(rules['postgresql.yaml']).toContain(`more than ${maxAge} (twice the schedule`);
  });

  it('a schedule the chart cannot read is refused unless backupMaxAge is set', async () => {
    await expect(renderChart([], ['postgresql.backup.schedule=0 2\\,14 * * 1-5'])).rejects.toThrow(
      'the chart cannot tell its interval; set alerting.postgresql.backupMaxAge',
    );
    const rules = rulesOf(await renderChart([], ['postgresql.backup.schedule=0 2\\,14 * * 1-5', 'alerting.postgresql.backupMaxAge=26h']));
    expect(rules['postgresql.yaml']).toContain(') > 93600\n');
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
    const objects = await renderChart(
      [],
      ['postgresql.config.work_mem=8MB', 'postgresql.config.max_connections=150', 'postgresql.resources.limits.memory=2Gi'],
    );
    const args: string[] = byKind(objects, 'StatefulSet')[0]!.spec.template.spec.containers[0].args;
    expect(args).toEqual(expect.arrayContaining(['postgres', '-c', 'work_mem=8MB', 'max_connections=150']));
  });
});

// PostgreSQL runs as one pod: replacing it is an outage. Its pod template must change
// only when what the pod runs changes, never with the chart's version (a label) or a
// script only the backup uses (the scripts ConfigMap's checksum).
describe("PostgreSQL's restarts", () => {
  const checksum = (objects: K8sObject[]) => byKind(objects, 'StatefulSet')[0]!.spec.template.metadata.annotations['checksum/scripts'];

  async function podTemplate(chartDir: string): Promise<unknown> {
    const result = await helm([
      'template',
      RELEASE,
      chartDir,
      '--namespace',
      NAMESPACE,
      '--kube-version',
      KUBE_VERSION,
      '--show-only',
      'templates/postgresql-statefulset.yaml',
    ]);
    expect(result.ok, result.output).toBe(true);
    return (parseAllDocuments(result.output)[0]!.toJS() as { spec: { template: unknown } }).spec.template;
  }

  it('values of other components do not restart it', async () => {
    const defaults = await renderChart();
    expect(checksum(defaults)).toMatch(/^[a-f0-9]{64}$/);
    expect(checksum(await renderChart([], ['api.replicaCount=3', 'postgresql.podLabels.team=wiki']))).toBe(checksum(defaults));
  });

  it('its pod template is the same after a version bump and a changed backup or restore script; a changed setup changes it', async () => {
    const copy = await mkdtemp(join(tmpdir(), 'wiki-chart-next-'));
    try {
      await cp(CHART_DIR, copy, { recursive: true });
      const chartYaml = join(copy, 'Chart.yaml');
      await writeFile(chartYaml, (await readFile(chartYaml, 'utf8')).replace(/^version: .*$/m, 'version: 99.0.0'));
      await appendFile(join(copy, 'postgresql', 'backup.sh'), '# a change to the backup only\n');
      await appendFile(join(copy, 'postgresql', 'restore.sh'), '# a change to the restore only\n');
      const before = await podTemplate(CHART_DIR);
      expect(await podTemplate(copy)).toEqual(before);

      await appendFile(join(copy, 'postgresql', 'setup.sql'), '-- a change to the setup\n');
      expect(await podTemplate(copy)).not.toEqual(before);
    } finally {
      await rm(copy, { recursive: true, force: true });
    }
  });
});
