import { mkdtemp, rm } from 'node:fs/promises';
import { createServer as createHttpServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { client, type Response } from '@wiki/test-support/http';
import { freePort, type PostgresServer } from '@wiki/test-support/postgres';
import { startService, type ServiceProcess } from 'wiki-service/service-process';
import { sleep, until } from '@wiki/test-support/wait';
import { apiEnvironment, pointedAt, postgresMissing, startChartDatabase } from './chart-env.js';
import { portIsFree } from './ports.js';
import { startProcess, type StartedProcess } from '@wiki/test-support/process';
import { CHART_DIR, NAMESPACE, renderChart, type K8sObject } from './helm.js';
import {
  ALERTMANAGER,
  instantQuery,
  POSTGRES_EXPORTER,
  PROMETHEUS,
  podTarget,
  prometheusMissing,
  renderedAlertmanagerConfig,
  type Sample,
} from './prometheus.js';
import { alertmanagerInvocation, exporterInvocation, prometheusInvocation } from './local-stack.js';
import { skipLoudly } from './skip.js';

// Phase 7's success criteria, for real, on one machine, for the stack tests
// (stack-*.test.ts): the chart rendered; a throwaway PostgreSQL set up as the chart's;
// two API processes started with the environment the Deployment gives its pods;
// postgres_exporter as PostgreSQL's pod runs it; and Prometheus 3.5 (from Debian's
// unstable suite, tools/fetch-prometheus.sh) started with the rendered prometheus.yml,
// rules and arguments, unchanged except that Kubernetes pod discovery is replaced by
// file discovery of the local processes, labelled as pod discovery would label them (so
// the chart's relabelling rules run as in a cluster).
//
// Phase 10 on top: Alertmanager 0.33 (same source) runs with the rendered
// alertmanager.yml and arguments, Prometheus sends it alerts, and it notifies a webhook
// served here. The chart is rendered with ci/stack-alerting-values.yaml, which shortens
// the pod-down alert's `for:` and Alertmanager's waits and names that webhook;
// everything else is the defaults. Only the Alertmanager Service's address in
// prometheus.yml is swapped for the local process's.
//
// Each stack test file starts its own stack, so each passes alone and in any order. A
// test reads what it created itself (the `creations` log), never a global total.

export const stackSkipped = (what: string) => skipLoudly(prometheusMissing() ?? postgresMissing(), what);
export const ALERTING_VALUES = join(CHART_DIR, 'ci', 'stack-alerting-values.yaml');
/** The self-monitoring target is localhost:9090, as in the pod, so this port is fixed. */
const PROMETHEUS_PORT = 9090;
export const PROMETHEUS_URL = `http://127.0.0.1:${PROMETHEUS_PORT}`;
export const POD_NAMES = ['wiki-wiki-chart-api-6d5f8c7b9-abcde', 'wiki-wiki-chart-api-6d5f8c7b9-fghij'] as const;
export const POSTGRESQL_POD = 'wiki-wiki-chart-postgresql-0';
/** The targets Prometheus scrapes: both API pods, the exporter, itself and Alertmanager. */
export const TARGETS = 5;

/** What Alertmanager's webhook receiver POSTs (https://prometheus.io/docs/alerting/latest/configuration/#webhook_config). */
export interface WebhookNotification {
  receiver: string;
  status: 'firing' | 'resolved';
  alerts: Array<{ status: 'firing' | 'resolved'; labels: Record<string, string>; annotations: Record<string, string>; startsAt: string; endsAt: string }>;
  groupLabels: Record<string, string>;
}

/** One acknowledged creation: which kind, on which pod, when (ms since the epoch). */
export interface Creation {
  kind: 'user' | 'post';
  pod: number;
  at: number;
}

/** A request gets the status it needs, or the step (and every test built on it) fails with what it got. */
async function answered(request: Promise<Response>, status: number, what: string): Promise<Response> {
  const response = await request;
  if (response.status !== status) throw new Error(`${what}: expected ${status}, got ${response.status} ${response.text}`);
  return response;
}

export class LocalStack {
  objects: K8sObject[] = [];
  workDir = '';
  prometheusArgs: string[] = [];
  postgres!: PostgresServer;
  readonly apis: ServiceProcess[] = [];
  prometheus: StartedProcess | undefined;
  alertmanager: StartedProcess | undefined;
  alertmanagerPort = 0;
  readonly notifications: WebhookNotification[] = [];
  /** Every user and post created through this stack's `createUser`/`createPost`. */
  readonly creations: Creation[] = [];
  startedAt = 0;
  private exporter: StartedProcess | undefined;
  private webhook: Server | undefined;
  private alertmanagerArgs: string[] = [];
  private outage: Promise<void> | undefined;

  /** Starts every process; `stop()` stops what did start, also after a failed start. */
  async start(): Promise<void> {
    this.startedAt = Date.now();
    if (!(await portIsFree(PROMETHEUS_PORT))) throw new Error(`port ${PROMETHEUS_PORT} is in use: stop whatever listens there (another Prometheus?)`);
    this.objects = await renderChart([ALERTING_VALUES]);
    this.workDir = await mkdtemp(join(tmpdir(), 'wiki-stack-'));

    // PostgreSQL and the two API "pods".
    this.postgres = await startChartDatabase(this.objects);
    for (let i = 0; i < POD_NAMES.length; i++) this.apis.push(await startService(this.apiEnvironment()));
    // postgres_exporter as PostgreSQL's pod runs it (phase 11), beside that server.
    const exporterPort = await freePort();
    const exporter = await exporterInvocation(this.objects, this.workDir, exporterPort, this.postgres.port);
    this.exporter = startProcess(POSTGRES_EXPORTER, exporter.args, { env: exporter.env });

    // Alertmanager: the rendered configuration and arguments, its webhook served here.
    const webhookUrl = new URL(/url: (http:\/\/127\.0\.0\.1:\d+\/\S+)/.exec(renderedAlertmanagerConfig(this.objects))![1]!);
    this.webhook = createHttpServer((request, response) => {
      let body = '';
      request.on('data', (chunk) => (body += chunk));
      request.on('end', () => {
        if (request.method === 'POST' && request.url === webhookUrl.pathname) this.notifications.push(JSON.parse(body) as WebhookNotification);
        response.end();
      });
    });
    await new Promise<void>((resolve, reject) => this.webhook!.once('error', reject).listen(Number(webhookUrl.port), '127.0.0.1', resolve));
    this.alertmanagerPort = await freePort();
    this.alertmanagerArgs = await alertmanagerInvocation(this.objects, this.workDir, this.alertmanagerPort);
    await this.startAlertmanager();

    // Prometheus: the two API pods, PostgreSQL's pod, and a pod that is not Running
    // (the chart's relabelling must drop it).
    this.prometheusArgs = await prometheusInvocation(
      this.objects,
      this.workDir,
      join(this.workDir, 'data'),
      PROMETHEUS_PORT,
      {
        apiPods: this.apis.map((api, i) => ({ address: new URL(api.baseUrl).host, pod: POD_NAMES[i]! })),
        postgresql: { exporter: `127.0.0.1:${exporterPort}`, server: `127.0.0.1:${this.postgres.port}`, pod: POSTGRESQL_POD },
        alertmanager: `127.0.0.1:${this.alertmanagerPort}`,
        namespace: NAMESPACE,
      },
      [podTarget('127.0.0.1:1', 'wiki-wiki-chart-api-6d5f8c7b9-pendng', NAMESPACE, { __meta_kubernetes_pod_phase: 'Pending' })],
    );
    await this.startPrometheus();
  }

  async stop(): Promise<void> {
    for (const daemon of [this.prometheus, this.alertmanager, this.exporter]) await daemon?.stop('SIGKILL');
    await new Promise((resolve) => (this.webhook ? this.webhook.close(resolve) : resolve(undefined)));
    await Promise.all(this.apis.map((api) => api.stop('SIGKILL')));
    await this.postgres?.destroy();
    if (this.workDir) await rm(this.workDir, { recursive: true, force: true });
  }

  /** The environment the Deployment gives an API pod, pointed at this stack's PostgreSQL. */
  apiEnvironment(): Record<string, string> {
    return { ...pointedAt(this.postgres, apiEnvironment(this.objects).api), SHUTDOWN_DELAY_SECONDS: '0' };
  }

  /** An instant query, evaluated now or at `time` (ms since the epoch). */
  query(promql: string, time?: number): Promise<Sample[]> {
    return instantQuery(PROMETHEUS_URL, promql, time);
  }

  /**
   * Starts Prometheus on this stack's data folder and waits until it is ready and has
   * scraped every target: a counter that grows before its first scrape grows unseen
   * (rate() has no earlier sample to compare).
   */
  async startPrometheus(): Promise<void> {
    const prometheus = (this.prometheus = startProcess(PROMETHEUS, this.prometheusArgs));
    await until('Prometheus to be ready', 60_000, async () => (await fetch(`${PROMETHEUS_URL}/-/ready`).catch(() => undefined))?.ok, {
      giveUpIf: () => (prometheus.exit() === undefined ? undefined : `Prometheus exited:\n${prometheus.output()}`),
    });
    await until('a first scrape of every target', 60_000, async () =>
      (await this.query('count(up == 1)'))[0]?.value[1] === String(TARGETS) ? true : undefined,
    );
  }

  /** SIGTERM, and Prometheus exits cleanly. */
  async stopPrometheus(): Promise<void> {
    const prometheus = this.prometheus;
    if (prometheus === undefined || prometheus.exit() !== undefined) return;
    const exit = await prometheus.stop('SIGTERM');
    if (exit.code !== 0) throw new Error(`Prometheus exited with ${JSON.stringify(exit)}:\n${prometheus.output()}`);
  }

  async startAlertmanager(): Promise<void> {
    const alertmanager = (this.alertmanager = startProcess(ALERTMANAGER, this.alertmanagerArgs));
    await until('Alertmanager to be ready', 60_000, async () => (await fetch(`http://127.0.0.1:${this.alertmanagerPort}/-/ready`).catch(() => undefined))?.ok, {
      giveUpIf: () => (alertmanager.exit() === undefined ? undefined : `Alertmanager exited:\n${alertmanager.output()}`),
    });
  }

  /** The notifications so far for one alert (by name, and pod if given), each with that alert's part. */
  notified(alertname: string, pod?: string) {
    return this.notifications.flatMap((notification) =>
      notification.alerts
        .filter((alert) => alert.labels.alertname === alertname && (pod === undefined || alert.labels.pod === pod))
        .map((alert) => ({ notification, alert })),
    );
  }

  /** Creates a user on pod `pod` (0 or 1), logged in `creations`; returns its id. */
  async createUser(pod: number, name: string): Promise<number> {
    const response = await answered(client(this.apis[pod]!.baseUrl).post('/users', { name }), 200, 'creating a user');
    this.creations.push({ kind: 'user', pod, at: Date.now() });
    return response.body.id;
  }

  /** Creates a post on pod `pod` (0 or 1), logged in `creations`. */
  async createPost(pod: number, userId: number, content: string): Promise<void> {
    await answered(client(this.apis[pod]!.baseUrl).post('/posts', { user_id: userId, content }), 200, 'creating a post');
    this.creations.push({ kind: 'post', pod, at: Date.now() });
  }

  /**
   * Once per stack: reads and 404s on both pods, then PostgreSQL stopped for 20 s
   * while both pods keep answering a read a second with 503, then reads and 404s again
   * once it is back: traffic of every kind the dashboards show, and availability
   * budget spent. Each kind keeps coming for longer than a scrape interval: a counter
   * series that first appears already at its final value has a rate() of 0
   * (Prometheus never saw it grow). The reads before it are enough on their own for
   * the hour to hold the burn-rate alerts' alerting.minimumRequests (100): on a stack
   * that served nothing else, too few requests would keep the outage from paging.
   */
  databaseOutage(): Promise<void> {
    return (this.outage ??= this.runDatabaseOutage());
  }

  private async runDatabaseOutage(): Promise<void> {
    const userIds: number[] = [];
    for (let i = 0; i < 5; i++) userIds.push(await this.createUser(i % 2, `outage reader ${i}`));
    const pods = this.apis.map((api) => client(api.baseUrl));
    const readsAnd404s = async () => {
      for (const api of pods) {
        for (const id of userIds) await answered(api.get(`/user/${id}`), 200, 'reading a user');
        await answered(api.get('/user/2147483646'), 404, 'reading a missing user');
      }
    };
    await readsAnd404s();
    // Their series exist now; once Prometheus has scraped them, what follows is an
    // increase it sees.
    await until('the reads and 404s scraped', 60_000, async () =>
      (await this.query('count(http_requests_total{job="wiki-api", route="/user/:id", status_code=~"200|404"})'))[0]?.value[1] === '4' ? true : undefined,
    );
    for (let round = 0; round < 9; round++) await readsAnd404s(); // 2 pods x 6 requests x 9
    await this.postgres.stop();
    const outageEnds = Date.now() + 20_000;
    while (Date.now() < outageEnds) {
      for (const api of pods) await answered(api.get(`/user/${userIds[0]}`), 503, 'reading during the outage');
      await sleep(1000); // the pace of the traffic, not a wait for anything
    }
    await this.postgres.start();
    for (const api of pods) await until('the API back on PostgreSQL', 30_000, async () => ((await api.get('/ready')).status === 200 ? true : undefined));
    await readsAnd404s();
  }
}
