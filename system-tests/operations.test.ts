import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client } from '@wiki/test-support/http';
import { findPostgresBinaries, type PostgresServer } from '@wiki/test-support/postgres';
import { runNode, SERVER_SCRIPT, startService, type ServiceProcess } from 'wiki-service/service-process';
import { everything, type Post, type User } from '@wiki/test-support/api';
import { runCommand } from '@wiki/test-support/run-command';
import { sleep, until } from '@wiki/test-support/wait';
import {
  apiEnvironment,
  asRole,
  generatedDatabaseSecret,
  pointedAt,
  postgresMissing,
  startChartDatabase,
  startPasswordsContainer,
} from './support/chart-env.js';
import { componentObject } from './support/rendered.js';
import { REPO_ROOT, renderChart, type K8sObject } from './support/helm.js';
import { skipLoudly } from './support/skip.js';

// docs/OPERATIONS.md's procedures that touch data, run for real: PostgreSQL servers set
// up as the chart's (its user, database and generated password), the real service
// with the environment the chart gives it, and the PostgreSQL client tools of the
// same version as the chart's image (pg_dump, pg_restore).

const skip = skipLoudly(postgresMissing(), 'the operations tests are');
const OPERATIONS = readFileSync(join(REPO_ROOT, 'docs', 'OPERATIONS.md'), 'utf8');
/** The API's init container's command (wait-for-database), beside the server's. */
const WAIT_SCRIPT = SERVER_SCRIPT.replace(/server\.js$/, 'wait-for-database.js');

/** The ```sql blocks of docs/OPERATIONS.md, in order. */
function documentedSql(): string[] {
  return [...OPERATIONS.matchAll(/```sql\n([\s\S]*?)```/g)].map((match) => match[1]!);
}

async function asUser(server: PostgresServer, env: Record<string, string>, sql: string): Promise<void> {
  await asRole(server, env.PGUSER!, env.PGPASSWORD!, env.PGDATABASE!, sql);
}

