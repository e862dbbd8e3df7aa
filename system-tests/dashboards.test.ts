import { readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tryCommand } from '@wiki/test-support/run-command';
import { describe, expect, it } from 'vitest';
import { CHART_DIR } from './support/helm.js';
import { dashboardFiles, panelsOf } from './support/dashboards.js';

// The dashboards in wiki-chart/dashboards/ are checked against Grafana's own types
// (@grafana/schema, the dashboard JSON model Grafana maintains) and against the rules
// of this chart. Their queries are run against a live Prometheus by the stack test.

const HERE = dirname(fileURLToPath(import.meta.url));
// TypeScript's compiler, wherever npm installed it.
const TSC = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const CHECK_DIR = join(HERE, '.cache', 'dashboard-types');

// The dashboard files, as object literals typed with @grafana/schema's Dashboard, so
// that tsc checks every field name (excess properties) and every enum value.
// (An `import` of the JSON would widen "absolute" to string, and no string satisfies
// an enum.) Targets are Grafana's DataQuery plus the Prometheus query's fields: the
// Prometheus data source's own type is not part of @grafana/schema.
const TYPES = `import type { Dashboard, DataQuery, Panel } from '@grafana/schema';
// JSON has no enums: each string enum becomes the union of its values.
type AsJson<T> = T extends string ? \`\${T}\` : T extends readonly (infer U)[] ? AsJson<U>[] : T extends object ? { [K in keyof T]: AsJson<T[K]> } : T;
interface PrometheusQuery extends DataQuery { expr: string; legendFormat?: string; range?: boolean; instant?: boolean }
type WikiPanel = Omit<Panel, 'targets'> & { targets: PrometheusQuery[] };
type WikiDashboard = Omit<Dashboard, 'panels'> & { panels: WikiPanel[] };
`;

async function typecheck(name: string, dashboards: Record<string, string>): Promise<{ ok: boolean; output: string }> {
  const dir = join(CHECK_DIR, name);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const body = Object.entries(dashboards).map(([id, json], i) => `export const dashboard${i}: AsJson<WikiDashboard> = ${json}; // ${id}\n`);
  await writeFile(join(dir, 'check.ts'), TYPES + body.join(''));
  await writeFile(
    join(dir, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, skipLibCheck: true, types: [] },
      files: ['check.ts'],
    }),
  );
  return tryCommand(process.execPath, [TSC, '-p', join(dir, 'tsconfig.json')]);
}

// The PromQL functions and keywords the dashboards use (anything else is a metric).
const PROMQL_WORDS = new Set([
  'sum',
  'max',
  'min',
  'count',
  'rate',
  'increase',
  'sum_over_time',
  'histogram_quantile',
  'label_replace',
  'label_values',
  'vector',
  'time',
  'or',
  'and',
  'bool',
]);

