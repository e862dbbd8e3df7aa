import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import pg from 'pg';
import { join } from 'node:path';
import { findPostgresBinaries, PostgresServer } from '@wiki/test-support/postgres';
import { until } from '@wiki/test-support/wait';
import { startProcess } from '@wiki/test-support/process';
import { configMapData, type K8sObject } from './helm.js';

const generatedSecrets = new WeakMap<K8sObject[], K8sObject>();

/**
 * The database Secret as the rendered database-credentials Job would leave it in a
 * fresh namespace: a generated password (32 letters and digits) for each key it names.
 * The chart does not render that Secret; the Job's script, tested on its own
 * (credentials.test.ts), creates it in the cluster. One Secret per rendering, as one
 * cluster keeps one.
 */
export function generatedDatabaseSecret(objects: K8sObject[]): K8sObject | undefined {
  const cached = generatedSecrets.get(objects);
  if (cached !== undefined) return cached;
  const job = objects.find((object) => object.kind === 'Job' && object.metadata.labels?.['app.kubernetes.io/component'] === 'credentials');
  if (job === undefined) return undefined;
  const env = Object.fromEntries((job.spec.template.spec.containers[0].env as Array<{ name: string; value: string }>).map(({ name, value }) => [name, value]));
  const password = () =>
    randomBytes(24)
      .toString('base64')
      .replace(/[^A-Za-z0-9]/g, '')
      .padEnd(32, '0')
      .slice(0, 32);
  const secret: K8sObject = {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: env.SECRET_NAME!, labels: JSON.parse(env.SECRET_LABELS!) },
    data: Object.fromEntries(env.KEYS!.split(',').map((key) => [key, Buffer.from(password()).toString('base64')])),
  };
  generatedSecrets.set(objects, secret);
  return secret;
}

/** Resolves a container's env and envFrom against the rendered ConfigMaps and Secrets (and the Secret the credentials Job generates). */
export function environmentOf(container: any, objects: K8sObject[]): Record<string, string> {
  const find = (kind: string, name: string) => {
    const object = objects.find((candidate) => candidate.kind === kind && candidate.metadata.name === name);
    if (object !== undefined) return object;
    const generated = kind === 'Secret' ? generatedDatabaseSecret(objects) : undefined;
    if (generated?.metadata.name === name) return generated;
    throw new Error(`${kind} ${name} is not rendered`);
  };
  const env: Record<string, string> = {};
  for (const source of container.envFrom ?? []) {
    if (source.configMapRef) Object.assign(env, find('ConfigMap', source.configMapRef.name).data);
  }
  for (const variable of container.env ?? []) {
    if (variable.value !== undefined) env[variable.name] = variable.value;
    const secretRef = variable.valueFrom?.secretKeyRef;
    if (secretRef) env[variable.name] = Buffer.from(find('Secret', secretRef.name).data[secretRef.key], 'base64').toString();
  }
  return env;
}

/** The API container's and its init container's environment, as the rendered Deployment gives them. */
export function apiEnvironment(objects: K8sObject[]): { api: Record<string, string>; init: Record<string, string> } {
  const deployment = objects.find((object) => object.kind === 'Deployment' && object.metadata.labels['app.kubernetes.io/component'] === 'api');
  if (deployment === undefined) throw new Error('no API Deployment rendered');
  const pod = deployment.spec.template.spec;
  return { api: environmentOf(pod.containers[0], objects), init: environmentOf(pod.initContainers[0], objects) };
}

/** The rendered PostgreSQL StatefulSet's pod. */
function postgresqlPod(objects: K8sObject[]): any {
  const statefulSet = objects.find((object) => object.kind === 'StatefulSet' && object.metadata.labels['app.kubernetes.io/component'] === 'postgresql');
  if (statefulSet === undefined) throw new Error('no PostgreSQL StatefulSet rendered');
  return statefulSet.spec.template.spec;
}

/** The postgresql.conf settings the rendered server container passes as `-c name=value`. */
export function postgresqlSettings(objects: K8sObject[]): string[] {
  const args: string[] = postgresqlPod(objects).containers[0].args;
  if (args[0] !== 'postgres') throw new Error(`PostgreSQL's container runs ${args.join(' ')}, not the server`);
  return args.flatMap((arg, i) => (args[i - 1] === '-c' ? [arg] : []));
}

/** Writes the files of the rendered scripts ConfigMap (wiki-chart/postgresql/) into `dir`, as the pods mount them. */
export async function writeChartScripts(objects: K8sObject[], dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const [name, content] of Object.entries(configMapData(objects, 'postgresql-scripts'))) await writeFile(join(dir, name), content);
}

/**
 * Runs PostgreSQL's init container as rendered: setup.sh with the container's
 * environment (passwords from the rendered Secret), on the server's data folder, its
 * socket in the server's own folder. `overrides` change that environment.
 */
