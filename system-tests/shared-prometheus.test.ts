import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify as stringifyYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client } from '@wiki/test-support/http';
import { freePort, type PostgresServer } from '@wiki/test-support/postgres';
import { startService, type ServiceProcess } from 'wiki-service/service-process';
import { apiEnvironment, pointedAt, postgresMissing, startChartDatabase } from './support/chart-env.js';
import { startProcess, type StartedProcess } from '@wiki/test-support/process';
import { dashboardFiles, interpolate, panelsOf, variableQuery } from './support/dashboards.js';
import { CHART_DIR, renderChart, type K8sObject } from './support/helm.js';
import { instantQuery, PROMETHEUS, prometheusMissing } from './support/prometheus.js';
import { skipLoudly } from './support/skip.js';
import { until } from '@wiki/test-support/wait';

// The existing-stack mode for real: one Prometheus 3.5, as a cluster's
// kube-prometheus-stack runs it, shared by two releases of the chart in two
// namespaces. Each release is rendered with ci/existing-monitoring-values.yaml in its
// namespace: the groups of its PrometheusRule are Prometheus's rule files, and its
// API pod is scraped as its PodMonitor says (interval, path, the job relabelling),
// labelled with namespace and pod as the operator's pod discovery labels it. A decoy
// in release A's namespace scrapes A's API again under another job name, as another
// application exposing the same metric names would. Both APIs use one PostgreSQL.

const skip = skipLoudly(prometheusMissing() ?? postgresMissing(), 'the shared-Prometheus test is');
const EXISTING_STACK_VALUES = join(CHART_DIR, 'ci', 'existing-monitoring-values.yaml');
const RELEASES = [
  { namespace: 'wiki-a', pod: 'wiki-wiki-chart-api-5c9d7f8b6-aaaaa' },
  { namespace: 'wiki-b', pod: 'wiki-wiki-chart-api-5c9d7f8b6-bbbbb' },
] as const;
// Each release's traffic, different so that each dashboard's figures tell them apart.
const USERS = { 'wiki-a': 6, 'wiki-b': 2 };
const POSTS = { 'wiki-a': 0, 'wiki-b': 3 };
const READS_OF_A = 10;

