import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdir, readdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tryCommand } from '@wiki/test-support/run-command';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { environmentOf } from './chart-env.js';
import { CHART_DIR, configMapData, type K8sObject } from './helm.js';

// The real Prometheus 3, promtool, Alertmanager and amtool, from Debian's unstable
// suite, fetched into system-tests/.cache/prometheus by tools/fetch-prometheus.sh
// (.ci/run runs it; nothing is installed system-wide).

const BIN_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '.cache', 'prometheus', 'bin');
export const PROMETHEUS = join(BIN_DIR, 'prometheus');
export const PROMTOOL = join(BIN_DIR, 'promtool');
export const ALERTMANAGER = join(BIN_DIR, 'alertmanager');
export const AMTOOL = join(BIN_DIR, 'amtool');
export const POSTGRES_EXPORTER = join(BIN_DIR, 'postgres_exporter');

// Debian's Alertmanager reads these from a path compiled into it (the script puts them there).
const ALERTMANAGER_TEMPLATES = '/usr/share/prometheus/alertmanager/default.tmpl';

/** Undefined when every binary is there, else what is missing and how to get it. */
export function prometheusMissing(): string | undefined {
  const missing = [PROMETHEUS, PROMTOOL, ALERTMANAGER, AMTOOL, POSTGRES_EXPORTER, ALERTMANAGER_TEMPLATES].filter((file) => !existsSync(file));
  return missing.length === 0 ? undefined : `${missing.join(', ')} missing (run system-tests/tools/fetch-prometheus.sh)`;
}

/** The version a binary reports, e.g. "3.5.3+ds1" from "prometheus, version 3.5.3+ds1 (branch: ...)". */
export function binaryVersion(binary: string): string {
  const firstLine = execFileSync(binary, ['--version'], { encoding: 'utf8' }).split('\n')[0]!;
  const match = /version (\S+)/.exec(firstLine);
  if (match === null) throw new Error(`cannot read the version of ${binary}: ${firstLine}`);
  return match[1]!;
}

/** The major version of "3.5.3+ds1", "v3.5.3" or "v3.5.3@sha256:...". */
export function majorVersion(version: string): number {
  const match = /^v?(\d+)\./.exec(version);
  if (match === null) throw new Error(`not a version: ${version}`);
  return Number(match[1]);
}

export async function promtool(args: string[]): Promise<{ ok: boolean; output: string }> {
  return tryCommand(PROMTOOL, args);
}

/**
 * Lays out the rendered Prometheus ConfigMaps as the pod sees them: prometheus.yml
 * in `dir`, the rule files in `dir/rules/` (the config names them relative to itself).
 * Returns the path of prometheus.yml.
 */
export async function writeRenderedPrometheusConfig(objects: K8sObject[], dir: string, prometheusYml?: string): Promise<string> {
  await mkdir(join(dir, 'rules'), { recursive: true });
  const configFile = join(dir, 'prometheus.yml');
  await writeFile(configFile, prometheusYml ?? renderedPrometheusYml(objects));
  for (const [name, content] of Object.entries(configMapData(objects, 'prometheus-rules'))) {
    await writeFile(join(dir, 'rules', name), content);
  }
  return configFile;
}

/**
 * The rule files as rendered (they are Helm templates) in `dir/rules/`, beside a copy
 * of wiki-chart/rules-tests/ in `dir/rules-tests/`, whose tests name them as
 * ../rules/<file> (../../rules/<file> in a subfolder): `promtool test rules` then
 * runs on what Prometheus would load. Returns the paths of the test files of
 * rules-tests/, or of its subfolder `testsFolder` (rules-tests/cloudnative-pg/ holds
 * the tests of the rules as rendered with ci/cloudnative-pg-values.yaml).
 */
export async function layOutRuleTests(objects: K8sObject[], dir: string, testsFolder = ''): Promise<string[]> {
  await writeRenderedPrometheusConfig(objects, dir);
  await cp(join(CHART_DIR, 'rules-tests'), join(dir, 'rules-tests'), { recursive: true });
  const folder = join(dir, 'rules-tests', testsFolder);
  const files = (await readdir(folder)).filter((file) => file.endsWith('_test.yaml'));
  return files.map((file) => join(folder, file));
}

