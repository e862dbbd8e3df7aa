import { createHash, randomBytes } from 'node:crypto';
import { chmod, copyFile, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { client } from '@wiki/test-support/http';
import { freePort, PostgresServer, TEST_DB_PASSWORD } from '@wiki/test-support/postgres';
import { startService, type ServiceProcess } from 'wiki-service/service-process';
import { startWriters } from '@wiki/test-support/writers';
import { everything, type Post, type User } from '@wiki/test-support/api';
import {
  apiEnvironment,
  asRole,
  environmentOf,
  generatedDatabaseSecret,
  pointedAt,
  postgresMissing,
  postgresqlSettings,
  runChartSetup,
  startChartDatabase,
  startPasswordsContainer,
  writeChartScripts,
} from './support/chart-env.js';
import { runCommand } from '@wiki/test-support/run-command';
import { OBJECT_STORE_ACCESS_KEY_ID, OBJECT_STORE_SECRET_ACCESS_KEY, ObjectStore } from '@wiki/test-support/object-store';
import { findRclone, rcloneMissing } from '@wiki/test-support/rclone';
import { startProcess } from '@wiki/test-support/process';
import { renderChart, type K8sObject } from './support/helm.js';
import { podSpecOf } from './support/kubernetes.js';
import { POSTGRES_EXPORTER, postgresExporterInvocation, prometheusMissing } from './support/prometheus.js';
import { skipLoudly } from './support/skip.js';
import { until } from '@wiki/test-support/wait';

// Phase 11 for real: PostgreSQL 15 set up by the chart's own setup.sh (its init
// container, run with the rendered environment), the service as the API's role, the
// backup CronJob's backup.sh and the restore Job's restore.sh run as rendered with
// Debian's pg_dump and pg_restore 15 (the chart's image runs PostgreSQL 15), and the
// real postgres_exporter with the rendered arguments. Only the pods' addresses and
// paths are mapped to local ones.

const skip = skipLoudly(postgresMissing() ?? prometheusMissing(), 'the PostgreSQL setup and backup tests are');
const rcloneSkip = skip || skipLoudly(rcloneMissing(), 'the test of the backup copy to object storage is');

/** The values of one metric family in a Prometheus text exposition. */
function samples(exposition: string, name: string): number[] {
  return exposition
    .split('\n')
    .filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `))
    .map((line) => Number(line.slice(line.lastIndexOf(' ') + 1)));
}

/** Each file of a folder with the sha256 of its content. */
async function fingerprint(dir: string): Promise<Record<string, string>> {
  const files: Record<string, string> = {};
  for (const name of (await readdir(dir)).sort())
    files[name] = createHash('sha256')
      .update(await readFile(join(dir, name)))
      .digest('hex');
  return files;
}

/**
 * A folder of PostgreSQL's programs whose `postgres` waits `seconds` before it starts:
 * to pg_ctl, a server that takes that long to become ready, as a long crash recovery
 * does (a real one long enough would need gigabytes of write-ahead log). pg_ctl looks
 * for `postgres` beside itself, so it is copied; the rest are links.
 */
async function slowStartingPrograms(server: PostgresServer, seconds: number): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'wiki-slow-pg-'));
  await chmod(dir, 0o755);
  for (const name of await readdir(server.binDir)) {
    if (name === 'postgres') continue;
    if (name === 'pg_ctl') await copyFile(join(server.binDir, name), join(dir, name));
    else await symlink(join(server.binDir, name), join(dir, name));
  }
  const real = join(server.binDir, 'postgres');
  await writeFile(join(dir, 'postgres'), `#!/bin/sh\ncase "$1" in -V|--version) exec "${real}" "$@";; esac\nsleep ${seconds}\nexec "${real}" "$@"\n`, {
    mode: 0o755,
  });
  await chmod(join(dir, 'pg_ctl'), 0o755);
  return dir;
}