describe('the dashboards in wiki-chart/dashboards/', () => {
  const files = dashboardFiles();

  it('are the creation, API, Prometheus and PostgreSQL dashboards', () => {
    expect(files.map((file) => file.name).sort()).toEqual(['api.json', 'creation.json', 'postgresql.json', 'prometheus.json']);
  });

  it("are valid dashboard JSON by Grafana's own types (@grafana/schema)", { timeout: 60_000 }, async () => {
    const result = await typecheck('files', Object.fromEntries(files.map((file) => [file.name, file.text])));
    expect(result.output).toBe('');
    expect(result.ok).toBe(true);
  });

  it('that check fails on a misspelt field or enum value', { timeout: 60_000 }, async () => {
    const creation = files.find((file) => file.name === 'creation.json')!.text;
    const result = await typecheck('broken', {
      enum: creation.replace('"absolute"', '"absolut"'),
      field: creation.replace('"description"', '"descripton"'),
    });
    expect(result.ok).toBe(false);
    expect(result.output).toContain('"absolut"');
    expect(result.output).toContain('descripton');
  });

  it('have unique uids; the creation dashboard is at /d/creation-dashboard-678/creation', () => {
    const uids = files.map((file) => file.dashboard.uid);
    expect(new Set(uids).size).toBe(uids.length);
    const creation = files.find((file) => file.name === 'creation.json')!.dashboard;
    expect(creation.uid).toBe('creation-dashboard-678');
    // Grafana's URL slug is the lower-cased title.
    expect(creation.title.toLowerCase()).toBe('creation');
  });

  it('read the data source the $datasource variable chooses: no data source uid is written in them', () => {
    const chosen = { type: 'prometheus', uid: '${datasource}' };
    for (const { name, dashboard } of files) {
      const [first, ...others] = dashboard.templating.list;
      // A Prometheus data source variable, which defaults to Grafana's default data source.
      expect(first, name).toMatchObject({ name: 'datasource', type: 'datasource', query: 'prometheus' });
      for (const panel of panelsOf(dashboard)) {
        expect(panel.datasource, `${name}: ${panel.title}`).toEqual(chosen);
        for (const target of panel.targets) expect(target.datasource, `${name}: ${panel.title}`).toEqual(chosen);
      }
      for (const variable of others) expect(variable.datasource, `${name}: $${variable.name}`).toEqual(chosen);
      // No data source named anywhere else in the file (annotations, library panels, ...).
      const uidsInFile = [...readFileSync(join(CHART_DIR, 'dashboards', name), 'utf8').matchAll(/"uid": "([^"]+)"/g)].map((match) => match[1]);
      expect(new Set(uidsInFile.filter((uid) => uid !== dashboard.uid)), name).toEqual(new Set(['${datasource}']));
    }
  });

  it('every query filters by job and by the $namespace variable: a Prometheus shared by several releases shows each its own', () => {
    let selectors = 0;
    for (const { name, dashboard } of files) {
      expect(
        dashboard.templating.list.map((variable) => variable.name),
        name,
      ).toContain('namespace');
      const queries = [...panelsOf(dashboard).flatMap((panel) => panel.targets.map((target) => ({ where: `${name}: ${panel.title}`, expr: target.expr })))];
      for (const variable of dashboard.templating.list.filter((candidate) => candidate.type === 'query')) {
        const text = typeof variable.query === 'string' ? variable.query : variable.query.query;
        // label_values(selector, label): the label named last is no metric.
        queries.push({ where: `${name}: $${variable.name}`, expr: text.replace(/,\s*\w+\)$/, ')') });
      }
      for (const { where, expr } of queries) {
        // Every series selector: a metric name and its braces (not functions' parentheses).
        for (const [selector, metric, matchers = ''] of expr.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}/g)) {
          selectors++;
          // The namespace variable's own query lists the namespaces: it alone has no namespace matcher.
          const needsNamespace = !where.endsWith('$namespace');
          expect(matchers.includes('namespace="$namespace"') || !needsNamespace, `${where}: ${selector} has namespace="$namespace"`).toBe(true);
          // The scrape durations of every target of the chart's Prometheus, whatever their job.
          const needsJob = !(name === 'prometheus.json' && metric === 'scrape_duration_seconds');
          expect(/\bjob="[^"]+"/.test(matchers) || !needsJob, `${where}: ${selector} has a job matcher`).toBe(true);
        }
        // What is left once selectors, strings, ranges and grouping labels are gone may
        // only be PromQL's functions and keywords: a bare metric name would be unfiltered.
        const rest = expr
          .replace(/[a-zA-Z_:][a-zA-Z0-9_:]*\{[^}]*\}/g, ' ')
          .replace(/"[^"]*"/g, ' ')
          .replace(/\[[^\]]*\]/g, ' ')
          .replace(/\b(by|without|on|ignoring) \([^)]*\)/g, ' ');
        const words = [...rest.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)].map((match) => match[0]);
        expect(
          words.filter((word) => !PROMQL_WORDS.has(word)),
          `${where}: a metric without matchers`,
        ).toEqual([]);
      }
    }
    expect(selectors).toBeGreaterThan(40);
  });

  it('every panel says what it shows and what is normal, has a unit and a query', () => {
    for (const { name, dashboard } of files) {
      const ids = panelsOf(dashboard).map((panel) => panel.id);
      expect(new Set(ids).size, name).toBe(ids.length);
      for (const panel of panelsOf(dashboard)) {
        expect(panel.description.length, `${name}: ${panel.title}`).toBeGreaterThan(40);
        expect(panel.description, `${name}: ${panel.title}`).toMatch(/[Nn]ormal|expected/);
        expect(panel.fieldConfig.defaults.unit, `${name}: ${panel.title}`).toBeTruthy();
        expect(panel.targets.length, `${name}: ${panel.title}`).toBeGreaterThan(0);
        for (const target of panel.targets) expect(target.expr.trim(), `${name}: ${panel.title}`).not.toBe('');
      }
    }
  });

  it("the dashboards read the recording rules, and every recording rule is read by a dashboard; the 5xx panel is the objective's ratio", () => {
    const rules = (file: string) => readFileSync(join(CHART_DIR, 'rules', file), 'utf8');
    const panel = (file: string, title: string) =>
      panelsOf(files.find((candidate) => candidate.name === file)!.dashboard).find((candidate) => candidate.title === title)!;
    // Record names as written in the templates, with their loops' variables filled in.
    const recorded = new Set(
      ['recording.yaml', 'slo.yaml', 'postgresql.yaml'].flatMap((file) =>
        [...rules(file).matchAll(/record: (.+)$/gm)].flatMap((match) =>
          ['availability', 'latency'].map((slo) => match[1]!.replace('{{ $window }}', '5m').replace('{{ $slo.record }}', slo)),
        ),
      ),
    );
    const expressions = files.flatMap(({ dashboard }) => panelsOf(dashboard).flatMap((candidate) => candidate.targets.map((target) => target.expr))).join('\n');
    // Recorded series are named level:metric:operations; a dashboard reads only those recorded.
    const readByDashboards = new Set([...expressions.matchAll(/([a-z_]+:[a-z0-9_:]+)\{/g)].map((match) => match[1]!));
    for (const metric of readByDashboards) expect(recorded.has(metric), `${metric} is read but recorded by no rule`).toBe(true);
    const recordingRules = [...rules('recording.yaml').matchAll(/record: (\S+)/g)].map((match) => match[1]!);
    expect(recordingRules.length).toBeGreaterThanOrEqual(4);
    for (const metric of recordingRules) expect(readByDashboards.has(metric), `${metric} is recorded but no dashboard reads it`).toBe(true);
    expect(panel('api.json', '5xx ratio').targets[0]!.expr).toBe('job:slo_availability_errors:ratio_rate5m{job="wiki-api", namespace="$namespace"}');
    // The metrics PrometheusStorageNearRetentionSize adds up, all of them in the panel.
    const alert = /alert: PrometheusStorageNearRetentionSize[\s\S]*?expr: \|([\s\S]*?)for:/.exec(rules('alerts.yaml'))![1]!;
    const used = [...alert.matchAll(/(prometheus_tsdb_\w+)\{/g)]
      .map((match) => match[1]!)
      .filter((metric) => metric !== 'prometheus_tsdb_retention_limit_bytes');
    expect(used).toHaveLength(3);
    const storage = panel('prometheus.json', 'Storage used against the retention size')
      .targets.map((target) => target.expr)
      .join('\n');
    for (const metric of used) expect(storage).toContain(metric);
  });

  it('the API dashboard lets one choose the namespace and the pods: the process panels show the chosen pods, the request panels the whole release (recorded)', () => {
    const api = files.find((file) => file.name === 'api.json')!.dashboard;
    expect(api.templating.list.map((variable) => variable.name)).toEqual(['datasource', 'namespace', 'pod']);
    const recorded = (expr: string) => /[a-z_]+:[a-z0-9_:]+\{/.test(expr);
    for (const panel of panelsOf(api)) {
      for (const target of panel.targets) {
        // A recorded series has no pod label; anything else selects the chosen pods.
        expect(target.expr.includes('pod=~"$pod"'), `${panel.title}: ${target.expr}`).toBe(!recorded(target.expr));
        expect(target.expr.includes('$pod'), `${panel.title}: ${target.expr}`).toBe(!recorded(target.expr));
      }
    }
    expect(
      panelsOf(api)
        .filter((panel) => panel.targets.every((target) => recorded(target.expr)))
        .map((panel) => panel.title),
    ).toEqual(['Requests per second by route and status class', '5xx ratio', 'Latency by route (p50, p95, p99)', 'Error budget left over 30 days']);
  });

  it('the PostgreSQL dashboard lets one choose the namespace, and reads only the exporter of the release there', () => {
    const postgresql = files.find((file) => file.name === 'postgresql.json')!.dashboard;
    expect(postgresql.templating.list.map((variable) => variable.name)).toEqual(['datasource', 'namespace']);
    for (const panel of panelsOf(postgresql)) {
      for (const target of panel.targets) expect(target.expr, panel.title).toContain('job="postgresql", namespace="$namespace"');
    }
  });
});