/** prometheus.yml as the chart renders it into its ConfigMap. */
export function renderedPrometheusYml(objects: K8sObject[]): string {
  return configMapData(objects, 'prometheus-config')['prometheus.yml']!;
}

/** alertmanager.yml as the chart renders it into its Secret. */
export function renderedAlertmanagerConfig(objects: K8sObject[]): string {
  const secret = objects.find((object) => object.kind === 'Secret' && object.metadata.name.endsWith('-alertmanager-config'));
  if (secret === undefined) throw new Error('no alertmanager-config Secret rendered');
  return secret.stringData['alertmanager.yml'];
}

export async function amtool(args: string[]): Promise<{ ok: boolean; output: string }> {
  return tryCommand(AMTOOL, args);
}

/**
 * The rendered prometheus.yml with its one Kubernetes-specific part swapped: each
 * job's kubernetes_sd_configs becomes a file_sd_configs reading the file given for
 * that job, where the test writes targets carrying the same __meta_kubernetes_*
 * labels that pod discovery would give them. Everything else, relabelling included,
 * is unchanged. (There is no cluster to discover here; `promtool check config` sees
 * the unchanged file.)
 */
export function withFileDiscovery(prometheusYml: string, targetsFiles: Record<string, string>): string {
  const config = parseYaml(prometheusYml) as { scrape_configs: Array<Record<string, unknown>> };
  const swapped: string[] = [];
  for (const job of config.scrape_configs) {
    if (job.kubernetes_sd_configs === undefined) continue;
    const file = targetsFiles[job.job_name as string];
    if (file === undefined) throw new Error(`no targets file for job ${String(job.job_name)}`);
    delete job.kubernetes_sd_configs;
    job.file_sd_configs = [{ files: [file], refresh_interval: '5s' }];
    swapped.push(job.job_name as string);
  }
  if (swapped.sort().join() !== Object.keys(targetsFiles).sort().join()) throw new Error(`jobs with kubernetes_sd_configs: ${swapped.join(', ')}`);
  return stringifyYaml(config);
}

/** A file_sd target as Kubernetes pod discovery would describe a pod's container port (by default an API pod's). */
export function podTarget(address: string, pod: string, namespace: string, overrides: Record<string, string> = {}) {
  return {
    targets: [address],
    labels: {
      __meta_kubernetes_namespace: namespace,
      __meta_kubernetes_pod_name: pod,
      __meta_kubernetes_pod_container_name: 'api',
      __meta_kubernetes_pod_container_port_name: 'http',
      __meta_kubernetes_pod_phase: 'Running',
      ...overrides,
    },
  };
}

/**
 * postgres_exporter as PostgreSQL's pod runs it: the rendered container's arguments
 * and environment (its password from the rendered Secret), with only the pod's
 * addresses and paths mapped to local ones: it listens on `port`, reaches PostgreSQL
 * on `postgresPort`, and reads its query file from `scriptsDir` (writeChartScripts).
 */
export function postgresExporterInvocation(
  objects: K8sObject[],
  port: number,
  postgresPort: number,
  scriptsDir: string,
): { args: string[]; env: Record<string, string> } {
  const statefulSet = objects.find((object) => object.kind === 'StatefulSet' && object.metadata.labels['app.kubernetes.io/component'] === 'postgresql');
  const container = statefulSet?.spec.template.spec.containers.find((candidate: { name: string }) => candidate.name === 'postgres-exporter');
  if (container === undefined) throw new Error('no postgres-exporter container rendered');
  const args = (container.args as string[]).map((arg) =>
    arg === '--web.listen-address=:9187'
      ? `--web.listen-address=127.0.0.1:${port}`
      : arg.replace('=/etc/postgres-exporter/queries.yaml', `=${join(scriptsDir, 'exporter-queries.yaml')}`),
  );
  const env = environmentOf(container, objects);
  const target = /^127\.0\.0\.1:5432(\/\w+\?sslmode=disable)$/.exec(env.DATA_SOURCE_URI ?? '');
  if (target === null) throw new Error(`unexpected DATA_SOURCE_URI ${env.DATA_SOURCE_URI}`);
  return { args, env: { ...env, DATA_SOURCE_URI: `127.0.0.1:${postgresPort}${target[1]}` } };
}

