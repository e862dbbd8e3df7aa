// `npm run observe` (from the repository's root): the service's metrics, dashboards'
// queries and alerts on a laptop, without Docker or a cluster. It starts, from the
// binaries system-tests/tools/fetch-prometheus.sh fetched and PostgreSQL's server
// binaries:
//
//   - PostgreSQL, set up as the chart's PostgreSQL pod sets it up, with
//     postgres_exporter beside it;
//   - two API processes with the environment the chart's Deployment gives its pods,
//     on ports 8001 and 8002;
//   - Prometheus 3.5 on port 9090 and Alertmanager on 9093, with the chart's rendered
//     configuration and rules, scraping as the chart's Prometheus does.
//
// Then it prints where to look, and every change of an alert's state. Type "stop" to
// stop PostgreSQL and watch the database alerts go pending, fire and (after "start")
// resolve. Ctrl-C stops everything and deletes the data: this is a demonstration,
// not a place to keep anything.
//
//   npm run observe [-- -f my-values.yaml --set alerting.for.PostgresqlDown=30s]
//
// Extra arguments are values files (-f) or --set values, as for helm.

import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { createInterface } from 'node:readline';
import { freePort, type PostgresServer } from '@wiki/test-support/postgres';
import { startService, type ServiceProcess } from 'wiki-service/service-process';
import { apiEnvironment, pointedAt, postgresMissing, startChartDatabase } from '../support/chart-env.js';
import { startProcess, type StartedProcess } from '@wiki/test-support/process';
import { renderChart, RELEASE, valuesArguments } from '../support/helm.js';
import { alertmanagerInvocation, exporterInvocation, prometheusInvocation } from '../support/local-stack.js';
import { activeTargets, ALERTMANAGER, AMTOOL, POSTGRES_EXPORTER, PROMETHEUS, prometheusMissing, PROMTOOL } from '../support/prometheus.js';
import { sleep, until } from '@wiki/test-support/wait';

const API_PORTS = [8001, 8002];
const PROMETHEUS_PORT = 9090;
const ALERTMANAGER_PORT = 9093;
/** As the documents' commands assume (release wiki in namespace wiki). */
const OBSERVE_NAMESPACE = 'wiki';

async function portInUse(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(true));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(false)));
  });
}

async function ready(what: string, daemon: StartedProcess, url: string): Promise<void> {
  await until(what, 60_000, async () => (await fetch(url).catch(() => undefined))?.ok, {
    giveUpIf: () => (daemon.exit() === undefined ? undefined : `it exited:\n${daemon.output()}`),
  });
}

interface PrometheusAlert {
  labels: Record<string, string>;
  state: 'pending' | 'firing';
}

/** Each alert's state as Prometheus evaluates it, keyed by its name and distinguishing labels. */
async function alertStates(): Promise<Map<string, string>> {
  const body = (await (await fetch(`http://127.0.0.1:${PROMETHEUS_PORT}/api/v1/alerts`)).json()) as { data: { alerts: PrometheusAlert[] } };
  const states = new Map<string, string>();
  for (const alert of body.data.alerts) {
    const { alertname, severity: _severity, job: _job, namespace: _namespace, ...rest } = alert.labels;
    const detail = Object.entries(rest)
      .map(([key, value]) => `${key}=${value}`)
      .join(', ');
    states.set(detail === '' ? alertname! : `${alertname} (${detail})`, alert.state);
  }
  return states;
}

const missing = prometheusMissing() ?? postgresMissing();
if (missing !== undefined) {
  console.error(`observe: ${missing}`);
  process.exit(1);
}
for (const port of [...API_PORTS, PROMETHEUS_PORT, ALERTMANAGER_PORT]) {
  if (await portInUse(port)) {
    console.error(`observe: port ${port} is in use (another observe, compose.yaml, or a Prometheus?): stop it first`);
    process.exit(1);
  }
}

const { files, set } = valuesArguments(process.argv.slice(2));
const objects = await renderChart(files, set, OBSERVE_NAMESPACE);
const workDir = await mkdtemp(join(tmpdir(), 'wiki-observe-'));
const daemons: StartedProcess[] = [];
const apis: ServiceProcess[] = [];
let postgres: PostgresServer | undefined;
let stopping = false;

async function stopAll(code: number): Promise<never> {
  stopping = true;
  for (const daemon of daemons) await daemon.stop('SIGKILL');
  await Promise.all(apis.map((api) => api.stop('SIGTERM')));
  await postgres?.destroy();
  await rm(workDir, { recursive: true, force: true });
  console.log('observe: stopped everything, data deleted');
  process.exit(code);
}
process.on('SIGINT', () => void stopAll(0));
process.on('SIGTERM', () => void stopAll(0));

