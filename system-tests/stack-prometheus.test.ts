import { readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client } from '@wiki/test-support/http';
import { runCommand } from '@wiki/test-support/run-command';
import { until } from '@wiki/test-support/wait';
import { NAMESPACE } from './support/helm.js';
import { activeTargets, PROMTOOL, rangeQuery, syntheticHistory } from './support/prometheus.js';
import { LocalStack, POD_NAMES, POSTGRESQL_POD, PROMETHEUS_URL, stackSkipped, TARGETS } from './support/stack.js';

// Phase 7 on the local stack (support/stack.ts): Prometheus as the chart runs it, what it
// scrapes, its rules, its storage and its restart.

const skip = stackSkipped('the Prometheus stack test is');

async function directorySize(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    total += entry.isDirectory() ? await directorySize(path) : (await stat(path)).size;
  }
  return total;
}

describe.skipIf(skip)('the stack, Prometheus: from the rendered chart, scraping two API pods, PostgreSQL, itself and Alertmanager', () => {
  const stack = new LocalStack();
  beforeAll(() => stack.start());
  afterAll(() => stack.stop());

  it("Prometheus is healthy and ready, runs the Deployment's arguments, and its web UI answers", async () => {
    expect((await fetch(`${PROMETHEUS_URL}/-/healthy`)).status).toBe(200);
    expect((await fetch(`${PROMETHEUS_URL}/-/ready`)).status).toBe(200);
    const flags = ((await (await fetch(`${PROMETHEUS_URL}/api/v1/status/flags`)).json()) as { data: Record<string, string> }).data;
    expect(flags['storage.tsdb.retention.time']).toBe('31d');
    // 1740MB (85% of 2Gi), which Prometheus prints in powers of two.
    expect(flags['storage.tsdb.retention.size']).toBe('1GiB716MiB');
    expect(flags['web.enable-lifecycle']).toBe('false');
    // So no one who reaches the port (through the Ingress too) can stop it.
    const quit = await fetch(`${PROMETHEUS_URL}/-/quit`, { method: 'POST' });
    expect(quit.status).toBe(403);
    expect(await quit.text()).toMatch(/Lifecycle API is not enabled/);
    expect((await fetch(`${PROMETHEUS_URL}/-/healthy`)).status).toBe(200);
    // Prometheus 3 serves its web UI at /query; "/" and 2.x's /graph redirect there.
    // Debian's build leaves the UI's files out (its install-ui.sh would download them),
    // so only that routing is checked here; the upstream image the chart deploys
    // carries the UI itself.
    for (const path of ['/', '/graph']) {
      const redirect = await fetch(`${PROMETHEUS_URL}${path}`, { redirect: 'manual' });
      expect(redirect.status, path).toBe(302);
      expect(redirect.headers.get('location'), path).toMatch(/^\/query\??$/);
    }
  });

  it("both API pods, PostgreSQL's exporter, Prometheus itself and Alertmanager are up, with pod and namespace labels; the Pending pod is dropped", async () => {
    const targets = await until('five healthy targets', 60_000, async () => {
      const active = await activeTargets(PROMETHEUS_URL);
      return active.length === TARGETS && active.every((target) => target.health === 'up') ? active : undefined;
    });
    expect(targets.filter((target) => target.labels.job === 'alertmanager')).toHaveLength(1);
    const postgresql = targets.filter((target) => target.labels.job === 'postgresql');
    expect(postgresql.map((target) => [target.labels.pod, target.labels.namespace, target.scrapeUrl])).toEqual([
      [POSTGRESQL_POD, NAMESPACE, expect.stringMatching(/:\d+\/metrics$/)],
    ]);
    expect(postgresql[0]!.scrapeUrl).not.toContain(`:${stack.postgres.port}/`);
    const api = targets.filter((target) => target.labels.job === 'wiki-api');
    expect(api.map((target) => target.labels.pod).sort()).toEqual([...POD_NAMES].sort());
    for (const target of api) expect(target.labels.namespace).toBe(NAMESPACE);
    expect(targets.filter((target) => target.labels.job === 'prometheus')).toHaveLength(1);
    expect(JSON.stringify(targets)).not.toContain('pendng');
  });

  it('the scrape interval in effect is the configured 15s', async () => {
    const config = ((await (await fetch(`${PROMETHEUS_URL}/api/v1/status/config`)).json()) as { data: { yaml: string } }).data.yaml;
    expect(config).toMatch(/^ {2}scrape_interval: 15s$/m);
    expect(config).toMatch(/^ {2}evaluation_interval: 15s$/m);
    // Prometheus's own measurement of the intervals it really scrapes at.
    const measured = await until('a measured scrape interval', 60_000, async () => {
      const result = await stack.query('prometheus_target_interval_length_seconds{interval="15s",quantile="0.5"}');
      return result.length > 0 && Number(result[0]!.value[1]) > 0 ? Number(result[0]!.value[1]) : undefined;
    });
    expect(measured).toBeGreaterThan(14);
    expect(measured).toBeLessThan(16);
  });

  it('self-monitoring: prometheus_build_info is there', async () => {
    const [info] = await stack.query('prometheus_build_info');
    expect(info?.metric.job).toBe('prometheus');
    expect(info?.metric.version).toMatch(/^\d+\.\d+/);
  });

  it('every recording and alerting rule is loaded and evaluates without error', async () => {
    const body = (await (await fetch(`${PROMETHEUS_URL}/api/v1/rules`)).json()) as {
      data: { groups: Array<{ name: string; rules: Array<{ name: string; type: string; health: string; lastError?: string }> }> };
    };
    expect(body.data.groups.map((candidate) => candidate.name).sort()).toEqual([
      'alertmanager.alerts',
      'postgresql.alerts',
      'prometheus.alerts',
      'watchdog',
      'wiki-api.alerts',
      'wiki-api.recording',
      'wiki-api.slo',
    ]);
    const rules = body.data.groups.flatMap((candidate) => candidate.rules);
    expect(rules.filter((rule) => rule.type === 'alerting').length).toBeGreaterThanOrEqual(14);
    for (const rule of rules) expect(rule.health, `${rule.name}: ${rule.lastError ?? ''}`).not.toBe('err');
    const [failures] = await stack.query('sum(prometheus_rule_evaluation_failures_total)');
    expect(Number(failures!.value[1])).toBe(0);
    const group = body.data.groups.find((candidate) => candidate.name === 'wiki-api.recording');
    expect(group?.rules.map((rule) => rule.name)).toContain('job:users_created:rate5m');
    const result = await until('job:users_created:rate5m', 60_000, async () => {
      const samples = await stack.query('job:users_created:rate5m');
      return samples.length > 0 ? samples : undefined;
    });
    expect(result[0]!.metric.job).toBe('wiki-api');
    for (const rule of group!.rules) expect(rule.health, rule.name).not.toBe('err');
  });

  it('measures one scrape and the storage cost (figures for docs/PHASE7_PROMETHEUS.md)', async () => {
    const exposition = (await client(stack.apis[0]!.baseUrl).get('/metrics')).text;
    const scraped = await until('a scrape of the first API pod', 60_000, async () => (await stack.query(`scrape_samples_scraped{pod="${POD_NAMES[0]}"}`))[0]);
    const [headSeries] = await stack.query('prometheus_tsdb_head_series');
    const samplesPerScrape = Number(scraped.value[1]);

    // Bytes per sample on disk, once compacted into a block: two hours of this pod's
    // real series, written by the real TSDB code (promtool), then measured.
    const history = syntheticHistory(exposition, 2, 15);
    const historyFile = join(stack.workDir, 'history.om');
    const blocksDir = join(stack.workDir, 'blocks');
    await writeFile(historyFile, history.text);
    await runCommand(PROMTOOL, ['tsdb', 'create-blocks-from', 'openmetrics', historyFile, blocksDir]);
    const bytesPerSample = (await directorySize(blocksDir)) / history.samples;

    // Disk per day for this chart at 15s: both API pods, Prometheus itself, the rules.
    const seriesInAll = Number(headSeries!.value[1]);
    const samplesPerDay = seriesInAll * (86_400 / 15);
    const bytesPerDay = samplesPerDay * bytesPerSample;
    // The rendered limits: retention.time's days of data must fit in retention.size.
    const flag = (name: string) => stack.prometheusArgs.find((arg) => arg.startsWith(`--storage.tsdb.${name}=`))!.split('=')[1]!;
    const retentionDays = Number(/^(\d+)d$/.exec(flag('retention.time'))![1]);
    const retentionBytes = Number(/^(\d+)MB$/.exec(flag('retention.size'))![1]) * 2 ** 20;
    console.log(
      [
        'measured:',
        `  one API pod scrape: ${samplesPerScrape} series, ${exposition.length} bytes of text (${gzipSync(exposition).length} gzipped)`,
        `  compacted block: ${bytesPerSample.toFixed(2)} bytes per sample (${history.samples} samples over 2 h)`,
        `  whole stack: ${seriesInAll} series in the head -> ${(samplesPerDay / 1e6).toFixed(2)} M samples/day -> ${(bytesPerDay / 2 ** 20).toFixed(1)} MiB/day`,
        `  retention.size ${flag('retention.size')} holds ${(retentionBytes / bytesPerDay).toFixed(0)} days; retention.time ${retentionDays}d uses ${((retentionDays * bytesPerDay) / 2 ** 20).toFixed(0)} MiB`,
      ].join('\n'),
    );
    expect(samplesPerScrape).toBeGreaterThan(0);
    expect(bytesPerSample).toBeGreaterThan(0);
    // The objectives' 30 days are kept, and they fit in the size limit with room for
    // the series to grow by half (more routes, status codes or pods).
    expect(retentionDays).toBeGreaterThanOrEqual(30);
    expect(retentionDays * bytesPerDay * 1.5).toBeLessThan(retentionBytes);
  });

  it('data persists across a restart of Prometheus on the same data folder', async () => {
    // Users this test creates, so the series it compares has grown while it watched.
    const before = Number((await client(stack.apis[0]!.baseUrl).get('/metrics')).text.match(/^users_created_total (\d+)$/m)![1]);
    for (let i = 0; i < 3; i++) await stack.createUser(0, `persisted user ${i}`);
    const series = `users_created_total{pod="${POD_NAMES[0]}"}`;
    await until(`${series} == ${before + 3}`, 60_000, async () => (Number((await stack.query(series))[0]?.value[1]) === before + 3 ? true : undefined));
    const end = Date.now() / 1000;
    const start = end - 600;
    const history = await rangeQuery(PROMETHEUS_URL, series, start, end);
    expect(history[0]!.values.at(-1)![1]).toBe(String(before + 3));

    await stack.stopPrometheus();
    await stack.startPrometheus();

    expect(await rangeQuery(PROMETHEUS_URL, series, start, end)).toEqual(history);
  });
});
