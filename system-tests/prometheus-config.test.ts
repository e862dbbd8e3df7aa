import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { dashboardFiles, interpolate, panelsOf } from './support/dashboards.js';
import { CHART_DIR, configMapData, NAMESPACE, renderChart, REPO_ROOT, type K8sObject } from './support/helm.js';
import {
  ALERTMANAGER,
  AMTOOL,
  amtool,
  binaryVersion,
  layOutRuleTests,
  majorVersion,
  PROMETHEUS,
  prometheusMissing,
  PROMTOOL,
  promtool,
  renderedAlertmanagerConfig,
  renderedPrometheusYml,
  syntheticHistory,
  writeRenderedPrometheusConfig,
} from './support/prometheus.js';
import { startProcess, type StartedProcess } from '@wiki/test-support/process';
import { until } from '@wiki/test-support/wait';
import { skipLoudly } from './support/skip.js';

// The real promtool and amtool check what the chart renders for Prometheus and
// Alertmanager. The rule files are Helm templates, so they are checked and
// unit-tested as rendered.

interface RuleFile {
  groups: Array<{
    name: string;
    rules: Array<{ alert?: string; record?: string; expr: string; labels?: Record<string, string>; annotations?: Record<string, string> }>;
  }>;
}

const skip = skipLoudly(prometheusMissing(), 'the promtool tests are');