/**
 * Turns one scrape (Prometheus text format) into `hours` of history at `intervalSeconds`,
 * in OpenMetrics for `promtool tsdb create-blocks-from openmetrics`: counters
 * (_total, _count, _sum, _bucket) grow by small steps, gauges wander a little. The
 * storage cost of that block approximates what the real series cost on disk.
 * Returns the text and the number of samples in it.
 */
export function syntheticHistory(exposition: string, hours: number, intervalSeconds: number): { text: string; samples: number } {
  const series = exposition
    .split('\n')
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$/.exec(line);
      if (match === null) throw new Error(`cannot parse sample line: ${line}`);
      return { name: match[1]!, labels: match[2] ?? '', value: Number(match[3]) };
    })
    .filter((entry) => Number.isFinite(entry.value));
  const steps = Math.floor((hours * 3600) / intervalSeconds);
  // Start on a 2-hour boundary, as Prometheus's blocks are aligned.
  const start = Math.floor(1_767_225_600 / 7200) * 7200;
  let seed = 42;
  const random = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
  const lines: string[] = [];
  const byName = new Map<string, typeof series>();
  for (const entry of series) byName.set(entry.name, [...(byName.get(entry.name) ?? []), entry]);
  for (const [name, entries] of byName) {
    // "unknown" families: any sample name is valid, one family per name.
    lines.push(`# TYPE ${name} unknown`);
    const isCounter = /(_total|_count|_sum|_bucket)$/.test(name);
    for (const { labels, value } of entries) {
      let current = value;
      for (let step = 0; step < steps; step++) {
        current = isCounter ? current + Math.floor(random() * 3) : Math.max(0, current * (1 + (random() - 0.5) * 0.02));
        lines.push(`${name}${labels} ${Number.isInteger(current) ? current : current.toFixed(6)} ${start + step * intervalSeconds}`);
      }
    }
  }
  lines.push('# EOF');
  return { text: `${lines.join('\n')}\n`, samples: series.length * steps };
}

/** One sample of an instant query's result (Prometheus's HTTP API, resultType vector). */
export interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

/** An instant query against the Prometheus at `baseUrl`, evaluated now or at `time` (ms since the epoch); throws with Prometheus's error. */
export async function instantQuery(baseUrl: string, promql: string, time?: number): Promise<Sample[]> {
  const at = time === undefined ? '' : `&time=${time / 1000}`;
  const response = await fetch(`${baseUrl}/api/v1/query?query=${encodeURIComponent(promql)}${at}`);
  const body = (await response.json()) as { status: string; data: { result: Sample[] }; error?: string };
  if (body.status !== 'success') throw new Error(`query ${promql}: ${body.error}`);
  return body.data.result;
}

/** A range query against the Prometheus at `baseUrl`, one point every 5 s; throws with Prometheus's error. */
export async function rangeQuery(
  baseUrl: string,
  promql: string,
  start: number,
  end: number,
): Promise<Array<{ metric: Record<string, string>; values: Array<[number, string]> }>> {
  const url = `${baseUrl}/api/v1/query_range?query=${encodeURIComponent(promql)}&start=${start}&end=${end}&step=5`;
  const body = (await (await fetch(url)).json()) as {
    status: string;
    data: { result: Array<{ metric: Record<string, string>; values: Array<[number, string]> }> };
    error?: string;
  };
  if (body.status !== 'success') throw new Error(`range query ${promql}: ${body.error}`);
  return body.data.result;
}

/** One of Prometheus's active scrape targets (/api/v1/targets). */
export interface Target {
  labels: Record<string, string>;
  health: string;
  scrapeUrl: string;
  lastError: string;
}

/** The active scrape targets of the Prometheus at `baseUrl`. */
export async function activeTargets(baseUrl: string): Promise<Target[]> {
  const body = (await (await fetch(`${baseUrl}/api/v1/targets?state=active`)).json()) as { data: { activeTargets: Target[] } };
  return body.data.activeTargets;
}
