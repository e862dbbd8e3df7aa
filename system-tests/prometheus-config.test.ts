import { readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHART_DIR, renderChart, type K8sObject } from './support/helm.js';
import {
  ALERTMANAGER,
  binaryVersion,
  majorVersion,
  PROMETHEUS,
  prometheusMissing,
  PROMTOOL,
  promtool,
  writeRenderedPrometheusConfig,
} from './support/prometheus.js';
import { skipLoudly } from './support/skip.js';

// The real promtool checks what the chart renders for Prometheus, and the rule files
// as they are kept in the repository.

const skip = skipLoudly(prometheusMissing(), 'the promtool tests are');

describe.skipIf(skip)('promtool on the rendered Prometheus configuration', () => {
  let dir: string;
  let objects: K8sObject[];
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'wiki-promtool-'));
    objects = await renderChart();
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('the binaries under test are the major version the chart deploys', () => {
    const prometheus = binaryVersion(PROMETHEUS);
    const promtoolVersion = binaryVersion(PROMTOOL);
    const alertmanager = binaryVersion(ALERTMANAGER);
    const deployment = objects.find((object) => object.kind === 'Deployment' && object.metadata.name.endsWith('-prometheus'))!;
    const image: string = deployment.spec.template.spec.containers.find((c: { name: string }) => c.name === 'prometheus').image;
    const imageVersion = image.slice(image.lastIndexOf(':') + 1);
    console.log(`tested: prometheus ${prometheus}, promtool ${promtoolVersion}, alertmanager ${alertmanager}; the chart deploys ${image}`);
    expect(majorVersion(prometheus), `the chart deploys ${image} but the tests run Prometheus ${prometheus}`).toBe(majorVersion(imageVersion));
    expect(majorVersion(promtoolVersion)).toBe(majorVersion(imageVersion));
  });

  it('`promtool check config` accepts the rendered prometheus.yml, unchanged (Kubernetes discovery included), with its rule files', async () => {
    const rendered = objects.find((object) => object.kind === 'ConfigMap' && object.metadata.name.endsWith('-prometheus-config'))!;
    expect(rendered.data['prometheus.yml']).toContain('kubernetes_sd_configs');
    const configFile = await writeRenderedPrometheusConfig(objects, dir);
    const result = await promtool(['check', 'config', configFile]);
    expect(result.output).toContain('SUCCESS');
    expect(result.output).toMatch(/rules\/recording\.yaml/);
    expect(result.ok, result.output).toBe(true);
  });

  it('`promtool check config` also accepts it with every Prometheus option set (ci/prometheus-options-values.yaml)', async () => {
    const withOptions = await renderChart([join(CHART_DIR, 'ci', 'prometheus-options-values.yaml')]);
    const optionsDir = join(dir, 'options');
    const rendered = withOptions.find((object) => object.kind === 'ConfigMap' && object.metadata.name.endsWith('-prometheus-config'))!;
    expect(rendered.data['prometheus.yml']).toContain('external_labels');
    expect(rendered.data['prometheus.yml']).toContain('job_name: node');
    const result = await promtool(['check', 'config', await writeRenderedPrometheusConfig(withOptions, optionsDir)]);
    expect(result.ok, result.output).toBe(true);
  });

  it('`promtool check rules` accepts every file in wiki-chart/rules/', async () => {
    const result = await promtool(['check', 'rules', join(CHART_DIR, 'rules', 'recording.yaml')]);
    expect(result.ok, result.output).toBe(true);
    expect(result.output).toMatch(/SUCCESS: \d+ rules found/);
  });

  it('`promtool test rules` passes the unit tests in wiki-chart/rules-tests/', async () => {
    const dir = join(CHART_DIR, 'rules-tests');
    const files = readdirSync(dir).filter((file) => file.endsWith('_test.yaml'));
    expect(files.length).toBeGreaterThan(0);
    const result = await promtool(['test', 'rules', ...files.map((file) => join(dir, file))]);
    expect(result.ok, result.output).toBe(true);
    expect(result.output).toContain('SUCCESS');
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