describe.skipIf(skip)('promtool on the rendered Prometheus configuration', () => {
  let dir: string;
  let objects: K8sObject[];
  /** Rendered with ci/cloudnative-pg-values.yaml: rules/postgresql.yaml on CloudNativePG's metrics, and rules/cloudnative-pg.yaml. */
  let cloudnativePgObjects: K8sObject[];
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'wiki-promtool-'));
    objects = await renderChart();
    cloudnativePgObjects = await renderChart([join(CHART_DIR, 'ci', 'cloudnative-pg-values.yaml')]);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('the binaries under test are the major version the chart deploys', () => {
    const prometheus = binaryVersion(PROMETHEUS);
    const promtoolVersion = binaryVersion(PROMTOOL);
    const alertmanager = binaryVersion(ALERTMANAGER);
    const amtoolVersion = binaryVersion(AMTOOL);
    const imageOf = (component: string) => {
      const deployment = objects.find((object) => object.kind === 'Deployment' && object.metadata.name.endsWith(`-${component}`))!;
      const image: string = deployment.spec.template.spec.containers[0].image;
      return { image, version: image.slice(image.lastIndexOf(':') + 1) };
    };
    const chartPrometheus = imageOf('prometheus');
    const chartAlertmanager = imageOf('alertmanager');
    console.log(
      `tested: prometheus ${prometheus}, promtool ${promtoolVersion}, alertmanager ${alertmanager}, amtool ${amtoolVersion}; ` +
        `the chart deploys ${chartPrometheus.image} and ${chartAlertmanager.image}`,
    );
    expect(majorVersion(prometheus), `the chart deploys ${chartPrometheus.image} but the tests run Prometheus ${prometheus}`).toBe(
      majorVersion(chartPrometheus.version),
    );
    expect(majorVersion(promtoolVersion)).toBe(majorVersion(chartPrometheus.version));
    // Alertmanager is still 0.x: its minor version is the one that may break things.
    const minor = (version: string) => /^v?(\d+\.\d+)\./.exec(version)![1];
    expect(minor(alertmanager), `the chart deploys ${chartAlertmanager.image} but the tests run Alertmanager ${alertmanager}`).toBe(
      minor(chartAlertmanager.version),
    );
    expect(minor(amtoolVersion)).toBe(minor(chartAlertmanager.version));
  });

  it('`promtool check config` accepts the rendered prometheus.yml, unchanged (Kubernetes discovery included), with its rule files', async () => {
    expect(renderedPrometheusYml(objects)).toContain('kubernetes_sd_configs');
    const configFile = await writeRenderedPrometheusConfig(objects, dir);
    const result = await promtool(['check', 'config', configFile]);
    expect(result.output).toContain('SUCCESS');
    for (const file of ['recording', 'slo', 'alerts', 'postgresql']) expect(result.output).toContain(`rules/${file}.yaml`);
    expect(result.ok, result.output).toBe(true);
  });

  it('`promtool check config` also accepts it with every Prometheus option set (ci/prometheus-options-values.yaml)', async () => {
    const withOptions = await renderChart([join(CHART_DIR, 'ci', 'prometheus-options-values.yaml')]);
    const optionsDir = join(dir, 'options');
    const rendered = renderedPrometheusYml(withOptions);
    expect(rendered).toContain('external_labels');
    expect(rendered).toContain('job_name: node');
    // Alerts go to the chart's Alertmanager and to the external one.
    const alerting = (parseYaml(rendered) as { alerting: { alertmanagers: Array<{ static_configs: Array<{ targets: string[] }> }> } }).alerting;
    expect(alerting.alertmanagers.flatMap((entry) => entry.static_configs.flatMap((config) => config.targets))).toEqual([
      'wiki-wiki-chart-alertmanager:9093',
      'alertmanager-operated.monitoring.svc:9093',
    ]);
    const result = await promtool(['check', 'config', await writeRenderedPrometheusConfig(withOptions, optionsDir)]);
    expect(result.ok, result.output).toBe(true);
  });

  it('`promtool check rules` accepts every file of wiki-chart/rules/, as rendered', async () => {
    const rulesDir = join(dir, 'rules');
    await writeRenderedPrometheusConfig(objects, dir);
    const files = await readdir(rulesDir);
    expect(files.sort()).toEqual(['alerts.yaml', 'postgresql.yaml', 'recording.yaml', 'slo.yaml']);
    const result = await promtool(['check', 'rules', ...files.map((file) => join(rulesDir, file))]);
    expect(result.ok, result.output).toBe(true);
    expect(result.output).toMatch(/SUCCESS: \d+ rules found/);
  });

  it('`promtool test rules` passes the unit tests of wiki-chart/rules-tests/, on the rules as rendered', { timeout: 120_000 }, async () => {
    const testFiles = await layOutRuleTests(objects, join(dir, 'unit'));
    expect(testFiles.length).toBeGreaterThanOrEqual(5);
    const result = await promtool(['test', 'rules', ...testFiles]);
    expect(result.ok, result.output).toBe(true);
    expect(result.output).toContain('SUCCESS');
  });

  it(
    '`promtool check rules` and `promtool test rules` (wiki-chart/rules-tests/cloudnative-pg/) on the rules as rendered with ci/cloudnative-pg-values.yaml',
    { timeout: 120_000 },
    async () => {
      const testFiles = await layOutRuleTests(cloudnativePgObjects, join(dir, 'cloudnative-pg'), 'cloudnative-pg');
      const files = (await readdir(join(dir, 'cloudnative-pg', 'rules'))).sort();
      // No backups of the built-in PostgreSQL to watch: its backup alerts are not rendered.
      expect(files).toEqual(['alerts.yaml', 'cloudnative-pg.yaml', 'postgresql.yaml', 'recording.yaml', 'slo.yaml']);
      const checked = await promtool(['check', 'rules', ...files.map((file) => join(dir, 'cloudnative-pg', 'rules', file))]);
      expect(checked.ok, checked.output).toBe(true);
      expect(testFiles.map((file) => file.slice(file.lastIndexOf('/') + 1)).sort()).toEqual(['cloudnative-pg_test.yaml', 'postgresql_test.yaml']);
      const result = await promtool(['test', 'rules', ...testFiles]);
      expect(result.ok, result.output).toBe(true);
    },
  );

  /** The alerts of the given rule files as rendered, and those the unit tests expect to fire and to stay silent. */
  async function alertCoverage(rendered: K8sObject[], files: string[], testsFolder = '') {
    const layout = join(dir, `coverage-${testsFolder || 'default'}`);
    const testFiles = await layOutRuleTests(rendered, layout, testsFolder);
    const groups = (await Promise.all(files.map(async (file) => parseYaml(await readFile(join(layout, 'rules', file), 'utf8')) as RuleFile))).flatMap(
      (rules) => rules.groups,
    );
    const alerts = groups.flatMap((group) => group.rules.flatMap((rule) => (rule.alert === undefined ? [] : [rule.alert])));
    const fires = new Set<string>();
    const silent = new Set<string>();
    for (const file of testFiles) {
      const unit = parseYaml(await readFile(file, 'utf8')) as { tests: Array<{ alert_rule_test?: Array<{ alertname: string; exp_alerts: unknown[] }> }> };
      for (const check of unit.tests.flatMap((test) => test.alert_rule_test ?? [])) (check.exp_alerts.length > 0 ? fires : silent).add(check.alertname);
    }
    return {
      alerts,
      neverFiring: alerts.filter((alert) => !fires.has(alert)),
      // All but the Watchdog, which has no silent side: it fires whenever rules are evaluated.
      neverSilent: alerts.filter((alert) => alert !== 'Watchdog' && !silent.has(alert)),
    };
  }

  it('every alert has a unit test that expects it to fire, and one that expects it silent', async () => {
    const coverage = await alertCoverage(objects, ['alerts.yaml', 'slo.yaml', 'postgresql.yaml']);
    expect(coverage.alerts.length).toBeGreaterThanOrEqual(20);
    expect(coverage.neverFiring, 'alerts never expected to fire').toEqual([]);
    expect(coverage.neverSilent, 'alerts never expected to stay silent').toEqual([]);
  });

  it("so does every PostgreSQL and CloudNativePG alert as rendered in the cloudnative-pg mode, on the operator's metrics", async () => {
    const coverage = await alertCoverage(cloudnativePgObjects, ['postgresql.yaml', 'cloudnative-pg.yaml'], 'cloudnative-pg');
    expect(coverage.alerts.length).toBe(12);
    expect(coverage.neverFiring, 'alerts never expected to fire').toEqual([]);
    expect(coverage.neverSilent, 'alerts never expected to stay silent').toEqual([]);
  });

  it('the objectives, the latency threshold and the minimum of requests come from values, and the result still passes `promtool check rules`', async () => {
    const tighter = await renderChart(
      [],
      ['alerting.availability.objective=0.999', 'alerting.latency.objective=0.95', 'alerting.latency.thresholdSeconds=0.5', 'alerting.minimumRequests=500'],
    );
    const tighterDir = join(dir, 'tighter');
    await writeRenderedPrometheusConfig(tighter, tighterDir);
    const slo = await readFile(join(tighterDir, 'rules', 'slo.yaml'), 'utf8');
    expect(slo).toContain('job:slo_availability_errors:ratio_rate1h > (14.4 * (1 - 0.999))');
    expect(slo).toContain('job:slo_latency_errors:ratio_rate3d > (1 * (1 - 0.95))');
    expect(slo).toContain('le="0.5"');
    for (const [window, seconds] of [
      ['1h', 3600],
      ['6h', 21600],
      ['3d', 259200],
    ])
      expect(slo).toContain(`job:slo_requests:rate${window} * ${seconds} >= 500\n`);
    const fastBurn = (parseYaml(slo) as RuleFile).groups[0]!.rules.find((rule) => rule.alert === 'WikiApiAvailabilityBudgetFastBurn')!;
    expect(fastBurn.annotations!.description).toContain('the objective allows 0.1% over 30 days');
    const result = await promtool(['check', 'rules', join(tighterDir, 'rules', 'slo.yaml')]);
    expect(result.ok, result.output).toBe(true);
  });

  it('with the dumps copied to object storage (ci/production-values.yaml), PostgresqlBackupMissing counts from the last copy, not the last dump', async () => {
    const copyDir = join(dir, 'copied-backups');
    await writeRenderedPrometheusConfig(await renderChart([join(CHART_DIR, 'ci', 'production-values.yaml')]), copyDir);
    const series = (name: string, values: string) =>
      `      - series: '${name}{job="postgresql", namespace="${NAMESPACE}", pod="wiki-postgresql-0", instance="10.0.0.9:9187", server="127.0.0.1:5432"}'\n        values: '${values}'`;
    const testFile = join(copyDir, 'copies_test.yaml');
    await writeFile(
      testFile,
      `rule_files: [rules/postgresql.yaml]
evaluation_interval: 1m
tests:
  # Every night's dump is made (the last one at minute 2940, hour 49), but the last copy was at hour 1.
  - interval: 1m
    input_series:
${series('wiki_backup_expected_since_timestamp_seconds', '0x3000')}
${series('wiki_backup_last_success_timestamp_seconds', '0x59 3600x1380 86400x1500')}
${series('wiki_backup_last_copy_timestamp_seconds', '0x59 3600x2940')}
    alert_rule_test:
      - eval_time: 49h10m
        alertname: PostgresqlBackupMissing
        exp_alerts: []
      - eval_time: 49h11m
        alertname: PostgresqlBackupMissing
        exp_alerts:
          - exp_labels: {severity: ticket, job: postgresql, namespace: ${NAMESPACE}, pod: wiki-postgresql-0, instance: "10.0.0.9:9187", server: "127.0.0.1:5432"}
            exp_annotations:
              summary: "No good backup of PostgreSQL copied off the cluster for 2d 0h 11m 0s"
              description: "The last good backup of PostgreSQL in ${NAMESPACE} copied to the object store (s3://wiki-backups/nightly-dumps) was made 2d 0h 11m 0s ago, more than 48h (twice the schedule \\"30 2 * * *\\", or alerting.postgresql.backupMaxAge). Backups fail or do not run. First: \`kubectl get -n ${NAMESPACE} jobs -l app.kubernetes.io/component=backup\` and the logs of the last one."
              runbook_url: "https://example.invalid/wiki/docs/PHASE11_POSTGRESQL_OPERATIONS.md#postgresqlbackupmissing"
  # Copied every night as well: silent.
  - interval: 1m
    input_series:
${series('wiki_backup_expected_since_timestamp_seconds', '0x3000')}
${series('wiki_backup_last_copy_timestamp_seconds', '0x59 3600x1380 86400x1500')}
    alert_rule_test:
      - eval_time: 49h11m
        alertname: PostgresqlBackupMissing
        exp_alerts: []
`,
    );
    const result = await promtool(['test', 'rules', testFile]);
    expect(result.ok, result.output).toBe(true);
  });

  it('PrometheusScrapesSlow fires at 80% of the scrape timeout, which a scrape interval under 10 s shortens', async () => {
    const thresholdAt = async (interval: string) => {
      const rules = parseYaml(configMapData(await renderChart([], [`prometheus.scrapeInterval=${interval}`]), 'prometheus-rules')['alerts.yaml']!) as RuleFile;
      const slow = rules.groups.flatMap((group) => group.rules).find((rule) => rule.alert === 'PrometheusScrapesSlow')!;
      return { expr: slow.expr, summary: slow.annotations!.summary! };
    };
    expect(await thresholdAt('15s')).toMatchObject({ expr: 'scrape_duration_seconds > 8', summary: expect.stringContaining('near the 10 s timeout') });
    expect(await thresholdAt('1m30s')).toMatchObject({ expr: 'scrape_duration_seconds > 8' });
    expect(await thresholdAt('5s')).toMatchObject({ expr: 'scrape_duration_seconds > 4', summary: expect.stringContaining('near the 5 s timeout') });
    expect(await thresholdAt('2s500ms')).toMatchObject({ expr: 'scrape_duration_seconds > 2' });

    // Both sides, with promtool, at a 5 s interval: 4.01 s for 10 minutes fires, 3.99 s does not.
    const fiveSecondsDir = join(dir, 'five-seconds');
    await writeRenderedPrometheusConfig(await renderChart([], ['prometheus.scrapeInterval=5s']), fiveSecondsDir);
    const testFile = join(fiveSecondsDir, 'scrapes-slow_test.yaml');
    await writeFile(
      testFile,
      `rule_files: [rules/alerts.yaml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'scrape_duration_seconds{job="wiki-api", instance="10.0.0.1:8000"}'
        values: '0.01 4.01x20'
      - series: 'scrape_duration_seconds{job="wiki-api", instance="10.0.0.2:8000"}'
        values: '0.01 3.99x20'
    alert_rule_test:
      - eval_time: 11m
        alertname: PrometheusScrapesSlow
        exp_alerts:
          - exp_labels: {severity: ticket, job: wiki-api, instance: "10.0.0.1:8000"}
            exp_annotations:
              summary: "Scrapes of 10.0.0.1:8000 take 4.01s, near the 5 s timeout"
              description: "Scraping 10.0.0.1:8000 (job wiki-api) has taken over 4 s for 10m; at 5 s scrapes fail. First: is the target overloaded (CPU at its limit?), or does it expose far more series than before (\`scrape_samples_scraped\`)?"
              runbook_url: "https://example.invalid/wiki/docs/PHASE10_ALERTING.md#prometheusscrapesslow"
`,
    );
    const result = await promtool(['test', 'rules', testFile]);
    expect(result.ok, result.output).toBe(true);
  });

  it(
    "the PrometheusRule (alerting.prometheusRule) holds the chart's rule groups as rendered, but those about its own Prometheus; promtool checks them, and the unit tests pass on them",
    { timeout: 120_000 },
    async () => {
      const existing = await renderChart([join(CHART_DIR, 'ci', 'existing-monitoring-values.yaml')]);
      const rules = existing.filter((object) => object.kind === 'PrometheusRule');
      expect(rules).toHaveLength(1);
      const groups = rules[0]!.spec.groups as RuleFile['groups'];
      // The chart's own Prometheus's files, from the same release with the defaults.
      const files = Object.fromEntries(Object.entries(configMapData(objects, 'prometheus-rules')).map(([file, text]) => [file, parseYaml(text) as RuleFile]));
      const ownStack = ['watchdog', 'prometheus.alerts', 'alertmanager.alerts'];
      const expected = Object.values(files)
        .flatMap((file) => file.groups)
        .filter((group) => !ownStack.includes(group.name));
      expect(groups.map((group) => group.name).sort()).toEqual(expected.map((group) => group.name).sort());
      expect(groups.map((group) => group.name)).toEqual(expect.arrayContaining(['wiki-api.recording', 'wiki-api.slo', 'wiki-api.alerts', 'postgresql.alerts']));
      for (const group of groups) expect(group, group.name).toEqual(expected.find((candidate) => candidate.name === group.name));

      // The operator's groups, laid out in the files they came from, for promtool.
      const ruleDir = join(dir, 'prometheus-rule');
      const testFiles = await layOutRuleTests(objects, ruleDir);
      const complete: string[] = [];
      for (const [file, rendered] of Object.entries(files)) {
        const fromOperator = groups.filter((group) => rendered.groups.some((candidate) => candidate.name === group.name));
        await writeFile(join(ruleDir, 'rules', file), stringifyYaml({ groups: fromOperator }));
        if (fromOperator.length === rendered.groups.length) complete.push(file);
      }
      expect(complete.sort()).toEqual(['postgresql.yaml', 'recording.yaml', 'slo.yaml']);
      const checked = await promtool(['check', 'rules', ...Object.keys(files).map((file) => join(ruleDir, 'rules', file))]);
      expect(checked.ok, checked.output).toBe(true);
      // Every unit test whose rule files the PrometheusRule holds whole (alerts.yaml's
      // tests include the own-stack groups).
      const runnable = testFiles.filter((file) => !file.endsWith('alerts_test.yaml'));
      expect(runnable).toHaveLength(4);
      const result = await promtool(['test', 'rules', ...runnable]);
      expect(result.ok, result.output).toBe(true);
    },
  );

  it("the API dashboard's budget-left panel, run by promtool on the rendered rules: an hour with 0.25% of requests failing and 0.5% slow has spent half of each budget", async () => {
    const panel = panelsOf(dashboardFiles().find((file) => file.name === 'api.json')!.dashboard).find(
      (candidate) => candidate.title === 'Error budget left over 30 days',
    )!;
    const unitDir = join(dir, 'budget');
    await writeRenderedPrometheusConfig(objects, unitDir);
    const series = (name: string, labels: string, values: string) => ({
      series: `${name}{job="wiki-api", namespace="${NAMESPACE}", pod="api-a", method="GET", route="/user/:id"${labels}}`,
      values,
    });
    const test = {
      rule_files: ['rules/slo.yaml'],
      evaluation_interval: '1m',
      tests: [
        {
          interval: '1m',
          // 1000 requests a minute: 2.5 answered 503, 5 slower than 0.25 s.
          input_series: [
            series('http_requests_total', ', status_code="200"', '0+997.5x60'),
            series('http_requests_total', ', status_code="503"', '0+2.5x60'),
            series('http_request_duration_seconds_count', ', status_code="200"', '0+1000x60'),
            series('http_request_duration_seconds_bucket', ', status_code="200", le="0.25"', '0+995x60'),
          ],
          promql_expr_test: panel.targets.map((target) => ({
            expr: `abs((${interpolate(target.expr, { scrapeIntervalSeconds: 15, intervalSeconds: 15, variables: { namespace: NAMESPACE } })}) - 0.5) < bool 1e-9`,
            eval_time: '60m',
            exp_samples: [{ labels: `{job="wiki-api", namespace="${NAMESPACE}"}`, value: 1 }],
          })),
        },
      ],
    };
    expect(test.tests[0]!.promql_expr_test).toHaveLength(2);
    const testFile = join(unitDir, 'budget_test.yaml');
    await writeFile(testFile, stringifyYaml(test));
    const result = await promtool(['test', 'rules', testFile]);
    expect(result.ok, result.output).toBe(true);
  });

  it('the unit tests can fail: a `for:` one minute shorter than the default breaks them', { timeout: 120_000 }, async () => {
    const shorter = await renderChart([], ['alerting.for.WikiApiPodDown=4m']);
    const testFiles = await layOutRuleTests(shorter, join(dir, 'shorter'));
    const result = await promtool(['test', 'rules', ...testFiles.filter((file) => file.endsWith('alerts_test.yaml'))]);
    expect(result.ok).toBe(false);
    expect(result.output).toContain('WikiApiPodDown');
  });

  it('every alert has a severity of the documented scheme, a summary, a description and a runbook section in the document its URL names (both database modes that render rules of their own)', async () => {
    const rulesDir = join(dir, 'rules');
    await writeRenderedPrometheusConfig(objects, dir);
    const cloudnativePgRulesDir = join(dir, 'cloudnative-pg-runbooks', 'rules');
    await writeRenderedPrometheusConfig(cloudnativePgObjects, join(dir, 'cloudnative-pg-runbooks'));
    // GitHub's anchors: a heading "### WikiApiPodDown" is #wikiapipoddown.
    const anchorsOf = async (document: string) => {
      const doc = await readFile(join(REPO_ROOT, 'docs', document), 'utf8');
      return new Set(
        [...doc.matchAll(/^#{2,4} (.+)$/gm)].map((match) =>
          match[1]!
            .trim()
            .toLowerCase()
            .replace(/[^a-z0-9 -]/g, '')
            .replace(/ /g, '-'),
        ),
      );
    };
    const documents: Array<[string, string]> = [
      [join(rulesDir, 'alerts.yaml'), 'PHASE10_ALERTING.md'],
      [join(rulesDir, 'slo.yaml'), 'PHASE10_ALERTING.md'],
      [join(rulesDir, 'postgresql.yaml'), 'PHASE11_POSTGRESQL_OPERATIONS.md'],
      [join(cloudnativePgRulesDir, 'postgresql.yaml'), 'PHASE11_POSTGRESQL_OPERATIONS.md'],
      [join(cloudnativePgRulesDir, 'cloudnative-pg.yaml'), 'PHASE12_HIGH_AVAILABILITY.md'],
    ];
    let checked = 0;
    for (const [file, document] of documents) {
      const anchors = await anchorsOf(document);
      const rules = parseYaml(await readFile(file, 'utf8')) as RuleFile;
      for (const rule of rules.groups.flatMap((group) => group.rules).filter((candidate) => candidate.alert !== undefined)) {
        checked++;
        // The Watchdog alone has severity none: it is for a dead man's switch, never for a person.
        expect(rule.alert === 'Watchdog' ? ['none'] : ['page', 'ticket'], rule.alert).toContain(rule.labels?.severity);
        expect(rule.annotations?.summary, rule.alert).toBeTruthy();
        expect(rule.annotations?.description?.length ?? 0, rule.alert).toBeGreaterThan(80);
        const url = new URL(rule.annotations!.runbook_url!);
        expect(url.pathname.endsWith(`/docs/${document}`), `${rule.alert}: ${url.href}`).toBe(true);
        expect(url.hash, rule.alert).toBe(`#${rule.alert!.toLowerCase()}`);
        expect(anchors.has(rule.alert!.toLowerCase()), `docs/${document} has no section "${rule.alert}"`).toBe(true);
      }
    }
    expect(checked).toBeGreaterThanOrEqual(32);
  });

  it('`amtool check-config` accepts the rendered alertmanager.yml: the defaults and the documented receivers', async () => {
    for (const files of [[], [join(CHART_DIR, 'ci', 'alertmanager-receivers-values.yaml')], [join(CHART_DIR, 'ci', 'stack-alerting-values.yaml')]]) {
      const configFile = join(dir, `alertmanager-${files.length === 0 ? 'default' : files[0]!.split('/').at(-1)}.yml`);
      await writeFile(configFile, renderedAlertmanagerConfig(await renderChart(files)));
      const result = await amtool(['check-config', configFile]);
      expect(result.ok, result.output).toBe(true);
      expect(result.output).toContain('SUCCESS');
    }
  });

  it('the documented routing sends pages to on-call, monitoring problems to the platform team, the rest to the wiki team (amtool config routes test)', async () => {
    const configFile = join(dir, 'alertmanager-routing.yml');
    await writeFile(configFile, renderedAlertmanagerConfig(await renderChart([join(CHART_DIR, 'ci', 'alertmanager-receivers-values.yaml')])));
    const route = async (...labels: string[]) =>
      (await amtool(['config', 'routes', 'test', `--config.file=${configFile}`, ...labels])).output.split('\n')[0]!.trim();
    expect(await route('alertname=WikiApiNoPodUp', 'severity=page')).toBe('on-call');
    expect(await route('alertname=WikiApiPodDown', 'severity=ticket')).toBe('team-email');
    expect(await route('alertname=PrometheusScrapesFailing', 'severity=ticket')).toBe('platform-email');
    // The defaults route everything to "null".
    const defaults = join(dir, 'alertmanager-null.yml');
    await writeFile(defaults, renderedAlertmanagerConfig(objects));
    expect((await amtool(['config', 'routes', 'test', `--config.file=${defaults}`, 'severity=page'])).output.split('\n')[0]!.trim()).toBe('null');
  });

  it("the Watchdog goes first to the dead man's switch, whatever routes and receivers alertmanager.config has", async () => {
    const switchValues = join(CHART_DIR, 'ci', 'dead-mans-switch-values.yaml');
    for (const files of [
      [],
      [join(CHART_DIR, 'ci', 'alertmanager-receivers-values.yaml')],
      [join(CHART_DIR, 'ci', 'stack-alerting-values.yaml')],
      [switchValues],
    ]) {
      const configFile = join(dir, 'alertmanager-watchdog.yml');
      const config = renderedAlertmanagerConfig(await renderChart(files));
      await writeFile(configFile, config);
      const checked = await amtool(['check-config', configFile]);
      expect(checked.ok, `${files.join()}: ${checked.output}`).toBe(true);
      const route = async (...labels: string[]) =>
        (await amtool(['config', 'routes', 'test', `--config.file=${configFile}`, ...labels])).output.split('\n')[0]!.trim();
      // Even with severity=page, which the documented routing sends to on-call.
      expect(await route('alertname=Watchdog', 'severity=page'), files.join()).toBe('dead-mans-switch');
      expect(await route('alertname=WikiApiNoPodUp', 'severity=page'), files.join()).not.toBe('dead-mans-switch');
      const parsed = parseYaml(config) as { receivers: Array<Record<string, unknown>>; route: { routes: Array<Record<string, unknown>> } };
      expect(parsed.route.routes[0]).toMatchObject({ receiver: 'dead-mans-switch', repeat_interval: '1m' });
      const receiver = parsed.receivers.find((candidate) => candidate.name === 'dead-mans-switch')!;
      // A receiver that sends nothing by default; the documented values give it a webhook.
      const webhook = { webhook_configs: [{ url: 'https://hc-ping.com/00000000-0000-0000-0000-000000000000', send_resolved: false }] };
      expect(receiver).toEqual({ name: 'dead-mans-switch', ...(files[0] === switchValues ? webhook : {}) });
    }
  });

  it('amtool catches a broken configuration (the check can fail)', async () => {
    const configFile = join(dir, 'alertmanager-broken.yml');
    await writeFile(configFile, 'route:\n  receiver: nobody\nreceivers:\n  - name: somebody\n');
    const result = await amtool(['check-config', configFile]);
    expect(result.ok).toBe(false);
    expect(result.output).toContain('undefined receiver "nobody"');
  });

  it('promtool catches a broken configuration (the check can fail)', async () => {
    const broken = await mkdtemp(join(tmpdir(), 'wiki-promtool-broken-'));
    try {
      const configFile = await writeRenderedPrometheusConfig(objects, broken, 'global:\n  scrape_interval: often\n');
      const result = await promtool(['check', 'config', configFile]);
      expect(result.ok).toBe(false);
    } finally {
      await rm(broken, { recursive: true, force: true });
    }
  });
});