describe.skipIf(skip)("docs/OPERATIONS.md, run against real PostgreSQL servers set up as the chart's", () => {
  let env: Record<string, string>;
  let workDir: string;
  const servers: PostgresServer[] = [];
  const services: ServiceProcess[] = [];
  const pgBin = (tool: string) => join(findPostgresBinaries()!, tool);

  let objects: K8sObject[];
  let initEnv: Record<string, string>;
  /** The API's key in the database Secret (postgresql.auth.secretKey). */
  let apiKey: string;
  const stopAfterwards: Array<() => Promise<void>> = [];

  /** A server set up as the chart's, its API role's password that of `withEnv`. */
  async function database(withEnv: Record<string, string>): Promise<PostgresServer> {
    const server = await startChartDatabase(objects, { API_PASSWORD: withEnv.PGPASSWORD! });
    servers.push(server);
    return server;
  }

  async function api(server: PostgresServer, withEnv: Record<string, string>, port?: number): Promise<ServiceProcess> {
    const service = await startService({ ...pointedAt(server, withEnv), SHUTDOWN_DELAY_SECONDS: '0' }, { port });
    services.push(service);
    return service;
  }

  beforeAll(async () => {
    objects = await renderChart();
    ({ api: env, init: initEnv } = apiEnvironment(objects));
    apiKey = componentObject(objects, 'Deployment', 'api')!.spec.template.spec.containers[0].env.find(
      (variable: { name: string }) => variable.name === 'PGPASSWORD',
    ).valueFrom.secretKeyRef.key;
    workDir = await mkdtemp(join(tmpdir(), 'wiki-operations-'));
  });
  afterAll(async () => {
    for (const stop of stopAfterwards) await stop();
    await Promise.all(services.map((service) => service.stop('SIGKILL')));
    await Promise.all(servers.map((server) => server.destroy()));
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  it('section 3: a pg_dump restored with pg_restore --clean --if-exists --no-owner --single-transaction into a fresh release has every user and post, and ids go on', async () => {
    // The running release, with a history: renames, edits, deletions.
    const source = await database(env);
    const before = await api(source, env);
    const http = client(before.baseUrl);
    const userIds: number[] = [];
    for (let i = 0; i < 25; i++) userIds.push((await http.post('/users', { name: `user ${i} ✓ "quoted" 'and' émoji 🎉` })).body.id);
    const postIds: number[] = [];
    for (let i = 0; i < 40; i++) postIds.push((await http.post('/posts', { user_id: userIds[i % 25], content: `post ${i}\nsecond line` })).body.post_id);
    for (const id of userIds.slice(0, 3)) expect((await http.patch(`/users/${id}`, { name: `renamed ${id}` })).status).toBe(200);
    for (const id of postIds.slice(0, 2)) expect((await http.patch(`/posts/${id}`, { content: `edited ${id}` })).status).toBe(200);
    for (const id of userIds.slice(20, 22)) expect((await http.delete(`/users/${id}`)).status).toBe(204);
    for (const id of postIds.slice(5, 8)) expect((await http.delete(`/posts/${id}`)).status).toBe(204);
    const users = await everything<User>(before.baseUrl, '/users');
    const posts = await everything<Post>(before.baseUrl, '/posts');
    expect(users).toHaveLength(23);
    expect(posts.length).toBeGreaterThan(30);

    // The backup, as `kubectl exec ... pg_dump -U wiki -d wiki --format=custom --exclude-schema=backup` takes it (the
    // API's role may not read the backup records' schema, and a dump must not hold them).
    const dump = join(workDir, 'wiki.dump');
    const asSource = { ...process.env, PGPASSWORD: env.PGPASSWORD };
    await runCommand(
      pgBin('pg_dump'),
      ['-h', '127.0.0.1', '-p', String(source.port), '-U', env.PGUSER!, '-d', env.PGDATABASE!, '--format=custom', '--exclude-schema=backup', '-f', dump],
      { env: asSource },
    );
    expect(OPERATIONS).toContain('pg_dump -U wiki -d wiki --format=custom --exclude-schema=backup');

    // A fresh release: its own server and generated password; its API created the
    // empty tables, then was scaled to 0.
    const freshEnv: Record<string, string> = { ...env, PGPASSWORD: 'the-fresh-release-generated-password' };
    const target = await database(freshEnv);
    const first = await api(target, freshEnv);
    expect((await everything<User>(first.baseUrl, '/users')).length).toBe(0);
    await first.stop();

    await runCommand(
      pgBin('pg_restore'),
      [
        '-h',
        '127.0.0.1',
        '-p',
        String(target.port),
        '-U',
        freshEnv.PGUSER!,
        '-d',
        freshEnv.PGDATABASE!,
        '--clean',
        '--if-exists',
        '--no-owner',
        '--single-transaction',
        '--exit-on-error',
        dump,
      ],
      { env: { ...process.env, PGPASSWORD: freshEnv.PGPASSWORD } },
    );
    expect(OPERATIONS).toContain('pg_restore -U wiki -d wiki --clean --if-exists --no-owner --single-transaction --exit-on-error');

    // Scaled back up: the schema is found up to date, and everything is there.
    const after = await api(target, freshEnv);
    expect(after.logLines().some((line) => line.msg === 'schema up to date')).toBe(true);
    expect(await everything<User>(after.baseUrl, '/users')).toEqual(users);
    expect(await everything<Post>(after.baseUrl, '/posts')).toEqual(posts);
    // The sequences came along: the next user gets the next id, not 1 (nor a deleted one's).
    const next = (await client(after.baseUrl).post('/users', { name: 'after the restore' })).body;
    expect(next.id).toBe(Math.max(...userIds) + 1);
  });

  it('section 2: the expand step leaves the running release working; renaming a column in one step breaks it', async () => {
    const [expand, renameInOneStep] = documentedSql();
    expect(expand).toContain('ADD COLUMN');
    expect(renameInOneStep).toContain('RENAME COLUMN');
    const server = await database(env);
    const running = await api(server, env); // the previous release, schema migrated
    const http = client(running.baseUrl);

    await asUser(server, env, expand!);
    const user = (await http.post('/users', { name: 'created after the expand' })).body;
    expect(user.id).toBeGreaterThan(0);
    expect((await http.get(`/user/${user.id}`)).body).toEqual(user);
    expect((await http.patch(`/users/${user.id}`, { name: 'renamed after the expand' })).status).toBe(200);
    expect((await everything<User>(running.baseUrl, '/users')).map((candidate) => candidate.name)).toEqual(['renamed after the expand']);
    const post = (await http.post('/posts', { user_id: user.id, content: 'still works' })).body;
    expect((await http.get(`/posts/${post.post_id}`)).status).toBe(200);
    expect((await http.delete(`/users/${user.id}`)).status).toBe(204);
    expect((await http.get(`/posts/${post.post_id}`)).status).toBe(404);

    await asUser(server, env, renameInOneStep!);
    expect((await http.post('/users', { name: 'after the rename' })).status).toBe(500);
    expect((await http.get('/user/1')).status).toBe(500);
  });

  it(
    'section 4: the password rotated under load from 8 writers, by the Secret and a restart: no 500, every acknowledged user kept',
    { timeout: 120_000 },
    async () => {
      const server = await database(env);
      // PostgreSQL's passwords container, watching the Secret the pods were started with.
      const secretData = { ...generatedDatabaseSecret(objects)!.data, [apiKey]: Buffer.from(env.PGPASSWORD!).toString('base64') };
      const passwords = await startPasswordsContainer(server, objects, secretData);
      stopAfterwards.push(passwords.stop);
      const pods = [await api(server, env), await api(server, env)];
      // A stand-in for the API Service: requests go to the pods that are in it; a pod
      // leaves it before it stops (its readiness turns 503) and joins once it answers.
      const inService = new Set([0, 1]);
      const acknowledged = new Map<number, string>();
      const statuses = new Map<number, number>();
      const failures: string[] = [];
      // Per pod: requests sent and not yet answered, and users acknowledged.
      const inFlight = [0, 0];
      const acknowledgedBy = [0, 0];
      let running = true;
      const writer = async (w: number) => {
        for (let n = 0; running; n++) {
          const candidates = [...inService];
          const index = candidates[n % candidates.length]!;
          const pod = pods[index]!;
          const name = `writer ${w} user ${n}`;
          inFlight[index]!++;
          try {
            const response = await fetch(`${pod.baseUrl}/users`, {
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify({ name }),
              signal: AbortSignal.timeout(10_000),
            });
            statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
            const body = (await response.json()) as { id: number };
            if (response.status === 200) {
              // An id acknowledged twice: a committed row lost, its id handed out again.
              if (acknowledged.has(body.id)) failures.push(`user id ${body.id} acknowledged twice: ${acknowledged.get(body.id)}, then ${name}`);
              acknowledged.set(body.id, name);
              acknowledgedBy[index]!++;
            } else if (response.status === 503)
              await sleep(50); // a client retrying after Retry-After, sooner
            else failures.push(`${response.status} ${JSON.stringify(body)}`);
          } catch (error) {
            failures.push(`${pod.baseUrl}: ${(error as Error).message}`);
          } finally {
            inFlight[index]!--;
          }
        }
      };
      const writers = Array.from({ length: 8 }, (_, w) => writer(w));
      await until('writes acknowledged by every pod', 30_000, () => Math.min(...acknowledgedBy) > 10);

      // The documented commands: the Secret patched, then the API restarted.
      const newPassword = 'rotated-password-0f3a9c';
      expect(OPERATIONS).toContain('kubectl patch secret -n wiki wiki-wiki-chart-database --type merge');
      expect(OPERATIONS).toContain('kubectl rollout restart -n wiki deployment/wiki-wiki-chart-api');
      // A new pod's init container, started before PostgreSQL has the new password (the
      // rollout may start one first): it waits, refused, until the Secret's change reaches
      // PostgreSQL, and then lets the pod start.
      const initContainer = runNode(WAIT_SCRIPT, pointedAt(server, { ...initEnv, PGPASSWORD: newPassword }));
      await until('the init container refused, waiting', 20_000, () => initContainer.logLines().some((line) => line.msg === 'waiting for the database'));
      await passwords.setKey(apiKey, newPassword);
      expect((await initContainer.exited).code).toBe(0);
      expect(initContainer.logLines().some((line) => line.msg === 'database is ready')).toBe(true);
      expect(passwords.output()).toContain("passwords: the database Secret changed: every role's password is now the Secret's");
      // The worst case after it: every session of the old password ended, so every pod
      // must log in again, with the password it still has, and is refused.
      await server.terminateBackends(env.PGDATABASE!);
      await until('the old password refused', 30_000, () => (statuses.get(503) ?? 0) > 0);
      const refusedBeforeRestart = statuses.get(503) ?? 0;

      // The restart: the pods replaced one at a time, with the new password. Each leaves the
      // Service, its requests already sent finish, it restarts, and it is back in once
      // it has acknowledged writes again.
      for (const index of [0, 1]) {
        inService.delete(index);
        await until(`pod ${index}'s requests in flight to finish`, 15_000, () => inFlight[index] === 0);
        const port = Number(new URL(pods[index]!.baseUrl).port);
        await pods[index]!.stop();
        pods[index] = await api(server, { ...env, PGPASSWORD: newPassword }, port);
        const before = acknowledgedBy[index]!;
        inService.add(index);
        await until(`pod ${index} serving with the new password`, 30_000, () => acknowledgedBy[index]! - before > 10);
      }
      running = false;
      await Promise.all(writers);

      console.log(
        `password rotation under load: ${acknowledged.size} users acknowledged, statuses ${JSON.stringify(Object.fromEntries(statuses))}, ` +
          `${refusedBeforeRestart} answers 503 while the old pods still had the old password`,
      );
      expect(failures).toEqual([]);
      expect(statuses.get(500)).toBeUndefined();
      expect(acknowledged.size).toBeGreaterThan(50);
      const stored = await server.query<{ id: number; name: string }>(`SELECT id, name FROM users`, env.PGDATABASE);
      const byId = new Map(stored.map((row) => [row.id, row.name]));
      const lost = [...acknowledged].filter(([id, name]) => byId.get(id) !== name);
      expect(lost).toEqual([]);
    },
  );
});
