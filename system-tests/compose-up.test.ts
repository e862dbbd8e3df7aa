import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeBaseStandIn, officialImages, officialNamesOnStandIns, podmanMissing, REPO_ROOT, run } from './support/podman.js';
import { activeTargets, prometheusMissing } from './support/prometheus.js';
import { skipLoudly } from './support/skip.js';
import { until } from '@wiki/test-support/wait';

// compose.yaml brought up for real with the documented Podman command,
// `podman-compose up --build` (Debian's podman-compose; Podman 4.3 has no `podman
// compose`), after `npm run compose:prepare`. These machines reach no image
// registry, so the images compose.yaml pulls are stand-ins built here under
// localhost/stand-in/ (image/make-compose-stand-ins.sh), never under the official
// names, and a Compose override file points the services at them; the API image is
// built by Compose itself from wiki-service/Dockerfile, on the Node.js stand-in through
// its ARG NODE_IMAGE. Grafana has no stand-in: its server is in no registry these
// machines reach, so it is the one service not started.

const PODMAN_COMPOSE = '/usr/bin/podman-compose';
const skip = skipLoudly(
  podmanMissing() ?? prometheusMissing() ?? (existsSync(PODMAN_COMPOSE) ? undefined : `${PODMAN_COMPOSE} is missing (apt-get install -y podman-compose)`),
  'the compose.yaml run is',
);
const NOT_STARTED = { grafana: "Grafana's server image is in no registry these machines reach, and has no local stand-in" };
const STARTED = ['postgresql', 'api-1', 'api-2', 'wiki-prometheus', 'alertmanager'];
const PROJECT = ['--project-name', 'wiki-compose-test'];
let overrideDir = '';
const compose = (args: string[], timeoutMs = 10 * 60_000) =>
  run(PODMAN_COMPOSE, [...PROJECT, '-f', 'compose.yaml', '-f', join(overrideDir, 'stand-ins.yaml'), ...args], timeoutMs, { cwd: REPO_ROOT });

describe.skipIf(skip)('compose.yaml, brought up with podman-compose', () => {
  beforeAll(async () => {
    for (const [service, why] of Object.entries(NOT_STARTED)) console.warn(`\n!! compose.yaml: ${service} NOT STARTED: ${why}.\n`);
    await makeBaseStandIn();
    overrideDir = await mkdtemp(join(tmpdir(), 'wiki-compose-'));
    await writeFile(join(overrideDir, 'stand-ins.yaml'), await run('bash', [join(REPO_ROOT, 'system-tests', 'image', 'make-compose-stand-ins.sh')]));
    await run('npm', ['run', 'compose:prepare'], 5 * 60_000, { cwd: REPO_ROOT });
    // The documented command, detached so the test goes on, for every service but Grafana.
    await compose(['up', '--build', '-d', ...STARTED]);
  });

  afterAll(async () => {
    if (skip) return;
    if (overrideDir !== '') await compose(['down', '--volumes'], 5 * 60_000);
    await rm(overrideDir, { recursive: true, force: true });
    const lookAlikes = await officialNamesOnStandIns(officialImages());
    if (lookAlikes.length > 0) throw new Error(`after the tests, official names point at stand-ins: ${lookAlikes.join(', ')}`);
  });

  it('both API instances serve, from the one PostgreSQL: a user created through one is read through the other', async () => {
    // PostgreSQL initialises its volume first; the API instances restart until it answers.
    await until('api-1 and api-2 ready', 180_000, async () => {
      const ready = await Promise.all(
        [8001, 8002].map((port) =>
          fetch(`http://127.0.0.1:${port}/ready`).then(
            (response) => response.ok,
            () => false,
          ),
        ),
      );
      return ready.every(Boolean) ? true : undefined;
    });
    const created = (await (
      await fetch('http://127.0.0.1:8001/users', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"name":"composed"}' })
    ).json()) as { id: number };
    const read = await fetch(`http://127.0.0.1:8002/user/${created.id}`);
    expect(read.status).toBe(200);
    expect(((await read.json()) as { name: string }).name).toBe('composed');
  });

  it("Prometheus scrapes both instances, itself and Alertmanager, with the chart's labels, by their service names", async () => {
    const targets = await until('every target up', 120_000, async () => {
      const active = await activeTargets('http://127.0.0.1:9090');
      return active.length === 4 && active.every((target) => target.health === 'up') ? active : undefined;
    });
    expect(targets.map((target) => `${target.labels.job}/${target.labels.pod ?? '-'}/${target.labels.namespace}`).sort()).toEqual([
      'alertmanager/-/compose',
      'prometheus/-/compose',
      'wiki-api/api-1/compose',
      'wiki-api/api-2/compose',
    ]);
  });

  it("loads the chart's rules and delivers their alerts to Alertmanager: the Watchdog arrives", async () => {
    const alerts = await until('the Watchdog in Alertmanager', 120_000, async () => {
      const body = (await (await fetch('http://127.0.0.1:9093/api/v2/alerts')).json()) as Array<{
        labels: Record<string, string>;
        receivers: Array<{ name: string }>;
      }>;
      return body.some((alert) => alert.labels.alertname === 'Watchdog') ? body : undefined;
    });
    // Routed as the chart's alertmanager.yml routes it, to the dead man's switch.
    expect(alerts.find((alert) => alert.labels.alertname === 'Watchdog')!.receivers.map((receiver) => receiver.name)).toEqual(['dead-mans-switch']);
    const rules = (await (await fetch('http://127.0.0.1:9090/api/v1/rules')).json()) as { data: { groups: Array<{ rules: Array<{ health: string }> }> } };
    const loaded = rules.data.groups.flatMap((group) => group.rules);
    expect(loaded.length).toBeGreaterThan(20);
  });
});