// The PostgreSQL dashboard in the cloudnative-pg mode: no operator runs here, so its
// instances' metrics are written as CloudNativePG 1.30 names and labels them (its
// default queries, config/manager/default-monitoring.yaml: cnpg_<query>_<column>, the
// LABEL columns as labels; its collector: cnpg_collector_*; the Barman Cloud plugin's
// barman_cloud_cloudnative_pg_io_*), for a primary and a standby, with the labels the
// chart's scrape job adds. Two hours of them go into a TSDB block (promtool), the real
// Prometheus serves it, and every panel's query, as Grafana would send it, must
// return a number.
describe.skipIf(skip)("the PostgreSQL dashboard on CloudNativePG's metrics", () => {
  const CLUSTER = 'wiki-wiki-chart-postgresql';
  const instanceExposition = (pod: string, inRecovery: 0 | 1) => {
    const labels = (extra = '') => `{job="postgresql",namespace="${NAMESPACE}",pod="${pod}"${extra}}`;
    const backend = (state: string) => `,datname="wiki",usename="wiki",application_name="wiki-service",state="${state}"`;
    return [
      `up${labels()} 1`,
      `cnpg_collector_up${labels(`,cluster="${CLUSTER}"`)} 1`,
      `cnpg_pg_replication_in_recovery${labels()} ${inRecovery}`,
      `cnpg_backends_total${labels(backend('active'))} 3`,
      `cnpg_backends_total${labels(backend('idle'))} 9`,
      `cnpg_backends_max_tx_duration_seconds${labels(backend('active'))} 0.2`,
      `cnpg_backends_waiting_total${labels()} 0`,
      `cnpg_pg_settings_setting${labels(',name="max_connections"')} 100`,
      ...['wiki', 'postgres'].flatMap((datname) => [
        `cnpg_pg_database_size_bytes${labels(`,datname="${datname}"`)} 52000000`,
        `cnpg_pg_stat_database_xact_commit${labels(`,datname="${datname}"`)} 120000`,
        `cnpg_pg_stat_database_xact_rollback${labels(`,datname="${datname}"`)} 12`,
        `cnpg_pg_stat_database_blks_hit${labels(`,datname="${datname}"`)} 990000`,
        `cnpg_pg_stat_database_blks_read${labels(`,datname="${datname}"`)} 1000`,
        `cnpg_pg_stat_database_deadlocks${labels(`,datname="${datname}"`)} 0`,
      ]),
      `cnpg_pg_stat_bgwriter_checkpoints_timed${labels()} 40`,
      `cnpg_pg_stat_bgwriter_checkpoints_req${labels()} 2`,
      `cnpg_pg_stat_bgwriter_buffers_checkpoint${labels()} 5000`,
      `cnpg_pg_stat_bgwriter_buffers_clean${labels()} 300`,
      `cnpg_collector_pg_wal${labels(',value="size"')} 201326592`,
      `barman_cloud_cloudnative_pg_io_last_available_backup_timestamp${labels()} 1767225600`,
    ];
  };
  // The recording rule's series (rules/postgresql.yaml), which a block cannot evaluate.
  const recorded = `postgresql:volume_size_bytes{job="postgresql",namespace="${NAMESPACE}"} 21474836480`;

  let dir: string;
  let prometheus: StartedProcess | undefined;
  let baseUrl: string;
  let end: number;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'wiki-cnpg-dashboard-'));
    const exposition = [...instanceExposition(`${CLUSTER}-1`, 0), ...instanceExposition(`${CLUSTER}-2`, 1), recorded].join('\n');
    const history = syntheticHistory(exposition, 2, 15);
    end = Number(/ (\d+)\n# EOF\n$/.exec(history.text)![1]);
    await writeFile(join(dir, 'history.om'), history.text);
    const blocks = await promtool(['tsdb', 'create-blocks-from', 'openmetrics', join(dir, 'history.om'), join(dir, 'data')]);
    if (!blocks.ok) throw new Error(`promtool tsdb create-blocks-from failed:\n${blocks.output}`);
    await writeFile(join(dir, 'prometheus.yml'), 'global: {}\n');
    const port = 19_000 + Math.floor(Math.random() * 500);
    baseUrl = `http://127.0.0.1:${port}`;
    prometheus = startProcess(PROMETHEUS, [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      // The block is in the past: keep it.
      '--storage.tsdb.retention.time=100y',
    ]);
    await until('Prometheus to be ready', 30_000, async () => (await fetch(`${baseUrl}/-/ready`).catch(() => undefined))?.ok, {
      intervalMs: 100,
      giveUpIf: () => (prometheus?.exit() === undefined ? undefined : `Prometheus exited:\n${prometheus.output()}`),
    });
  }, 60_000);
  afterAll(async () => {
    await prometheus?.stop('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });

  it('every panel query returns a number', async () => {
    const dashboard = dashboardFiles().find((file) => file.name === 'postgresql.json')!.dashboard;
    const empty: string[] = [];
    let queried = 0;
    for (const panel of panelsOf(dashboard)) {
      for (const target of panel.targets) {
        const promql = interpolate(target.expr, { scrapeIntervalSeconds: 15, intervalSeconds: 15, variables: { namespace: NAMESPACE } });
        const body = (await (await fetch(`${baseUrl}/api/v1/query?time=${end}&query=${encodeURIComponent(promql)}`)).json()) as {
          status: string;
          data: { result: Array<{ value: [number, string] }> };
          error?: string;
        };
        expect(body.status, `${panel.title}: ${body.error}`).toBe('success');
        queried++;
        if (!body.data.result.some((sample) => Number.isFinite(Number(sample.value[1])))) empty.push(`${panel.title} / ${target.refId}: ${promql}`);
      }
    }
    expect(queried).toBeGreaterThanOrEqual(18);
    expect(empty).toEqual([]);
  });

  it("counts the primary's figures once, not once per instance", async () => {
    const dashboard = dashboardFiles().find((file) => file.name === 'postgresql.json')!.dashboard;
    const target = panelsOf(dashboard)
      .find((panel) => panel.title === 'Database size against the volume')!
      .targets.find((candidate) => candidate.expr.includes('by (datname)'))!;
    const promql = interpolate(target.expr, { scrapeIntervalSeconds: 15, intervalSeconds: 15, variables: { namespace: NAMESPACE } });
    const body = (await (await fetch(`${baseUrl}/api/v1/query?time=${end}&query=${encodeURIComponent(promql)}`)).json()) as {
      data: { result: Array<{ metric: Record<string, string>; value: [number, string] }> };
    };
    // Two databases of about 52 MB each (the history wanders by 1% a step), on both instances.
    expect(body.data.result.map((sample) => sample.metric.datname).sort()).toEqual(['postgres', 'wiki']);
    for (const sample of body.data.result) expect(Number(sample.value[1])).toBeLessThan(80_000_000);
  });
});