describe.skipIf(skip)('one Prometheus shared by two releases (the PrometheusRule and PodMonitor of ci/existing-monitoring-values.yaml)', () => {
  let workDir: string;
  let postgres: PostgresServer;
  const apis: Record<string, ServiceProcess> = {};
  let prometheus: StartedProcess | undefined;
  let prometheusUrl = '';
  let scrapeIntervalSeconds = 0;
  const query = (promql: string) => instantQuery(prometheusUrl, promql);
  const api = (namespace: string) => client(apis[namespace]!.baseUrl);
  // Every target scraped: counters read before any traffic, so rate() sees it come.
  const allScraped = () =>
    until('both releases and the decoy scraped', 90_000, async () => {
      const samples = await query('up == 1');
      return samples.length === 3 ? samples : undefined;
    });

  beforeAll(async () => {
    workDir = await mkdtemp(join(tmpdir(), 'wiki-shared-prometheus-'));
    const rendered: Record<string, K8sObject[]> = {};
    for (const { namespace } of RELEASES) rendered[namespace] = await renderChart([EXISTING_STACK_VALUES], [], namespace);
    const first = rendered[RELEASES[0].namespace]!;
    postgres = await startChartDatabase(first);
    const { api: env } = apiEnvironment(first);
    for (const { namespace } of RELEASES) apis[namespace] = await startService({ ...pointedAt(postgres, env), SHUTDOWN_DELAY_SECONDS: '0' });

    const scrapeConfigs: unknown[] = [];
    const ruleFiles: string[] = [];
    for (const { namespace, pod } of RELEASES) {
      const objects = rendered[namespace]!;
      const rule = objects.find((object) => object.kind === 'PrometheusRule')!;
      const ruleFile = join(workDir, `rules-${namespace}.yaml`);
      await writeFile(ruleFile, stringifyYaml({ groups: rule.spec.groups }));
      ruleFiles.push(ruleFile);
      const podMonitor = objects.find((object) => object.kind === 'PodMonitor' && object.metadata.labels['app.kubernetes.io/component'] === 'api')!;
      const endpoint = podMonitor.spec.podMetricsEndpoints[0];
      scrapeIntervalSeconds = Number.parseInt(endpoint.interval, 10);
      const targetsFile = join(workDir, `targets-${namespace}.json`);
      await writeFile(targetsFile, JSON.stringify([{ targets: [new URL(apis[namespace]!.baseUrl).host], labels: { namespace, pod } }]));
      scrapeConfigs.push({
        // The operator's name for a PodMonitor's job; the relabelling renames it.
        job_name: `podMonitor/${namespace}/${podMonitor.metadata.name}/0`,
        metrics_path: endpoint.path,
        scrape_interval: endpoint.interval,
        scrape_timeout: endpoint.scrapeTimeout,
        file_sd_configs: [{ files: [targetsFile] }],
        relabel_configs: endpoint.relabelings.map((relabeling: { targetLabel: string; replacement: string }) => ({
          target_label: relabeling.targetLabel,
          replacement: relabeling.replacement,
        })),
      });
    }
    scrapeConfigs.push({
      job_name: 'other-app',
      scrape_interval: `${scrapeIntervalSeconds}s`,
      static_configs: [{ targets: [new URL(apis['wiki-a']!.baseUrl).host], labels: { namespace: 'wiki-a', pod: 'other-app-0' } }],
    });
    const configFile = join(workDir, 'prometheus.yml');
    // kube-prometheus-stack's defaults: rules evaluated every 30 s.
    await writeFile(configFile, stringifyYaml({ global: { evaluation_interval: '30s' }, rule_files: ruleFiles, scrape_configs: scrapeConfigs }));
    const port = await freePort();
    prometheusUrl = `http://127.0.0.1:${port}`;
    prometheus = startProcess(PROMETHEUS, [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${join(workDir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
    ]);
    await until('Prometheus to be ready', 60_000, async () => (await fetch(`${prometheusUrl}/-/ready`).catch(() => undefined))?.ok, {
      giveUpIf: () => (prometheus?.exit() === undefined ? undefined : `Prometheus exited:\n${prometheus.output()}`),
    });
  });

  afterAll(async () => {
    await prometheus?.stop('SIGKILL');
    await Promise.all(Object.values(apis).map((service) => service.stop('SIGKILL')));
    await postgres?.destroy();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  it("loads both releases' rules, and scrapes both API pods under job wiki-api, each in its namespace", async () => {
    const body = (await (await fetch(`${prometheusUrl}/api/v1/rules`)).json()) as { data: { groups: Array<{ name: string; file: string }> } };
    for (const { namespace } of RELEASES) {
      expect(body.data.groups.filter((group) => group.file.endsWith(`rules-${namespace}.yaml`)).map((group) => group.name)).toEqual(
        expect.arrayContaining(['wiki-api.recording', 'wiki-api.slo', 'wiki-api.alerts']),
      );
    }
    const up = await allScraped();
    expect(up.map((sample) => `${sample.metric.job} ${sample.metric.namespace}`).sort()).toEqual(['other-app wiki-a', 'wiki-api wiki-a', 'wiki-api wiki-b']);
  });

  it(
    "each release's dashboards show only its own traffic: the namespace variable offers both, the decoy job is never counted",
    { timeout: 360_000 },
    async () => {
      await allScraped();
      for (const { namespace } of RELEASES) {
        for (let i = 0; i < USERS[namespace]; i++) expect((await api(namespace).post('/users', { name: `${namespace} user ${i}` })).status).toBe(200);
        const user = (await api(namespace).post('/users', { name: `${namespace} author` })).body as { id: number };
        for (let i = 0; i < POSTS[namespace]; i++) expect((await api(namespace).post('/posts', { user_id: user.id, content: `post ${i}` })).status).toBe(200);
      }
      for (let i = 0; i < READS_OF_A; i++) expect((await api('wiki-a').get('/user/1')).status).toBe(200);
      // The 5xx ratio panel divides by the rate of requests, and has no value while it
      // is 0. rate() sees an increase only between two scrapes of a series, and the burst
      // above is over before its series are first scraped: one list request before a
      // scrape of its series and one after give each release a rate of requests.
      const listRequests = 'http_requests_total{job="wiki-api", method="GET", route="/users", status_code="200"}';
      for (const { namespace } of RELEASES) expect((await api(namespace).get('/users?limit=1')).status).toBe(200);
      await until('the list requests scraped', 60_000, async () => ((await query(listRequests)).length === RELEASES.length ? true : undefined));
      for (const { namespace } of RELEASES) expect((await api(namespace).get('/users?limit=1')).status).toBe(200);
      const interpolation = (namespace: string) => ({ scrapeIntervalSeconds, intervalSeconds: scrapeIntervalSeconds, variables: { namespace, pod: '.*' } });
      const panelQuery = async (file: string, title: string, legend: string | undefined, namespace: string) => {
        const panel = panelsOf(dashboardFiles().find((candidate) => candidate.name === file)!.dashboard).find((candidate) => candidate.title === title)!;
        const target = legend === undefined ? panel.targets[0]! : panel.targets.find((candidate) => candidate.legendFormat === legend)!;
        return query(interpolate(target.expr, interpolation(namespace)));
      };
      // rate() extrapolates to the end of its window from the samples in it: with the
      // counters' last samples long enough after the traffic (6 in the window, so that the
      // latest evaluation had 5 or more), that adds at most a third to the counts.
      await until('6 samples of every counter in the 5-minute window', 240_000, async () =>
        (await query('count_over_time(users_created_total{job="wiki-api"}[5m]) >= 6')).length === 2 ? true : undefined,
      );
      const created = async (namespace: string, legend: 'users' | 'posts') =>
        Number((await panelQuery('creation.json', 'Users and posts created per second', legend, namespace))[0]?.value[1] ?? NaN) * 300;

      // The creation panel: each release's own count (its author included), not the sum,
      // and not doubled by the decoy job that scrapes A's API too (that would be 14 or more).
      for (const { namespace } of RELEASES) {
        const users = await created(namespace, 'users');
        const posts = await created(namespace, 'posts');
        console.log(
          `${namespace}: creation panel, recorded rate x 300 s: users ${users.toFixed(2)} (created ${USERS[namespace] + 1}), posts ${posts.toFixed(2)} (created ${POSTS[namespace]})`,
        );
        expect(users).toBeGreaterThan((USERS[namespace] + 1) * 0.8);
        expect(users).toBeLessThan((USERS[namespace] + 1) * 1.35);
        // A release that created no posts counts exactly none.
        expect(posts).toBeGreaterThanOrEqual(POSTS[namespace] * 0.8);
        expect(posts).toBeLessThanOrEqual(POSTS[namespace] * 1.35);
      }
      // The requests panel: only A was read by id.
      const reads = async (namespace: string) =>
        (await panelQuery('api.json', 'Requests per second by route and status class', undefined, namespace)).filter(
          (sample) => sample.metric.route === '/user/:id' && sample.metric.status_class === '2xx',
        );
      expect(await reads('wiki-a')).toHaveLength(1);
      expect(await reads('wiki-b')).toEqual([]);

      // The namespace variables list both releases, whatever the decoy exposes.
      for (const { name, dashboard } of dashboardFiles().filter((file) => ['api.json', 'creation.json'].includes(file.name))) {
        const variable = dashboard.templating.list.find((candidate) => candidate.name === 'namespace')!;
        const { promql, label } = variableQuery(variable);
        expect((await query(promql)).map((sample) => sample.metric[label]).sort(), name).toEqual(['wiki-a', 'wiki-b']);
        // Every query of the two dashboards has data for each release, and none for a
        // namespace where no release runs: no selector reaches past its namespace.
        for (const panel of panelsOf(dashboard)) {
          for (const target of panel.targets) {
            for (const { namespace } of RELEASES)
              expect((await query(interpolate(target.expr, interpolation(namespace)))).length, `${name} / ${panel.title} in ${namespace}`).toBeGreaterThan(0);
            expect(await query(interpolate(target.expr, interpolation('wiki-none'))), `${name} / ${panel.title} in no release's namespace`).toEqual([]);
          }
        }
      }
    },
  );

  it("a burst of 503s shorter than one scrape interval pages release B's availability fast burn, and not A's", { timeout: 240_000 }, async () => {
    // B's 503 series, created at zero by the service, scraped before the burst: the
    // burst is then an increase that rate() sees. (Created by the first 503 instead,
    // a series would first be scraped at its final value, and rate() would see none.)
    await until("B's 503 series scraped at zero", 90_000, async () =>
      (await query('http_requests_total{job="wiki-api", namespace="wiki-b", route="/user/:id", method="GET", status_code="503"} == 0')).length === 1
        ? true
        : undefined,
    );
    const errorsBefore = await query('sum(http_requests_total{namespace="wiki-b", status_code=~"5.."})');
    expect(Number(errorsBefore[0]!.value[1])).toBe(0);

    await postgres.stop();
    const burstStarted = Date.now();
    let answered503 = 0;
    // alerting.minimumRequests (100) in the hour: 150 requests, 10 at a time.
    for (let batch = 0; batch < 15; batch++) {
      const statuses = await Promise.all(
        Array.from({ length: 10 }, () =>
          api('wiki-b')
            .get('/user/1')
            .then((response) => response.status),
        ),
      );
      answered503 += statuses.filter((status) => status === 503).length;
    }
    const burstSeconds = (Date.now() - burstStarted) / 1000;
    await postgres.start();
    console.log(`burst: ${answered503} answers 503 from release B in ${burstSeconds.toFixed(1)} s (scrape interval ${scrapeIntervalSeconds} s)`);
    expect(answered503).toBe(150);
    expect(burstSeconds).toBeLessThan(scrapeIntervalSeconds);

    const firing = await until("B's fast-burn alert firing", 150_000, async () => {
      const alerts = await query('ALERTS{alertname="WikiApiAvailabilityBudgetFastBurn", alertstate="firing"}');
      return alerts.length > 0 ? alerts : undefined;
    });
    expect(firing.map((alert) => alert.metric.namespace)).toEqual(['wiki-b']);
    expect(firing[0]!.metric).toMatchObject({ job: 'wiki-api', severity: 'page' });
  });
});