describe.skipIf(skip)("PostgreSQL as the chart's setup.sh makes it", () => {
  let objects: K8sObject[];
  let env: Record<string, string>;
  let setupEnv: Record<string, string>;
  const servers: PostgresServer[] = [];
  const services: ServiceProcess[] = [];

  async function database(overrides: Record<string, string> = {}): Promise<PostgresServer> {
    const server = await startChartDatabase(objects, overrides);
    servers.push(server);
    return server;
  }

  async function api(server: PostgresServer, withEnv = env): Promise<ServiceProcess> {
    const service = await startService({ ...pointedAt(server, withEnv), SHUTDOWN_DELAY_SECONDS: '0' });
    services.push(service);
    return service;
  }

  beforeAll(async () => {
    objects = await renderChart();
    ({ api: env } = apiEnvironment(objects));
    const statefulSet = objects.find((object) => object.kind === 'StatefulSet')!;
    setupEnv = environmentOf(statefulSet.spec.template.spec.initContainers[0], objects);
  });
  afterAll(async () => {
    await Promise.all(services.map((service) => service.stop('SIGKILL')));
    await Promise.all(servers.map((server) => server.destroy()));
  });

  it('on a fresh volume: "postgres" is the only superuser; the API, exporter and backup roles have what they need and no more; the rendered settings are in effect', async () => {
    const server = await database();
    const roles = await server.query<{
      rolname: string;
      rolsuper: boolean;
      rolcreaterole: boolean;
      rolcreatedb: boolean;
      rolcanlogin: boolean;
      rolconnlimit: number;
      member_of: string[];
    }>(`
      SELECT rolname, rolsuper, rolcreaterole, rolcreatedb, rolcanlogin, rolconnlimit,
             ARRAY(SELECT b.rolname FROM pg_auth_members m JOIN pg_roles b ON b.oid = m.roleid WHERE m.member = r.oid ORDER BY 1)::text[] AS member_of
      FROM pg_roles r WHERE rolname !~ '^pg_' ORDER BY rolname`);
    const plain = { rolsuper: false, rolcreaterole: false, rolcreatedb: false, rolcanlogin: true };
    expect(roles).toEqual([
      { rolname: 'postgres', rolsuper: true, rolcreaterole: true, rolcreatedb: true, rolcanlogin: true, rolconnlimit: -1, member_of: [] },
      { rolname: env.PGUSER, ...plain, rolconnlimit: -1, member_of: [] },
      { rolname: setupEnv.BACKUP_USER, ...plain, rolconnlimit: 2, member_of: ['pg_read_all_data'] },
      { rolname: setupEnv.MONITORING_USER, ...plain, rolconnlimit: 3, member_of: ['pg_monitor'] },
    ]);
    expect(
      (await server.query<{ owner: string }>(`SELECT pg_get_userbyid(datdba) AS owner FROM pg_database WHERE datname = '${env.PGDATABASE}'`))[0]!.owner,
    ).toBe('postgres');
    // Every role logs in over TCP with its password from the rendered Secret.
    for (const [user, password, db] of [
      [env.PGUSER, env.PGPASSWORD, env.PGDATABASE],
      [setupEnv.MONITORING_USER, setupEnv.MONITORING_PASSWORD, 'postgres'],
      [setupEnv.BACKUP_USER, setupEnv.BACKUP_PASSWORD, env.PGDATABASE],
    ] as Array<[string, string, string]>) {
      expect(await asRole(server, user, password, db, 'SELECT current_user AS who'), user).toEqual([{ who: user }]);
    }
    await expect(asRole(server, env.PGUSER!, 'not-the-password', env.PGDATABASE!, 'SELECT 1')).rejects.toThrow('password authentication failed');
    // The rendered postgresql.conf settings, as the server reports them.
    const settings = postgresqlSettings(objects);
    expect(settings).toContain('max_connections=100');
    for (const setting of settings) {
      const [name, value] = setting.split('=') as [string, string];
      const [{ shown }] = (await server.query<{ shown: string }>(`SELECT current_setting('${name}') AS shown`)) as [{ shown: string }];
      expect(shown, name).toBe(value);
    }
  });

  it("runs again at every start without harm, and sets each password back to the Secret's", async () => {
    const server = await database();
    await server.query(`ALTER ROLE "${env.PGUSER}" PASSWORD 'changed-by-hand'`);
    await server.stop();
    const output = await runChartSetup(server, objects);
    expect(output).toContain('setup: roles and grants are in place');
    expect(output).not.toContain('creating a new database cluster');
    await server.start();
    expect(await asRole(server, env.PGUSER!, env.PGPASSWORD!, env.PGDATABASE!, 'SELECT 1 AS ok')).toEqual([{ ok: 1 }]);
  });

  it(
    "waits for a slow start (crash recovery) as long as the rendered startup budget, the server container's startup probe included; past it, fails with the temporary server's log",
    { timeout: 120_000 },
    async () => {
      const statefulSet = objects.find((object) => object.kind === 'StatefulSet')!;
      const budget = Number(setupEnv.STARTUP_TIMEOUT_SECONDS);
      expect(budget).toBe(300);
      const probe = statefulSet.spec.template.spec.containers[0].startupProbe;
      expect(probe.periodSeconds * probe.failureThreshold).toBe(budget);

      const server = await database();
      await server.stop();
      const slow = await slowStartingPrograms(server, 6);
      const onSlowPrograms = { PATH: `${slow}:${process.env.PATH}` };
      try {
        const tooShort = await runChartSetup(server, objects, { ...onSlowPrograms, STARTUP_TIMEOUT_SECONDS: '2' }).then(
          () => 'succeeded',
          (error: Error) => error.message,
        );
        expect(tooShort).toContain('server did not start in time');
        expect(tooShort).toContain("setup: FAILED; the temporary server's log:");
        // In a pod the container's end takes the late server with it; here it is stopped by hand.
        await until(
          'the late server to be up',
          30_000,
          async () =>
            await server.stop().then(
              () => true,
              () => undefined,
            ),
        );

        const output = await runChartSetup(server, objects, { ...onSlowPrograms, STARTUP_TIMEOUT_SECONDS: '30' });
        expect(output).toContain('setup: starting a temporary server (waiting up to 30 s');
        expect(output).toContain('setup: roles and grants are in place');
      } finally {
        await rm(slow, { recursive: true, force: true });
      }
      await server.start();
    },
  );

  it('starts on a data folder whose permissions a recursive fsGroup change opened (PostgreSQL refuses anything but 0700 or 0750)', async () => {
    const server = await database();
    await server.stop();
    await chmod(server.dataDir, 0o2770);
    expect(await runChartSetup(server, objects)).toContain('setup: roles and grants are in place');
    expect((await stat(server.dataDir)).mode & 0o7777).toBe(0o700);
    await server.start();
  });

  it.each([
    ["the superuser's name for the API", { API_USER: 'postgres' }, 'setup: API_USER is "postgres", a reserved role name'],
    ['a name PostgreSQL reserves', { BACKUP_USER: 'pg_backup' }, 'setup: BACKUP_USER is "pg_backup", a reserved role name'],
    ['one role for the API and the exporter', { MONITORING_USER: 'wiki' }, 'setup: MONITORING_USER and API_USER are both "wiki"'],
    ["a Secret without the backup role's key", { BACKUP_PASSWORD: '' }, 'setup: BACKUP_PASSWORD is empty: the database Secret has no key for the role'],
    ["a Secret without the API's key", { API_PASSWORD: '' }, 'setup: API_PASSWORD is empty'],
  ])('refuses %s before it changes anything, saying why', async (_case, overrides, message) => {
    const server = await database();
    const rolesBefore = await server.query('SELECT rolname, rolsuper, rolconnlimit FROM pg_roles ORDER BY 1');
    await server.stop();
    const refused = await runChartSetup(server, objects, overrides).then(
      () => 'succeeded',
      (error: Error) => error.message,
    );
    expect(refused).toContain(message);
    await server.start();
    expect(await server.query('SELECT rolname, rolsuper, rolconnlimit FROM pg_roles ORDER BY 1')).toEqual(rolesBefore);
  });

  it(
    'the passwords container sets a password changed in the Secret on the running server; a key missing from the Secret changes nothing, and it says so',
    { timeout: 60_000 },
    async () => {
      const server = await database();
      const sync = await startPasswordsContainer(server, objects, generatedDatabaseSecret(objects)!.data);
      try {
        const loginAs = (password: string) => asRole(server, env.PGUSER!, password, env.PGDATABASE!, 'SELECT 1 AS ok');

        // A rotation: the Secret's file changes, as Kubernetes changes it.
        await sync.setKey(sync.env.API_PASSWORD_KEY!, 'rotated-in-the-secret');
        await until(
          'the new password to be accepted',
          20_000,
          async () =>
            await loginAs('rotated-in-the-secret').then(
              () => true,
              () => undefined,
            ),
        );
        expect(sync.output()).toContain("passwords: the database Secret changed: every role's password is now the Secret's");
        await expect(loginAs(env.PGPASSWORD!)).rejects.toThrow('password authentication failed');

        // A key gone from the Secret would set an empty password: nothing is applied.
        await sync.removeKey(sync.env.BACKUP_PASSWORD_KEY!);
        await sync.setKey(sync.env.API_PASSWORD_KEY!, 'not-applied-while-a-key-is-missing');
        await until('the missing key to be reported', 20_000, async () =>
          sync.output().includes('passwords: not applying: missing or empty in the Secret') ? true : undefined,
        );
        await expect(loginAs('not-applied-while-a-key-is-missing')).rejects.toThrow('password authentication failed');
        expect(await loginAs('rotated-in-the-secret')).toEqual([{ ok: 1 }]);
      } finally {
        await sync.stop();
      }
    },
  );

  it('a setting PostgreSQL does not accept stops it from starting', async () => {
    const broken = await renderChart([], ['postgresql.config.max_wal_size=lots']);
    await expect(
      PostgresServer.create({
        superuser: 'postgres',
        settings: postgresqlSettings(broken),
        initialise: (server) => runChartSetup(server, broken).then(() => undefined),
      }),
    ).rejects.toThrow(/invalid value for parameter "max_wal_size": "lots"/);
  });

  it("the API's role cannot reach a shell (COPY ... TO PROGRAM), make roles or databases, change the server's configuration or read the backup records; the service and its migrations work as that role", async () => {
    const server = await database();
    const service = await api(server);
    const http = client(service.baseUrl);
    const user = (await http.post('/users', { name: 'written as the API role' })).body;
    expect((await http.post('/posts', { user_id: user.id, content: 'and a post' })).status).toBe(200);
    expect((await http.get(`/user/${user.id}`)).body).toEqual(user);
    const owners = await server.query<{ relname: string; owner: string }>(
      `SELECT relname, pg_get_userbyid(relowner) AS owner FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'r' ORDER BY 1`,
      env.PGDATABASE,
    );
    expect(owners.map((row) => row.relname)).toEqual(['kysely_migration', 'kysely_migration_lock', 'posts', 'users']);
    for (const row of owners) expect(row.owner, row.relname).toBe(env.PGUSER);

    const refused = async (sql: string, database = env.PGDATABASE!) => {
      const error = await asRole(server, env.PGUSER!, env.PGPASSWORD!, database, sql).then(
        () => undefined,
        (failure: Error) => failure.message,
      );
      expect(error, sql).toBeDefined();
      return error!;
    };
    expect(await refused("COPY (SELECT 1) TO PROGRAM 'id > /tmp/pwned'")).toMatch(/permission denied|must be superuser|pg_execute_server_program/);
    expect(await refused('CREATE ROLE intruder LOGIN')).toMatch(/permission denied to create role/);
    expect(await refused("ALTER SYSTEM SET log_statement = 'none'")).toMatch(/permission denied|must be superuser/);
    expect(await refused('CREATE DATABASE other')).toMatch(/permission denied/);
    expect(await refused("SELECT pg_read_file('postgresql.conf')")).toMatch(/permission denied/);
    expect(await refused('SELECT * FROM backup.runs')).toMatch(/permission denied for schema backup/);
    // The backup role reads every table and writes none.
    expect(await asRole(server, setupEnv.BACKUP_USER!, setupEnv.BACKUP_PASSWORD!, env.PGDATABASE!, 'SELECT count(*)::int AS n FROM users')).toEqual([{ n: 1 }]);
    await expect(asRole(server, setupEnv.BACKUP_USER!, setupEnv.BACKUP_PASSWORD!, env.PGDATABASE!, "INSERT INTO users (name) VALUES ('no')")).rejects.toThrow(
      /permission denied/,
    );
  });

  it("a cluster made by chart 0.10 (the API's user was the superuser) is upgraded in place: its tables change owner, no data moves, the service carries on", async () => {
    // Chart 0.10: the official image's initdb with POSTGRES_USER=wiki, POSTGRES_DB=wiki.
    const old = await PostgresServer.create({ superuser: env.PGUSER, password: env.PGPASSWORD });
    servers.push(old);
    await old.query(`CREATE DATABASE "${env.PGDATABASE}"`);
    const before = await api(old);
    const http = client(before.baseUrl);
    for (let i = 0; i < 30; i++) {
      const user = (await http.post('/users', { name: `user ${i} of 0.10` })).body;
      expect((await http.post('/posts', { user_id: user.id, content: `post ${i} of 0.10` })).status).toBe(200);
    }
    const users = await everything<User>(before.baseUrl, '/users');
    const posts = await everything<Post>(before.baseUrl, '/posts');
    const fileNodes = `SELECT relname, pg_relation_filenode(oid::regclass) AS node FROM pg_class WHERE relnamespace = 'public'::regnamespace ORDER BY 1`;
    const nodesBefore = await old.query(fileNodes, env.PGDATABASE);
    expect((await old.query<{ rolsuper: boolean }>(`SELECT rolsuper FROM pg_roles WHERE rolname = '${env.PGUSER}'`))[0]!.rolsuper).toBe(true);
    await before.stop();
    await old.stop();

    // The upgrade: the new chart's init container runs on the old volume.
    const output = await runChartSetup(old, objects);
    expect(output).toContain(`setup: the superuser is "${env.PGUSER}" (a cluster made by chart 0.10 or earlier): renaming it "postgres"`);
    await old.start();
    const asSuperuser = (sql: string, db = 'postgres') => asRole(old, 'postgres', setupEnv.POSTGRES_PASSWORD!, db, sql);
    expect(await asSuperuser("SELECT rolname, rolsuper FROM pg_roles WHERE rolname IN ('postgres', 'wiki') ORDER BY 1")).toEqual([
      { rolname: 'postgres', rolsuper: true },
      { rolname: env.PGUSER, rolsuper: false },
    ]);
    expect(await asSuperuser(fileNodes, env.PGDATABASE)).toEqual(nodesBefore);
    const owners = await asSuperuser(
      `SELECT DISTINCT pg_get_userbyid(relowner) AS owner FROM pg_class WHERE relnamespace = 'public'::regnamespace`,
      env.PGDATABASE,
    );
    expect(owners).toEqual([{ owner: env.PGUSER }]);

    const after = await api(old);
    expect(await everything<User>(after.baseUrl, '/users')).toEqual(users);
    expect(await everything<Post>(after.baseUrl, '/posts')).toEqual(posts);
    const next = (await client(after.baseUrl).post('/users', { name: 'after the upgrade' })).body;
    expect(next.id).toBe(Math.max(...users.map((user) => user.id)) + 1);
    await expect(asRole(old, env.PGUSER!, env.PGPASSWORD!, env.PGDATABASE!, 'CREATE ROLE intruder')).rejects.toThrow(/permission denied/);
  });
  it('a cluster set up by chart 0.13 (backup records in the "postgres" database) gets its records moved into the API\'s database, where the exporter reads them', async () => {
    const server = await database();
    // Chart 0.13's setup.sql made these in "postgres"; the new setup already ran once, as 0.14 does on a fresh volume.
    await server.query(`
      CREATE SCHEMA backup;
      CREATE TABLE backup.runs (finished_at timestamptz PRIMARY KEY DEFAULT now(), file text NOT NULL, bytes bigint NOT NULL);
      CREATE TABLE backup.expected_since (since timestamptz NOT NULL);
      INSERT INTO backup.expected_since VALUES ('2026-11-01T00:00:00Z');
      INSERT INTO backup.runs VALUES ('2026-11-28T02:30:05Z', 'wiki-20261128T023000Z.dump', 4096), ('2026-11-29T02:30:04Z', 'wiki-20261129T023000Z.dump', 4200);`);
    await server.stop();
    const output = await runChartSetup(server, objects);
    expect(output).toContain(`setup: moving the backup records from the "postgres" database to "${env.PGDATABASE}"`);
    await server.start();
    expect(await server.query("SELECT to_regnamespace('backup') IS NULL AS gone")).toEqual([{ gone: true }]);
    const moved = await server.query<{ file: string; bytes: string }>('SELECT file, bytes::text FROM backup.runs ORDER BY finished_at', env.PGDATABASE);
    expect(moved).toEqual([
      { file: 'wiki-20261128T023000Z.dump', bytes: '4096' },
      { file: 'wiki-20261129T023000Z.dump', bytes: '4200' },
    ]);
    const [{ since }] = (await server.query<{ since: string }>('SELECT min(since)::text AS since FROM backup.expected_since', env.PGDATABASE)) as [
      { since: string },
    ];
    expect(since).toBe('2026-11-01 00:00:00+00');
    // The next start has nothing left to move.
    await server.stop();
    expect(await runChartSetup(server, objects)).not.toContain('moving the backup records');
    await server.start();
  });
});

