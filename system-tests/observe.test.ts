import { execSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresMissing } from './support/chart-env.js';
import { REPO_ROOT } from './support/helm.js';
import { activeTargets, prometheusMissing } from './support/prometheus.js';
import { skipLoudly } from './support/skip.js';
import { startProcess, type StartedProcess } from '@wiki/test-support/process';
import { until } from '@wiki/test-support/wait';

// `npm run observe`, as README tells a newcomer to run it: the service, PostgreSQL,
// Prometheus and Alertmanager started locally; the database stopped and started by
// typing, and the alerts seen firing and resolving in what it prints. Ctrl-C (SIGINT
// to the whole process group, as a terminal sends it) stops everything.

const skip = skipLoudly(prometheusMissing() ?? postgresMissing(), 'the observe test is');
// The database alerts after 15 s instead of 2 minutes; everything else the defaults.
const SHORT_FOR = ['--set', 'alerting.for.PostgresqlDown=15s', '--set', 'alerting.for.WikiApiDatabaseUnreachable=15s'];

describe.skipIf(skip)('npm run observe', () => {
  // Started in beforeAll, never while the file is collected: vitest runs a describe's
  // body even when it skips or filters the suite, and then never runs afterAll, which
  // left the stack's ports taken for the next file.
  let observe: StartedProcess;
  const output = () => observe.output();
  beforeAll(() => {
    observe = startProcess('npm', ['run', 'observe', '--', ...SHORT_FOR], { cwd: REPO_ROOT, ownGroup: true, input: true });
  });
  const printed = (what: string, pattern: RegExp, timeoutMs: number) =>
    until(what, timeoutMs, () => pattern.test(output()), {
      giveUpIf: () => (observe.exit() === undefined ? undefined : 'observe exited'),
    }).catch((error: unknown) => {
      throw new Error(`${String(error)}\n--- observe printed:\n${output()}`);
    });

  afterAll(async () => {
    // The whole group: npm, observe, and everything observe started.
    if (observe?.exit() === undefined) observe?.signalGroup('SIGKILL');
  });

  it(
    'starts the stack, says where to look, and shows the database alerts firing and resolving as the database stops and starts; Ctrl-C stops it all',
    { timeout: 600_000 },
    async () => {
      await printed('observe to be ready', /observe: ready/, 180_000);
      for (const url of [
        'http://localhost:8001/docs',
        'http://localhost:8002/docs',
        'http://localhost:9090/api/v1/targets',
        'http://localhost:9090/api/v1/alerts',
        'http://localhost:9093/api/v2/alerts',
      ]) {
        expect(output(), 'it prints each address').toContain(url);
        expect((await fetch(url)).status, url).toBe(200);
      }
      const targets = await activeTargets('http://localhost:9090');
      expect(targets.map((target) => target.labels.job).sort()).toEqual(['alertmanager', 'postgresql', 'prometheus', 'wiki-api', 'wiki-api']);
      expect(targets.every((target) => target.health === 'up')).toBe(true);
      // The promtool command it prints, run as printed.
      const promtoolCommand = /^\s*(\S*promtool query instant .*)$/m.exec(output())?.[1];
      expect(promtoolCommand, 'it prints a promtool query').toBeDefined();
      expect(execSync(promtoolCommand!, { cwd: REPO_ROOT, encoding: 'utf8' })).toMatch(/wiki-api-1/);
      const amtoolCommand = /^\s*(\S*amtool alert query .*)$/m.exec(output())?.[1];
      expect(amtoolCommand, 'it prints an amtool query').toBeDefined();
      // Alertmanager has the Watchdog once Prometheus has evaluated the rules and sent it.
      await until('amtool to list the Watchdog', 90_000, async () =>
        /Watchdog/.test(execSync(amtoolCommand!, { cwd: REPO_ROOT, encoding: 'utf8' })) ? true : undefined,
      );
      expect(
        (await fetch('http://localhost:8001/users', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"name":"observer"}' })).status,
      ).toBe(200);

      observe.write('stop\n');
      await printed('PostgreSQL stopped', /observe: PostgreSQL stopped/, 30_000);
      expect((await fetch('http://localhost:8001/user/1')).status).toBe(503);
      await printed('PostgresqlDown firing', /alert PostgresqlDown \(.*\): firing/, 180_000);
      await printed('WikiApiDatabaseUnreachable firing', /alert WikiApiDatabaseUnreachable: firing/, 180_000);

      observe.write('start\n');
      await printed('PostgresqlDown resolved', /alert PostgresqlDown \(.*\): resolved/, 180_000);
      await printed('WikiApiDatabaseUnreachable resolved', /alert WikiApiDatabaseUnreachable: resolved/, 180_000);
      expect((await fetch('http://localhost:8001/user/1')).status).toBe(200);

      observe.signalGroup('SIGINT');
      // npm, interrupted too, ends by the signal as it does at a terminal; observe
      // stops every process it started and exits 0.
      expect(await observe.exited).toEqual({ code: null, signal: 'SIGINT' });
      await until('observe to say it stopped everything', 60_000, () => /observe: stopped everything/.test(output()));
      for (const url of ['http://localhost:8001/health', 'http://localhost:8002/health', 'http://localhost:9090/-/ready', 'http://localhost:9093/-/ready']) {
        await until(`${url} to stop answering after Ctrl-C`, 60_000, async () =>
          (await fetch(url).then(
            () => false,
            () => true,
          ))
            ? true
            : undefined,
        );
      }
    },
  );
});