try {
  console.log('observe: starting PostgreSQL (as the chart sets it up)');
  postgres = await startChartDatabase(objects);
  const exporterPort = await freePort();
  const exporter = await exporterInvocation(objects, workDir, exporterPort, postgres.port);
  daemons.push(startProcess(POSTGRES_EXPORTER, exporter.args, { env: exporter.env }));

  console.log('observe: starting two API processes (as the chart runs its pods)');
  const { api: env } = apiEnvironment(objects);
  for (const port of API_PORTS) apis.push(await startService({ ...pointedAt(postgres, env), SHUTDOWN_DELAY_SECONDS: '0' }, { port, discardStdout: true }));

  console.log("observe: starting Alertmanager and Prometheus (the chart's configuration and rules)");
  const alertmanager = startProcess(ALERTMANAGER, await alertmanagerInvocation(objects, workDir, ALERTMANAGER_PORT));
  daemons.push(alertmanager);
  await ready('Alertmanager', alertmanager, `http://127.0.0.1:${ALERTMANAGER_PORT}/-/ready`);
  const prometheus = startProcess(
    PROMETHEUS,
    await prometheusInvocation(objects, workDir, join(workDir, 'prometheus-data'), PROMETHEUS_PORT, {
      apiPods: apis.map((api, i) => ({ address: new URL(api.baseUrl).host, pod: `${RELEASE}-api-${i + 1}` })),
      postgresql: { exporter: `127.0.0.1:${exporterPort}`, server: `127.0.0.1:${postgres.port}`, pod: `${RELEASE}-postgresql-0` },
      alertmanager: `127.0.0.1:${ALERTMANAGER_PORT}`,
      namespace: OBSERVE_NAMESPACE,
    }),
  );
  daemons.push(prometheus);
  await ready('Prometheus', prometheus, `http://127.0.0.1:${PROMETHEUS_PORT}/-/ready`);
  // Until each target's first scrape, the alerts that watch for a missing target are pending.
  await until('Prometheus to scrape every target once', 60_000, async () => {
    const targets = await activeTargets(`http://127.0.0.1:${PROMETHEUS_PORT}`);
    return targets.length >= 5 && targets.every((target) => target.health === 'up') ? true : undefined;
  });
} catch (error) {
  console.error(`observe: ${error instanceof Error ? error.message : String(error)}`);
  await stopAll(1);
}

const promtool = relative(process.env.INIT_CWD ?? process.cwd(), PROMTOOL);
const amtool = relative(process.env.INIT_CWD ?? process.cwd(), AMTOOL);
console.log(`
observe: ready. Where to look:
  the API, two "pods"   http://localhost:${API_PORTS[0]}/docs   http://localhost:${API_PORTS[1]}/docs
  Prometheus's API      http://localhost:${PROMETHEUS_PORT}/api/v1/targets   (wiki-api x2, postgresql, prometheus, alertmanager)
                        http://localhost:${PROMETHEUS_PORT}/api/v1/alerts    (pending and firing; Watchdog always fires)
  Alertmanager's API    http://localhost:${ALERTMANAGER_PORT}/api/v2/alerts    (what it would send, to receiver "null" by default)
Debian's builds of Prometheus and Alertmanager have no web UI: ask them with promtool
and amtool (or curl), e.g.
  ${promtool} query instant http://localhost:${PROMETHEUS_PORT} 'sum by (pod) (users_created_total)'
  ${amtool} alert query --alertmanager.url=http://localhost:${ALERTMANAGER_PORT}
A dashboard's query from wiki-chart/dashboards/ works too, with $namespace replaced by ${OBSERVE_NAMESPACE}.

Type "stop" (and Enter) to stop PostgreSQL: the API answers 503, and the database
alerts go pending, then fire (PostgresqlDown and WikiApiDatabaseUnreachable after
their "for:", 2 minutes by default). Type "start" to bring it back and see them
resolve. Ctrl-C stops everything and deletes the data.
`);

const commands = createInterface({ input: process.stdin });
commands.on('line', (line) => {
  const command = line.trim();
  const action =
    command === 'stop'
      ? postgres!.stop().then(() => console.log('observe: PostgreSQL stopped'))
      : command === 'start'
        ? postgres!.start().then(() => console.log('observe: PostgreSQL started'))
        : Promise.resolve(command === '' ? undefined : console.log(`observe: "${command}"? type "stop" or "start"`));
  action.catch((error: unknown) => console.error(`observe: ${String(error)}`));
});

// Every change of an alert's state, as Prometheus evaluates the rules.
let known = new Map<string, string>();
for (;;) {
  if (stopping) break;
  try {
    const now = await alertStates();
    for (const [alert, state] of now) if (known.get(alert) !== state) console.log(`alert ${alert}: ${state}`);
    for (const alert of known.keys()) if (!now.has(alert)) console.log(`alert ${alert}: resolved`);
    known = now;
  } catch (error) {
    console.error(`observe: cannot ask Prometheus for its alerts: ${String(error)}`);
  }
  await sleep(2_000); // how often the alerts' states are asked for
}
