import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client } from '@wiki/test-support/http';
import { runCommand } from '@wiki/test-support/run-command';
import { startService } from 'wiki-service/service-process';
import { until } from '@wiki/test-support/wait';
import { NAMESPACE } from './support/helm.js';
import { activeTargets, AMTOOL } from './support/prometheus.js';
import { LocalStack, POD_NAMES, PROMETHEUS_URL, stackSkipped } from './support/stack.js';

// Phase 10 on the local stack (support/stack.ts): the rendered rules fire in Prometheus,
// Alertmanager routes them with the rendered configuration, and the webhook the test
// serves receives them.

const skip = stackSkipped('the alerting stack test is');

describe.skipIf(skip)('the stack, alerting: Prometheus and Alertmanager from the rendered chart, notifying a webhook', () => {
  const stack = new LocalStack();
  beforeAll(() => stack.start());
  afterAll(() => stack.stop());

  it("the Watchdog fires from the start and reaches Alertmanager, routed to the dead man's switch", async () => {
    const active = await until('the Watchdog active in Alertmanager', 90_000, async () => {
      const alerts = (await (
        await fetch(`http://127.0.0.1:${stack.alertmanagerPort}/api/v2/alerts?filter=${encodeURIComponent('alertname="Watchdog"')}`)
      ).json()) as Array<{
        labels: Record<string, string>;
        receivers: Array<{ name: string }>;
        status: { state: string };
      }>;
      return alerts.length > 0 ? alerts : undefined;
    });
    expect(active).toHaveLength(1);
    expect(active[0]!.labels).toMatchObject({ alertname: 'Watchdog', severity: 'none' });
    expect(active[0]!.status.state).toBe('active');
    expect(active[0]!.receivers.map((receiver) => receiver.name)).toEqual(['dead-mans-switch']);
    const firing = (
      (await (await fetch(`${PROMETHEUS_URL}/api/v1/alerts`)).json()) as { data: { alerts: Array<{ labels: Record<string, string>; state: string }> } }
    ).data.alerts;
    expect(firing.filter((alert) => alert.labels.alertname === 'Watchdog').map((alert) => alert.state)).toEqual(['firing']);
  });

  it('a PostgreSQL outage pages: the availability fast-burn alert reaches the webhook through Alertmanager', async () => {
    await stack.databaseOutage();
    // About 40 requests answered 503 in 20 s, of a few hundred at most: far over
    // 14.4 x the 0.5% budget, over both 5 minutes and the hour (which holds only this
    // stack's traffic).
    const { notification, alert } = await until(
      'WikiApiAvailabilityBudgetFastBurn notified',
      90_000,
      async () => stack.notified('WikiApiAvailabilityBudgetFastBurn')[0],
    );
    expect(notification.receiver).toBe('stack-test');
    expect(alert.status).toBe('firing');
    expect(alert.labels).toMatchObject({ severity: 'page', job: 'wiki-api' });
    expect(alert.annotations.summary).toMatch(/^The API is using its availability error budget fast: [\d.]+% of requests answered with a 5xx$/);
    expect(alert.annotations.runbook_url).toMatch(/PHASE10_ALERTING\.md#wikiapiavailabilitybudgetfastburn$/);
  });

  it(
    'killing one API pod makes its target down while the other keeps serving; the pod-down alert reaches the webhook, then its resolution',
    { timeout: 240_000 },
    async () => {
      const killedAddress = new URL(stack.apis[1]!.baseUrl);
      await stack.apis[1]!.stop('SIGKILL');
      const targets = await until('the killed pod to be down', 60_000, async () => {
        const active = await activeTargets(PROMETHEUS_URL);
        const killed = active.find((target) => target.labels.pod === POD_NAMES[1]);
        const survivor = active.find((target) => target.labels.pod === POD_NAMES[0]);
        return killed?.health === 'down' && survivor?.health === 'up' ? active : undefined;
      });
      expect(targets.find((target) => target.labels.pod === POD_NAMES[0])?.health).toBe('up');
      const [up] = await stack.query(`up{pod="${POD_NAMES[1]}"}`);
      expect(up?.value[1]).toBe('0');
      expect((await client(stack.apis[0]!.baseUrl).post('/users', { name: 'still served' })).status).toBe(200);

      // Down for the `for:` of ci/stack-alerting-values.yaml (15 s), then Prometheus
      // fires, Alertmanager groups (1 s) and notifies the webhook.
      const killedAt = Date.now();
      const [firing] = await until('WikiApiPodDown notified', 120_000, async () => {
        const found = stack.notified('WikiApiPodDown', POD_NAMES[1]).filter(({ alert }) => alert.status === 'firing');
        return found.length > 0 ? found : undefined;
      });
      console.log(`pod-down alert notified ${((Date.now() - killedAt) / 1000).toFixed(1)} s after the kill`);
      expect(firing!.notification.receiver).toBe('stack-test');
      expect(firing!.notification.groupLabels).toEqual({ alertname: 'WikiApiPodDown', namespace: NAMESPACE });
      expect(firing!.alert.labels).toEqual({
        alertname: 'WikiApiPodDown',
        severity: 'ticket',
        job: 'wiki-api',
        namespace: NAMESPACE,
        pod: POD_NAMES[1],
        instance: killedAddress.host,
      });
      expect(firing!.alert.annotations).toEqual({
        summary: `API pod ${POD_NAMES[1]} is down`,
        description: `Prometheus has failed to scrape API pod ${POD_NAMES[1]} in ${NAMESPACE} for 15s. The other pods still serve, with less headroom. First: \`kubectl describe -n ${NAMESPACE} pod ${POD_NAMES[1]}\` (events, restarts, probe failures) and its logs.`,
        runbook_url: 'https://example.invalid/wiki/docs/PHASE10_ALERTING.md#wikiapipoddown',
      });
      // Only the killed pod.
      expect(stack.notified('WikiApiPodDown', POD_NAMES[0])).toEqual([]);

      // The container restarts in the same pod: same address. Prometheus scrapes it,
      // the alert resolves, and Alertmanager says so (send_resolved).
      stack.apis[1] = await startService(stack.apiEnvironment(), { port: Number(killedAddress.port) });
      const restartedAt = Date.now();
      const [resolved] = await until('WikiApiPodDown resolved', 120_000, async () => {
        const found = stack.notified('WikiApiPodDown', POD_NAMES[1]).filter(({ alert }) => alert.status === 'resolved');
        return found.length > 0 ? found : undefined;
      });
      console.log(`resolution notified ${((Date.now() - restartedAt) / 1000).toFixed(1)} s after the restart`);
      expect(resolved!.alert.labels).toEqual(firing!.alert.labels);
      expect(resolved!.alert.startsAt).toBe(firing!.alert.startsAt);
      expect(Date.parse(resolved!.alert.endsAt)).toBeGreaterThan(Date.parse(resolved!.alert.startsAt));
      const [upAgain] = await stack.query(`up{pod="${POD_NAMES[1]}"}`);
      expect(upAgain?.value[1]).toBe('1');
    },
  );

  it('the silence commands of docs/PHASE10_ALERTING.md work against Alertmanager', async () => {
    const url = `--alertmanager.url=http://127.0.0.1:${stack.alertmanagerPort}`;
    const id = await runCommand(AMTOOL, [
      url,
      'silence',
      'add',
      'alertname=WikiApiPodDown',
      `pod=${POD_NAMES[0]}`,
      '--duration=2h',
      '--comment=replacing the node',
      '--author=alice',
    ]);
    expect(id.trim()).toMatch(/^[0-9a-f-]{36}$/);
    const listed = await runCommand(AMTOOL, [url, 'silence', 'query']);
    expect(listed).toContain(id.trim());
    expect(listed).toContain('replacing the node');
    await runCommand(AMTOOL, [url, 'silence', 'expire', id.trim()]);
    expect(await runCommand(AMTOOL, [url, 'silence', 'query'])).not.toContain(id.trim());
  });

  it(
    "with Alertmanager stopped, Prometheus's failing notifications and Alertmanager's absence fire; the first reaches the webhook once it is back",
    { timeout: 360_000 },
    async () => {
      const firing = async (alertname: string) => (await stack.query(`ALERTS{alertname="${alertname}", alertstate="firing"}`)).length > 0;
      expect(await firing('PrometheusNotificationsFailing')).toBe(false);
      await stack.alertmanager!.stop('SIGKILL');
      // Prometheus sends (the Watchdog at least) every minute: the next send fails, its
      // own scrape counts the failure, the next evaluation fires.
      await until('PrometheusNotificationsFailing and AlertmanagerDown firing in Prometheus', 150_000, async () =>
        (await firing('PrometheusNotificationsFailing')) && (await firing('AlertmanagerDown')) ? true : undefined,
      );
      expect(stack.notified('PrometheusNotificationsFailing')).toEqual([]);
      await stack.startAlertmanager();
      // Back on the same address and volume: the next send delivers what still fires.
      // The failure ratio's 5-minute window keeps PrometheusNotificationsFailing firing
      // for minutes; AlertmanagerDown resolves at the next scrape, before any send can
      // reach this Alertmanager (only another one would carry it: PHASE10's runbook).
      const restartedAt = Date.now();
      await until('PrometheusNotificationsFailing at the webhook', 180_000, async () =>
        stack.notified('PrometheusNotificationsFailing').length > 0 ? true : undefined,
      );
      console.log(`PrometheusNotificationsFailing notified ${((Date.now() - restartedAt) / 1000).toFixed(1)} s after Alertmanager was back`);
      const { alert } = stack.notified('PrometheusNotificationsFailing')[0]!;
      expect(alert.labels).toMatchObject({ severity: 'ticket', job: 'prometheus' });
      expect(alert.labels.alertmanager).toContain(`127.0.0.1:${stack.alertmanagerPort}`);
    },
  );
});
