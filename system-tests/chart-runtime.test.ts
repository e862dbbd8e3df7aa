import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client } from '@wiki/test-support/http';
import type { PostgresServer } from '@wiki/test-support/postgres';
import { MIGRATE_SCRIPT, runNode, SERVER_SCRIPT, startService, type ServiceProcess } from 'wiki-service/service-process';
import { runCommand } from '@wiki/test-support/run-command';
import { apiEnvironment, pointedAt, postgresMissing, startChartDatabase } from './support/chart-env.js';
import { renderChart, type K8sObject } from './support/helm.js';
import { skipLoudly } from './support/skip.js';

// The rendered configuration really works: the API container's environment, exactly
// as the Deployment gives it (ConfigMap + Secret), with only the database host and
// port pointed at a throwaway local PostgreSQL that is set up the way the chart's
// PostgreSQL would be (the chart's database name, user and generated password).

const WAIT_SCRIPT = SERVER_SCRIPT.replace(/server\.js$/, 'wait-for-database.js');

const skip = skipLoudly(postgresMissing(), "the tests of the chart's rendered configuration are");

describe.skipIf(skip)('the API with the environment the chart gives it', () => {
  let postgres: PostgresServer;
  let objects: K8sObject[];
  let env: Record<string, string>;
  let initEnv: Record<string, string>;

  beforeAll(async () => {
    objects = await renderChart();
    ({ api: env, init: initEnv } = apiEnvironment(objects));
    postgres = await startChartDatabase(objects);
  });
  afterAll(async () => {
    await postgres?.destroy();
  });

  const pointedAtLocalPostgres = (variables: Record<string, string>) => pointedAt(postgres, variables);

  it('sets what the service needs and nothing it would reject', () => {
    expect(Object.keys(env).sort()).toEqual(
      [
        'DB_POOL_MAX',
        'HOST',
        'LOG_LEVEL',
        'MIGRATE_ON_START',
        'PGDATABASE',
        'PGHOST',
        'PGPASSWORD',
        'PGPORT',
        'PGUSER',
        'PORT',
        'SHUTDOWN_DELAY_SECONDS',
        'SHUTDOWN_TIMEOUT_SECONDS',
      ].sort(),
    );
    expect(env.PGHOST).toBe('wiki-wiki-chart-postgresql');
    expect(initEnv).toEqual(env);
  });

  it("the init container's command succeeds once the database accepts the login", async () => {
    const wait = runNode(WAIT_SCRIPT, pointedAtLocalPostgres(initEnv));
    expect((await wait.exited).code).toBe(0);
    expect(wait.logLines().some((line) => line.msg === 'database is ready')).toBe(true);
  });

  it("the init container's command fails after its timeout when the login is refused", async () => {
    const wait = runNode(WAIT_SCRIPT, { ...pointedAtLocalPostgres(initEnv), PGPASSWORD: 'wrong' }, { args: ['3'] });
    expect((await wait.exited).code).toBe(1);
    expect(wait.output()).toContain('password authentication failed');
    expect(wait.logLines().some((line) => line.msg === 'database not ready in time')).toBe(true);
  });

  describe('the built service started with it', () => {
    let service: ServiceProcess;
    beforeAll(async () => {
      service = await startService({ ...pointedAtLocalPostgres(env), SHUTDOWN_DELAY_SECONDS: '0' });
    });
    afterAll(async () => {
      await service?.stop();
    });

    it('migrates the empty database at start-up', async () => {
      expect(service.logLines().some((line) => line.msg === 'migrations applied')).toBe(true);
      const tables = await postgres.query<{ tablename: string }>("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1", env.PGDATABASE);
      expect(tables.map((row) => row.tablename)).toEqual(['kysely_migration', 'kysely_migration_lock', 'posts', 'users']);
    });

    it('serves the original endpoints', async () => {
      const api = client(service.baseUrl);
      const user = await api.post('/users', { name: 'from the chart' });
      expect(user.status).toBe(200);
      expect((await api.get(`/user/${user.body.id}`)).body).toEqual(user.body);
      const post = await api.post('/posts', { user_id: user.body.id, content: 'deployed' });
      expect(post.status).toBe(200);
      expect((await api.get(`/posts/${post.body.post_id}`)).body).toEqual(post.body);
      expect((await api.get('/user/2147483647')).body).toEqual({ detail: 'User not found' });
      expect((await api.get('/')).body.message).toBe('User and Post API');
      expect((await api.get('/ready')).status).toBe(200);
      expect((await api.get('/metrics')).text).toMatch(/^users_created_total 1$/m);
    });

    it("the helm test pod's script passes against it", async () => {
      const testPod = objects.find((object) => object.kind === 'Pod' && object.metadata.annotations?.['helm.sh/hook'] === 'test')!;
      const [command, ...args] = testPod.spec.containers[0].command as string[];
      expect(command).toBe('node');
      const stdout = await runCommand(process.execPath, args, { env: { API_URL: service.baseUrl } });
      expect(stdout).toMatch(/^ok: created and read back user \d+$/m);
    });

    it("the helm test pod's script fails when the API misbehaves", async () => {
      const testPod = objects.find((object) => object.kind === 'Pod' && object.metadata.annotations?.['helm.sh/hook'] === 'test')!;
      const [, ...args] = testPod.spec.containers[0].command as string[];
      await expect(runCommand(process.execPath, args, { env: { API_URL: `${service.baseUrl}/no-such-prefix` } })).rejects.toThrow(/POST \/users answered 404/);
    });

    it('logs the database it uses without the password', () => {
      expect(service.output()).toContain(`postgresql://${env.PGUSER}@127.0.0.1:${postgres.port}/${env.PGDATABASE}`);
      expect(service.output()).not.toContain(env.PGPASSWORD);
    });

    it('`npm run migrate` with the same environment finds nothing to do, the service having migrated', async () => {
      const migrate = runNode(MIGRATE_SCRIPT, pointedAtLocalPostgres(env));
      expect((await migrate.exited).code).toBe(0);
      expect(migrate.logLines().some((line) => line.msg === 'schema up to date')).toBe(true);
    });
  });
});