describe.skipIf(skip)('backups: backup.sh as the CronJob runs it, restore.sh as the restore Job runs it', () => {
  let objects: K8sObject[];
  let env: Record<string, string>;
  let workDir: string;
  let source: PostgresServer;
  let sourceApi: ServiceProcess;
  const servers: PostgresServer[] = [];
  const services: ServiceProcess[] = [];
  const mounts: string[] = [];

  const cronJobContainer = (rendered: K8sObject[]) => podSpecOf(rendered.find((object) => object.kind === 'CronJob')!).containers[0];

  /** Runs the CronJob's container command with its rendered environment (of `rendered`, the default values' by default), PostgreSQL and the volume mapped to local ones. */
  async function backup(into: string, overrides: Record<string, string> = {}, rendered = objects): Promise<{ ok: boolean; output: string }> {
    const container = cronJobContainer(rendered);
    expect(container.command).toEqual(['bash', '/scripts/backup.sh']);
    const scripts = join(workDir, 'scripts');
    const jobEnv = { ...environmentOf(container, rendered), PGHOST: '127.0.0.1', PGPORT: String(source.port), BACKUP_DIR: into, ...overrides };
    try {
      return { ok: true, output: await source.runProgram('bash', [join(scripts, 'backup.sh')], jobEnv) };
    } catch (error) {
      return { ok: false, output: (error as Error).message };
    }
  }

  async function backupFolder(name: string): Promise<string> {
    const dir = join(workDir, name);
    await mkdir(dir);
    await source.giveToServerUser(dir);
    return dir;
  }

  const recordedRuns = async () =>
    source.query<{ file: string; finished: number }>(
      `SELECT file, extract(epoch FROM finished_at)::float8 AS finished FROM backup.runs ORDER BY finished_at`,
      env.PGDATABASE,
    );

  /** Waits until the clock is in a new second: backups are named to the second. */
  const nextSecond = async () => {
    const now = Math.floor(Date.now() / 1000);
    await until('the next second', 5_000, async () => (Math.floor(Date.now() / 1000) > now ? true : undefined));
  };

  /** Runs backup.sh `count` times, each in a new second (dumps are named to the second) and each expected to succeed: the dumps they made, in order, and what they printed. */
  async function backupsInARow(dir: string, count: number, overrides: Record<string, string>): Promise<Array<{ file: string; output: string }>> {
    const runs: Array<{ file: string; output: string }> = [];
    for (let i = 0; i < count; i++) {
      await nextSecond();
      const result = await backup(dir, overrides);
      expect(result.ok, result.output).toBe(true);
      runs.push({ file: /backup: \S+\/(\S+\.dump) /.exec(result.output)![1]!, output: result.output });
    }
    return runs;
  }

  /** A volume of its own (a tmpfs of `bytes`), as the backups' PVC; undefined, loudly, where none can be mounted. */
  async function smallVolume(name: string, bytes: number): Promise<string | undefined> {
    const dir = await backupFolder(name);
    try {
      await runCommand('mount', ['-t', 'tmpfs', '-o', `size=${bytes},mode=0777`, 'tmpfs', dir]);
    } catch (error) {
      skipLoudly(`cannot mount a tmpfs (${(error as Error).message.split('\n')[0]})`, 'the backup tests on a small volume are');
      return undefined;
    }
    mounts.push(dir);
    return dir;
  }

  /** The dumps in a backups folder (not its lock file). */
  const dumps = async (dir: string) => (await readdir(dir)).filter((name) => name.endsWith('.dump')).sort();

  /** Makes the API's database hold `kib` KiB of data that does not compress (base64 of random bytes), so dumps have a size worth measuring. */
  async function addIncompressibleData(kib: number): Promise<void> {
    const http = client(sourceApi.baseUrl);
    const user = (await http.post('/users', { name: 'holder of incompressible posts' })).body;
    for (let written = 0; written < kib * 1024; written += 75_000) {
      const response = await http.post('/posts', { user_id: user.id, content: randomBytes(56_250).toString('base64') });
      expect(response.status).toBe(200);
    }
  }

  beforeAll(async () => {
    objects = await renderChart();
    ({ api: env } = apiEnvironment(objects));
    workDir = await mkdtemp(join(tmpdir(), 'wiki-backup-'));
    await chmod(workDir, 0o755); // the scripts are run as PostgreSQL's system user
    source = await startChartDatabase(objects);
    servers.push(source);
    await writeChartScripts(objects, join(workDir, 'scripts'));
    sourceApi = await startService({ ...pointedAt(source, env), SHUTDOWN_DELAY_SECONDS: '0' });
    services.push(sourceApi);
  });
  afterAll(async () => {
    for (const mount of mounts) await runCommand('umount', [mount]).catch(() => undefined);
    await Promise.all(services.map((service) => service.stop('SIGKILL')));
    await Promise.all(servers.map((server) => server.destroy()));
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  it(
    "taken while 8 writers write, then restored with the restore Job's script into a fresh release: every write acknowledged before the dump is there, every restored row is the source's, and ids go on",
    { timeout: 180_000 },
    async () => {
      const dir = await backupFolder('under-load');
      const runsBefore = (await recordedRuns()).length; // other tests' backups, in whatever order they ran
      const writers = startWriters(sourceApi.baseUrl, 8, 10_000);
      await until('writers under way', 30_000, async () => (writers.writes() >= 400 ? true : undefined));
      // Acknowledged before backup.sh starts, so committed before pg_dump takes its snapshot.
      const ackedUsers = new Map(writers.acknowledged.users);
      const ackedPosts = new Map(writers.acknowledged.posts);
      const result = await backup(dir);
      const writesDuringDump = writers.writes() - ackedUsers.size - ackedPosts.size;
      await until('writes after the dump', 30_000, async () =>
        writers.writes() >= ackedUsers.size + ackedPosts.size + writesDuringDump + 100 ? true : undefined,
      );
      await writers.stop();
      expect(result.ok, result.output).toBe(true);
      expect(writers.unexpected).toEqual([]);
      const files = await dumps(dir);
      expect(files).toHaveLength(1);
      expect(files[0]).toMatch(new RegExp(`^${env.PGDATABASE}-\\d{8}T\\d{6}Z\\.dump$`));
      expect(result.output).toContain(`backup: ${join(dir, files[0]!)}`);
      console.log(`backup under load: ${ackedUsers.size + ackedPosts.size} writes acknowledged before it, ${writesDuringDump} while it ran`);
      expect((await recordedRuns()).map((run) => run.file).slice(runsBefore)).toEqual(files);

      // The documented restore: the restore Job rendered with the file's name, into a
      // fresh release whose API created the empty tables and was then scaled to 0.
      const restoreObjects = await renderChart([], [`postgresql.backup.restore.file=${files[0]}`]);
      const restoreJob = restoreObjects.find((object) => object.kind === 'Job' && object.metadata.name.endsWith('-restore'))!;
      const container = podSpecOf(restoreJob).containers[0];
      expect(container.command).toEqual(['bash', '/scripts/restore.sh']);
      const fresh = await startChartDatabase(restoreObjects);
      servers.push(fresh);
      const freshEnv = apiEnvironment(restoreObjects).api;
      const empty = await startService({ ...pointedAt(fresh, freshEnv), SHUTDOWN_DELAY_SECONDS: '0' });
      expect(await everything<User>(empty.baseUrl, '/users')).toEqual([]);
      await empty.stop();
      const jobEnv: Record<string, string> = { ...environmentOf(container, restoreObjects), PGHOST: '127.0.0.1', PGPORT: String(fresh.port), BACKUP_DIR: dir };
      expect(jobEnv.RESTORE_FILE).toBe(files[0]);
      expect(jobEnv.PGUSER).toBe(freshEnv.PGUSER);
      const restoreOutput = await fresh.runProgram('bash', [join(workDir, 'scripts', 'restore.sh')], jobEnv);
      expect(restoreOutput).toContain('restore: done');

      const restored = await startService({ ...pointedAt(fresh, freshEnv), SHUTDOWN_DELAY_SECONDS: '0' });
      services.push(restored);
      const restoredUsers = await everything<User>(restored.baseUrl, '/users');
      const restoredPosts = await everything<Post>(restored.baseUrl, '/posts');
      const sourceUsers = new Map((await everything<User>(sourceApi.baseUrl, '/users')).map((user) => [user.id, user]));
      const sourcePosts = new Map((await everything<Post>(sourceApi.baseUrl, '/posts')).map((post) => [post.post_id, post]));
      for (const user of restoredUsers) expect(user).toEqual(sourceUsers.get(user.id));
      for (const post of restoredPosts) expect(post).toEqual(sourcePosts.get(post.post_id));
      const restoredUserIds = new Set(restoredUsers.map((user) => user.id));
      const restoredPostIds = new Set(restoredPosts.map((post) => post.post_id));
      expect(
        [...ackedUsers.keys()].filter((id) => !restoredUserIds.has(id)),
        'users acknowledged before the dump, missing',
      ).toEqual([]);
      expect(
        [...ackedPosts.keys()].filter((id) => !restoredPostIds.has(id)),
        'posts acknowledged before the dump, missing',
      ).toEqual([]);
      // A snapshot: what came after the dump is not in it.
      expect(restoredUsers.length).toBeLessThan(sourceUsers.size);
      const next = (await client(restored.baseUrl).post('/users', { name: 'after the restore' })).body;
      expect(next.id).toBeGreaterThan(Math.max(...restoredUserIds));
    },
  );

  it('keeps the newest BACKUP_KEEP backups, and records each good one', { timeout: 60_000 }, async () => {
    const dir = await backupFolder('rotation');
    const before = (await recordedRuns()).length;
    const made = (await backupsInARow(dir, 3, { BACKUP_KEEP: '2' })).map((run) => run.file);
    expect(await dumps(dir)).toEqual(made.slice(1).sort());
    expect((await recordedRuns()).map((run) => run.file).slice(before)).toEqual(made);
  });

  it(
    'a wrong password or a full volume fails the Job, leaves the earlier backups as they were and records nothing: the exporter still reports the last good one',
    { timeout: 60_000 },
    async (context) => {
      // A volume of its own, 1 MiB of memory, with one good backup on it.
      const dir = await smallVolume('small-volume', 1024 * 1024);
      // Reported as skipped, never as passed (smallVolume said so loudly; CI fails there).
      // eslint-disable-next-line vitest/no-disabled-tests -- a loud skip, decided at run time
      if (dir === undefined) return context.skip();
      // A user of this test's own, for the exporter's table statistics below (in whatever
      // order the tests ran, the table then holds a live row).
      expect((await client(sourceApi.baseUrl).post('/users', { name: 'counted by the exporter' })).status).toBe(200);
      await nextSecond();
      expect((await backup(dir)).ok).toBe(true);
      const good = await fingerprint(dir);
      const runsBefore = await recordedRuns();

      await nextSecond();
      const wrongPassword = await backup(dir, { PGPASSWORD: 'not-the-password' });
      expect(wrongPassword.ok).toBe(false);
      expect(wrongPassword.output).toContain('password authentication failed');
      expect(await fingerprint(dir)).toEqual(good);

      // Fill the rest of the volume, then back up again.
      await runCommand('sh', ['-c', `dd if=/dev/zero of=${join(dir, 'filler')} bs=4k 2>/dev/null || true`]);
      const filled = await fingerprint(dir);
      await nextSecond();
      const full = await backup(dir);
      expect(full.ok).toBe(false);
      expect(full.output).toMatch(/No space left on device/);
      expect(await fingerprint(dir)).toEqual(filled);
      expect(Object.keys(filled).filter((name) => name !== 'filler')).toEqual(Object.keys(good));
      expect(await recordedRuns()).toEqual(runsBefore);

      // What Prometheus would scrape: the exporter, as the pod runs it, reports the last good backup.
      const port = await freePort();
      const { args, env: exporterEnv } = postgresExporterInvocation(objects, port, source.port, join(workDir, 'scripts'));
      const exporter = startProcess(POSTGRES_EXPORTER, args, { env: exporterEnv });
      try {
        const liveUsers = /^pg_stat_user_tables_n_live_tup\{[^}]*relname="users"[^}]*\} [1-9]/m;
        const exposition = await until('the exporter to report the backups and the live users', 30_000, async () => {
          const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
          return samples(text, 'wiki_backup_successes').length > 0 && liveUsers.test(text) ? text : undefined;
        });
        expect(samples(exposition, 'pg_up')).toEqual([1]);
        expect(samples(exposition, 'wiki_backup_successes')).toEqual([runsBefore.length]);
        expect(samples(exposition, 'wiki_backup_last_success_timestamp_seconds')[0]).toBeCloseTo(runsBefore.at(-1)!.finished, 3);
        // Connected to the API's database, it sees its tables: dead rows, vacuum runs.
        expect(exposition).toMatch(liveUsers);
        expect(exposition).toMatch(/^pg_stat_user_tables_n_dead_tup\{[^}]*relname="posts"/m);
        // Each database's transaction ID age (wraparound stops writes near 2^31).
        expect(exposition).toMatch(new RegExp(`^pg_database_wraparound_age_datfrozenxid_seconds\\{[^}]*datname="${env.PGDATABASE}"`, 'm'));
        // The backups volume as the last good backup found it: this 1 MiB tmpfs.
        expect(samples(exposition, 'wiki_backup_volume_size_bytes')).toEqual([1024 * 1024]);
        const [free] = samples(exposition, 'wiki_backup_volume_free_bytes');
        expect(free).toBeGreaterThan(0);
        expect(free).toBeLessThan(1024 * 1024 - samples(exposition, 'wiki_backup_last_size_bytes')[0]!);
      } finally {
        await exporter.stop('SIGKILL');
      }
    },
  );
  it.skipIf(rcloneSkip)(
    'postgresql.backup.objectStore: each dump is copied off the cluster byte for byte, the store keeps the newest BACKUP_KEEP, and the checked copy is recorded for the alert; with the store down the Job fails and records no copy',
    { timeout: 120_000 },
    async () => {
      const store = await ObjectStore.start();
      try {
        const rendered = await renderChart(
          [],
          [
            `postgresql.backup.objectStore.destinationPath=${store.url('nightly')}`,
            `postgresql.backup.objectStore.endpointURL=${store.endpoint}`,
            'postgresql.backup.objectStore.credentialsSecret=wiki-backups-s3',
          ],
        );
        // The Secret the operator creates before installing, with the store's key.
        const base64 = (text: string) => Buffer.from(text).toString('base64');
        rendered.push({
          apiVersion: 'v1',
          kind: 'Secret',
          metadata: { name: 'wiki-backups-s3' },
          data: { ACCESS_KEY_ID: base64(OBJECT_STORE_ACCESS_KEY_ID), ACCESS_SECRET_KEY: base64(OBJECT_STORE_SECRET_ACCESS_KEY) },
        });
        // The init container's copy of rclone, here the fetched one; this machine's CA certificates.
        const local = {
          PATH: `${dirname(findRclone()!)}:${source.binDir}:${process.env.PATH}`,
          SSL_CERT_FILE: '/etc/ssl/certs/ca-certificates.crt',
          RCLONE_CONFIG: join(workDir, 'rclone.conf'),
          BACKUP_KEEP: '2',
          // The backup role's password as the source database was set up with it (each render generates its own).
          PGPASSWORD: environmentOf(cronJobContainer(objects), objects).PGPASSWORD!,
        };
        const stored = async (name: string) => {
          const response = await fetch(`${store.endpoint}/${store.bucket}/nightly/${name}`);
          return response.ok ? Buffer.from(await response.arrayBuffer()) : undefined;
        };
        const storedNames = async () => {
          const listing = await (await fetch(`${store.endpoint}/${store.bucket}?prefix=nightly/`)).text();
          return [...listing.matchAll(/<Key>nightly\/([^<]+)<\/Key>/g)].map((match) => match[1]!).sort();
        };
        const copiedRuns = async () =>
          source.query<{ file: string; copied: boolean }>('SELECT file, copied_at IS NOT NULL AS copied FROM backup.runs ORDER BY finished_at', env.PGDATABASE);
        const exporterFigures = async () => {
          const query = (parseYaml(await readFile(join(workDir, 'scripts', 'exporter-queries.yaml'), 'utf8')) as { wiki_backup: { query: string } }).wiki_backup
            .query;
          const [row] = await source.query<{ last_copy_timestamp_seconds: number }>(query, env.PGDATABASE);
          return row!;
        };

        const dir = await backupFolder('copied');
        const made: string[] = [];
        for (let run = 0; run < 3; run++) {
          await nextSecond();
          const result = await backup(dir, local, rendered);
          expect(result.ok, result.output).toBe(true);
          made.push(/backup: \S+\/(\S+\.dump) /.exec(result.output)![1]!);
          expect(result.output).toContain(`backup: ${made.at(-1)} copied to the object store`);
        }
        // Both places keep the newest two, and the store's are the very bytes of the volume's.
        expect(await storedNames()).toEqual(made.slice(1).sort());
        expect(await dumps(dir)).toEqual(made.slice(1).sort());
        for (const name of made.slice(1)) expect((await stored(name))!.equals(await readFile(join(dir, name)))).toBe(true);
        const copied = (await copiedRuns()).filter((run) => made.includes(run.file));
        expect(copied).toEqual(made.map((file) => ({ file, copied: true })));
        const lastCopy = (await exporterFigures()).last_copy_timestamp_seconds;
        expect(Date.now() / 1000 - lastCopy).toBeLessThan(60);

        // The store down: the dump is made and recorded on the volume, the copy fails the Job, and no copy is recorded.
        await store.stop();
        await nextSecond();
        const failed = await backup(
          dir,
          { ...local, RCLONE_CONFIG_STORE_ENDPOINT: store.endpoint, RCLONE_RETRIES: '1', RCLONE_LOW_LEVEL_RETRIES: '1' },
          rendered,
        );
        expect(failed.ok).toBe(false);
        expect(failed.output).toMatch(/connection refused/);
        const unsent = /backup: \S+\/(\S+\.dump) /.exec(failed.output)![1]!;
        expect((await copiedRuns()).find((run) => run.file === unsent)).toEqual({ file: unsent, copied: false });
        expect((await exporterFigures()).last_copy_timestamp_seconds).toBe(lastCopy);
      } finally {
        await store.destroy();
      }
    },
  );

  // docs/PHASE12_HIGH_AVAILABILITY.md, "Moving a built-in release to CloudNativePG", steps 3
  // and 4: the new Cluster's database is made as the operator's initdb makes it (a
  // database owned by the API's role), and the API has already created its empty tables
  // there when the dump goes in.
  it(
    'a dump moves into a new database whose API already made its tables, with the documented pg_restore: every user and post is served again, and ids go on',
    { timeout: 120_000 },
    async () => {
      const http = client(sourceApi.baseUrl);
      const author = (await http.post('/users', { name: 'moved to CloudNativePG' })).body;
      expect((await http.post('/posts', { user_id: author.id, content: 'written before the move' })).status).toBe(200);
      const users = await everything<User>(sourceApi.baseUrl, '/users');
      const posts = await everything<Post>(sourceApi.baseUrl, '/posts');
      const dir = await backupFolder('move');
      const made = await backup(dir);
      expect(made.ok, made.output).toBe(true);
      const dump = join(dir, /backup: \S+\/(\S+\.dump) /.exec(made.output)![1]!);

      const target = await PostgresServer.create({ superuser: 'postgres' });
      servers.push(target);
      await target.query(`CREATE ROLE wiki LOGIN PASSWORD '${TEST_DB_PASSWORD}'`);
      await target.query('CREATE DATABASE wiki OWNER wiki');
      const targetEnv = {
        ...env,
        PGHOST: '127.0.0.1',
        PGPORT: String(target.port),
        PGDATABASE: 'wiki',
        PGUSER: 'wiki',
        PGPASSWORD: TEST_DB_PASSWORD,
        SHUTDOWN_DELAY_SECONDS: '0',
      };
      const emptyApi = await startService(targetEnv);
      expect(await everything<User>(emptyApi.baseUrl, '/users')).toEqual([]);
      await emptyApi.stop();

      await target.runProgram('bash', ['-c', `pg_restore --clean --if-exists --single-transaction --no-owner --role=wiki -d wiki < '${dump}'`], {
        PGHOST: '127.0.0.1',
        PGPORT: String(target.port),
        PGUSER: 'postgres',
        PGPASSWORD: target.password,
      });
      const movedApi = await startService(targetEnv);
      services.push(movedApi);
      expect(await everything<User>(movedApi.baseUrl, '/users')).toEqual(users);
      expect(await everything<Post>(movedApi.baseUrl, '/posts')).toEqual(posts);
      const next = (await client(movedApi.baseUrl).post('/users', { name: 'after the move' })).body;
      expect(next.id).toBeGreaterThan(Math.max(...users.map((user) => user.id)));
      const [owners] = await target.query<{ owners: string }>(
        "SELECT string_agg(DISTINCT tableowner, ',') AS owners FROM pg_tables WHERE schemaname = 'public'",
        'wiki',
      );
      expect(owners!.owners).toBe('wiki');
    },
  );

  it('one run at a time: a second backup (a Job made by hand beside the nightly one) or a restore is refused while the lock is held, and nothing is written', async () => {
    const dir = await backupFolder('locked');
    await writeFile(join(dir, '.lock'), '');
    await source.giveToServerUser(join(dir, '.lock'));
    /** Whether another process holds the backups' lock: flock's own answer. */
    const lockHeld = (held: boolean) => async () =>
      (await runCommand('flock', ['--nonblock', join(dir, '.lock'), 'true']).then(
        () => false,
        () => true,
      )) === held
        ? true
        : undefined;
    const holder = startProcess('flock', ['--no-fork', join(dir, '.lock'), 'sleep', '60']);
    try {
      await until('flock to hold the lock', 10_000, lockHeld(true));
      const before = (await recordedRuns()).length;
      const second = await backup(dir);
      expect(second.ok).toBe(false);
      expect(second.output).toContain(`backup: another backup or restore holds ${dir}/.lock: not starting a second one`);
      expect(await dumps(dir)).toEqual([]);
      expect(await recordedRuns()).toHaveLength(before);
      const restoreEnv = {
        ...environmentOf(podSpecOf(objects.find((object) => object.kind === 'CronJob')!).containers[0], objects),
        BACKUP_DIR: dir,
        RESTORE_FILE: 'latest',
      };
      const restore = await source.runProgram('bash', [join(workDir, 'scripts', 'restore.sh')], restoreEnv).then(
        () => 'succeeded',
        (error: Error) => error.message,
      );
      expect(restore).toContain('restore: a backup or another restore holds');
    } finally {
      await holder.stop();
    }
    await until('the lock to be free', 10_000, lockHeld(false));
    expect((await backup(dir)).ok).toBe(true);
  });

  it('removes what a killed run left (a .partial file), and keeps files copied in by hand out of the rotation', async () => {
    const dir = await backupFolder('leftovers');
    await writeFile(join(dir, `.${env.PGDATABASE}-20260101T023000Z.dump.partial`), 'half a dump');
    await writeFile(join(dir, `${env.PGDATABASE}-2026-01-01.dump`), 'a dump copied in by hand');
    await source.giveToServerUser(join(dir, `.${env.PGDATABASE}-20260101T023000Z.dump.partial`));
    const runs = await backupsInARow(dir, 2, { BACKUP_KEEP: '1' });
    expect(runs[0]!.output).toContain(`backup: removing .${env.PGDATABASE}-20260101T023000Z.dump.partial, left by a run that was killed`);
    const made = runs.map((run) => run.file);
    expect(await readdir(dir)).toEqual(['.lock', `${env.PGDATABASE}-2026-01-01.dump`, made[1]!].sort());
  });

  it(
    'on a volume that holds BACKUP_KEEP dumps and no more, the oldest goes before the next is written, so backups go on',
    { timeout: 120_000 },
    async (context) => {
      await addIncompressibleData(300);
      const measure = await backupFolder('measure');
      const result = await backup(measure);
      expect(result.ok, result.output).toBe(true);
      const size = (await stat(join(measure, (await dumps(measure))[0]!))).size;
      // Two dumps and half of a third.
      const dir = await smallVolume('two-dumps', Math.ceil((2.5 * size) / 4096) * 4096);
      // eslint-disable-next-line vitest/no-disabled-tests -- a loud skip, decided at run time (smallVolume)
      if (dir === undefined) return context.skip();
      const made = (await backupsInARow(dir, 4, { BACKUP_KEEP: '2' })).map((run) => run.file);
      expect(await dumps(dir)).toEqual(made.slice(2).sort());
    },
  );

  it(
    'a dump whose data is cut short (a truncated file) fails the Job: the check reads every byte back, not only the table of contents',
    { timeout: 60_000 },
    async () => {
      await addIncompressibleData(100);
      const dir = await backupFolder('truncated');
      const programs = await mkdtemp(join(tmpdir(), 'wiki-truncating-pg-dump-'));
      await chmod(programs, 0o755);
      try {
        await writeFile(
          join(programs, 'pg_dump'),
          [
            '#!/bin/sh',
            `"${join(source.binDir, 'pg_dump')}" "$@" || exit $?`,
            'for arg; do case "$arg" in --file=*) file=${arg#--file=};; esac; done',
            // The table of contents is at the start: the end, with the largest table's data, goes.
            'truncate --size=$(( $(stat --format=%s "$file") * 6 / 10 )) "$file"',
            '',
          ].join('\n'),
          { mode: 0o755 },
        );
        const before = (await recordedRuns()).length;
        const result = await backup(dir, { PATH: `${programs}:${source.binDir}:${process.env.PATH}` });
        expect(result.ok).toBe(false);
        expect(result.output).toMatch(/pg_restore: error/);
        expect(await readdir(dir)).toEqual(['.lock']);
        expect(await recordedRuns()).toHaveLength(before);
      } finally {
        await rm(programs, { recursive: true, force: true });
      }
    },
  );
});