export async function runChartSetup(server: PostgresServer, objects: K8sObject[], overrides: Record<string, string> = {}): Promise<string> {
  const setup = postgresqlPod(objects).initContainers.find((container: { name: string }) => container.name === 'setup');
  if (setup.command.join(' ') !== 'bash /scripts/setup.sh') throw new Error(`the setup container runs ${setup.command.join(' ')}, not setup.sh`);
  const scripts = join(server.dataDir, '..', 'scripts');
  await writeChartScripts(objects, scripts);
  const env = { ...environmentOf(setup, objects), PGDATA: server.dataDir, PGHOST: join(server.dataDir, '..'), ...overrides };
  return server.runProgram('bash', [join(scripts, 'setup.sh')], env);
}

/**
 * A throwaway PostgreSQL set up as the chart's pod sets it up: its init container
 * (setup.sh) creates the cluster, roles and grants from the rendered environment, then
 * the server starts with the rendered postgresql.conf settings. The superuser is
 * "postgres" with the rendered superuser password. Without `durable`, fsync is off
 * (tests); a benchmark wants it on, as in production.
 */
export async function startChartDatabase(
  objects: K8sObject[],
  overrides: Record<string, string> = {},
  options: { durable?: boolean } = {},
): Promise<PostgresServer> {
  const setupEnv = environmentOf(postgresqlPod(objects).initContainers[0], objects);
  return PostgresServer.create({
    durable: options.durable,
    superuser: 'postgres',
    password: overrides.POSTGRES_PASSWORD ?? setupEnv.POSTGRES_PASSWORD,
    settings: postgresqlSettings(objects),
    initialise: async (server) => {
      await runChartSetup(server, objects, overrides);
    },
  });
}

/** The same environment with the database host and port pointed at a local server. */
export function pointedAt(postgres: PostgresServer, env: Record<string, string>): Record<string, string> {
  return { ...env, PGHOST: '127.0.0.1', PGPORT: String(postgres.port) };
}

/** Undefined when PostgreSQL's server binaries are installed, else what is missing. */
export function postgresMissing(): string | undefined {
  return findPostgresBinaries() === undefined ? 'PostgreSQL server binaries missing (apt-get install -y postgresql, or set PG_BIN_DIR)' : undefined;
}

/** Runs one statement as a role over TCP, as a client in the cluster would; resolves to its rows, or rejects with PostgreSQL's error. */
export async function asRole(server: PostgresServer, user: string, password: string, database: string, sql: string): Promise<pg.QueryResultRow[]> {
  const connection = new pg.Client({ host: '127.0.0.1', port: server.port, user, password, database });
  await connection.connect();
  try {
    return (await connection.query(sql)).rows;
  } finally {
    await connection.end();
  }
}

/** PostgreSQL's passwords container, as the pod runs it, and the Secret's files it watches. */
export interface PasswordsContainer {
  /** Writes one key of the mounted Secret, as Kubernetes updates it after the Secret changed. */
  setKey: (key: string, value: string) => Promise<void>;
  removeKey: (key: string) => Promise<void>;
  /** The container's environment as rendered (the roles and their keys). */
  env: Record<string, string>;
  output: () => string;
  stop: () => Promise<void>;
}

/**
 * Runs the rendered passwords container's script (sync-passwords.sh) beside a server
 * set up by `runChartSetup`, with the database Secret of `objects` mounted as files, as
 * the pod does; it checks for a change every second instead of ten.
 */
export async function startPasswordsContainer(server: PostgresServer, objects: K8sObject[], secretData: Record<string, string>): Promise<PasswordsContainer> {
  const container = postgresqlPod(objects).containers.find((candidate: { name: string }) => candidate.name === 'passwords');
  if (container.command.join(' ') !== 'bash /scripts/sync-passwords.sh') throw new Error(`the passwords container runs ${container.command.join(' ')}`);
  const folder = await mkdtemp(join(tmpdir(), 'wiki-credentials-'));
  const mounted = join(folder, 'secret');
  await mkdir(mounted);
  for (const [key, value] of Object.entries(secretData)) await writeFile(join(mounted, key), Buffer.from(value, 'base64'));
  const env = environmentOf(container, objects);
  const daemon = startProcess('bash', [join(server.dataDir, '..', 'scripts', 'sync-passwords.sh')], {
    env: {
      ...env,
      PGHOST: join(server.dataDir, '..'),
      PGPORT: String(server.port),
      PASSWORDS_DIR: mounted,
      HEARTBEAT: join(folder, 'heartbeat'),
      INTERVAL_SECONDS: '1',
      PATH: `${server.binDir}:${process.env.PATH}`,
    },
  });
  await until('the passwords container to watch', 20_000, async () => (daemon.output().includes('passwords: watching') ? true : undefined));
  return {
    setKey: (key, value) => writeFile(join(mounted, key), value),
    removeKey: (key) => rm(join(mounted, key)),
    env,
    output: daemon.output,
    stop: async () => {
      await daemon.stop('SIGKILL');
      await rm(folder, { recursive: true, force: true });
    },
  };
}
