import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { runCommand, tryCommand } from '@wiki/test-support/run-command';
import { renderChart, type K8sObject } from './support/helm.js';
import { podSpecOf } from './support/kubernetes.js';
import { componentObject } from './support/rendered.js';

// The database-credentials hook Job's script (wiki-chart/postgresql/credentials.mjs),
// as the rendered Job runs it (its command and environment), against an HTTPS server
// that answers the few Secret calls of the Kubernetes API it makes. No Kubernetes API
// server can run on these machines: this stand-in checks the script's logic (create
// when missing, add only missing keys, never change a password, retry when another run
// got there first); the RBAC, the hook's order under Helm and Argo CD, and the real API
// server's answers are those the Kubernetes documentation gives, unproven here.

interface StoredSecret {
  metadata: { name: string; namespace: string; resourceVersion: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  type: string;
  data?: Record<string, string>;
}

const TOKEN = 'stand-in-service-account-token';

class StandInApiServer {
  readonly secrets = new Map<string, StoredSecret>();
  readonly calls: string[] = [];
  /** Runs once, before the next PATCH is applied: another run changing the Secret meanwhile. */
  beforeNextPatch: ((secret: StoredSecret) => void) | undefined;
  private version = 1;
  private server!: Server;

  async start(key: string, cert: string): Promise<number> {
    this.server = createServer({ key, cert }, (req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        const answer = (status: number, object: unknown) => {
          res.writeHead(status, { 'content-type': 'application/json' });
          res.end(JSON.stringify(object));
        };
        this.calls.push(`${req.method} ${req.url}`);
        if (req.headers.authorization !== `Bearer ${TOKEN}`) return answer(401, { kind: 'Status', code: 401, reason: 'Unauthorized' });
        const match = /^\/api\/v1\/namespaces\/([^/]+)\/secrets(?:\/([^/]+))?$/.exec(req.url ?? '');
        if (match === null) return answer(404, { kind: 'Status', code: 404 });
        const [, namespace, name] = match;
        const stored = name === undefined ? undefined : this.secrets.get(`${namespace}/${name}`);
        if (req.method === 'GET') return stored ? answer(200, stored) : answer(404, { kind: 'Status', code: 404, reason: 'NotFound' });
        if (req.method === 'POST' && name === undefined) {
          const secret = JSON.parse(body) as StoredSecret;
          const id = `${namespace}/${secret.metadata.name}`;
          if (this.secrets.has(id)) return answer(409, { kind: 'Status', code: 409, reason: 'AlreadyExists' });
          secret.metadata.resourceVersion = String(this.version++);
          this.secrets.set(id, secret);
          return answer(201, secret);
        }
        if (req.method === 'PATCH' && stored !== undefined) {
          if (req.headers['content-type'] !== 'application/json-patch+json') return answer(415, { kind: 'Status', code: 415 });
          this.beforeNextPatch?.(stored);
          this.beforeNextPatch = undefined;
          const next = structuredClone(stored);
          for (const op of JSON.parse(body) as Array<{ op: string; path: string; value: unknown }>) {
            const [, top, key] = op.path.split('/');
            if (op.op === 'test' && op.path === '/metadata/resourceVersion') {
              if (op.value !== stored.metadata.resourceVersion)
                return answer(422, { kind: 'Status', code: 422, message: 'testing value /metadata/resourceVersion failed' });
            } else if (op.op === 'add' && top === 'data' && key === undefined) next.data = op.value as Record<string, string>;
            else if (op.op === 'add' && top === 'data') next.data = { ...next.data, [key!.replaceAll('~1', '/').replaceAll('~0', '~')]: op.value as string };
            else return answer(422, { kind: 'Status', code: 422, message: `unsupported ${op.op} ${op.path}` });
          }
          next.metadata.resourceVersion = String(this.version++);
          this.secrets.set(`${namespace}/${name}`, next);
          return answer(200, next);
        }
        return answer(405, { kind: 'Status', code: 405 });
      });
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return (this.server.address() as AddressInfo).port;
  }

  /** A Secret already there, as an earlier chart or another run left it. */
  put(namespace: string, name: string, data: Record<string, string>): void {
    this.secrets.set(`${namespace}/${name}`, {
      metadata: { name, namespace, resourceVersion: String(this.version++) },
      type: 'Opaque',
      data: Object.fromEntries(Object.entries(data).map(([key, value]) => [key, Buffer.from(value).toString('base64')])),
    });
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

const decoded = (secret: StoredSecret | undefined) =>
  Object.fromEntries(Object.entries(secret?.data ?? {}).map(([key, value]) => [key, Buffer.from(value, 'base64').toString()]));

describe('the database-credentials Job, against a stand-in for the Kubernetes API', () => {
  let dir: string;
  let job: K8sObject;
  let jobEnv: Record<string, string>;
  let api: StandInApiServer;
  let port: number;

  /** Runs the Job's container command with its rendered environment, the API's address and a token of our own. */
  async function runJob(overrides: Record<string, string> = {}) {
    const container = podSpecOf(job).containers[0];
    return tryCommand(container.command[0], container.command.slice(1), {
      env: { PATH: process.env.PATH, ...jobEnv, TOKEN_DIR: dir, KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: String(port), ...overrides },
      timeoutMs: 30_000,
    });
  }

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'wiki-credentials-'));
    await runCommand('openssl', [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=kubernetes',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
      '-keyout',
      join(dir, 'key.pem'),
      '-out',
      join(dir, 'ca.crt'),
    ]);
    await writeFile(join(dir, 'token'), `${TOKEN}\n`);
    const objects = await renderChart();
    job = componentObject(objects, 'Job', 'credentials')!;
    jobEnv = Object.fromEntries(podSpecOf(job).containers[0].env.map((variable: { name: string; value: string }) => [variable.name, variable.value]));
  });
  beforeEach(async () => {
    api = new StandInApiServer();
    port = await api.start(await readFile(join(dir, 'key.pem'), 'utf8'), await readFile(join(dir, 'ca.crt'), 'utf8'));
    return () => api.stop();
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("on a fresh install: creates the Secret with a different 32-character password for every role's key, labelled as the chart's", async () => {
    const result = await runJob();
    expect(result.ok, result.output).toBe(true);
    expect(result.output).toContain(
      `credentials: created Secret ${jobEnv.SECRET_NAME} with a generated password for password, postgres-password, monitoring-password, backup-password`,
    );
    const secret = api.secrets.get(`${jobEnv.NAMESPACE}/${jobEnv.SECRET_NAME}`)!;
    const passwords = decoded(secret);
    expect(Object.keys(passwords)).toEqual(['password', 'postgres-password', 'monitoring-password', 'backup-password']);
    for (const password of Object.values(passwords)) expect(password).toMatch(/^[A-Za-z0-9]{32}$/);
    expect(new Set(Object.values(passwords)).size).toBe(4);
    expect(secret.metadata.labels).toEqual(JSON.parse(jobEnv.SECRET_LABELS!));
  });

  it('at every later sync or upgrade (Argo CD runs it each time): changes nothing, and writes nothing', async () => {
    expect((await runJob()).ok).toBe(true);
    const before = structuredClone(api.secrets.get(`${jobEnv.NAMESPACE}/${jobEnv.SECRET_NAME}`));
    const calls = api.calls.length;
    const again = await runJob();
    expect(again.ok, again.output).toBe(true);
    expect(again.output).toContain('holds every key');
    expect(api.secrets.get(`${jobEnv.NAMESPACE}/${jobEnv.SECRET_NAME}`)).toEqual(before);
    expect(api.calls.slice(calls)).toEqual([`GET /api/v1/namespaces/${jobEnv.NAMESPACE}/secrets/${jobEnv.SECRET_NAME}`]);
  });

  it("a Secret of chart 0.10 (the API's password only): the other keys are added, the API's password stays as it was", async () => {
    api.put(jobEnv.NAMESPACE!, jobEnv.SECRET_NAME!, { password: 'the-password-of-0.10' });
    const result = await runJob();
    expect(result.ok, result.output).toBe(true);
    expect(result.output).toContain('added a generated password for postgres-password, monitoring-password, backup-password');
    const passwords = decoded(api.secrets.get(`${jobEnv.NAMESPACE}/${jobEnv.SECRET_NAME}`));
    expect(passwords.password).toBe('the-password-of-0.10');
    expect(Object.keys(passwords).sort()).toEqual(['backup-password', 'monitoring-password', 'password', 'postgres-password']);
  });

  it('another run that adds a key between our read and our write wins: its password is kept, ours is not written over it', async () => {
    api.put(jobEnv.NAMESPACE!, jobEnv.SECRET_NAME!, { password: 'kept' });
    api.beforeNextPatch = (secret) => {
      secret.data = { ...secret.data, 'monitoring-password': Buffer.from('written-by-the-other-run').toString('base64') };
      secret.metadata.resourceVersion = `${secret.metadata.resourceVersion}-changed`;
    };
    const result = await runJob();
    expect(result.ok, result.output).toBe(true);
    const passwords = decoded(api.secrets.get(`${jobEnv.NAMESPACE}/${jobEnv.SECRET_NAME}`));
    expect(passwords).toMatchObject({ password: 'kept', 'monitoring-password': 'written-by-the-other-run' });
    expect(Object.keys(passwords).sort()).toEqual(['backup-password', 'monitoring-password', 'password', 'postgres-password']);
    expect(api.calls.filter((call) => call.startsWith('PATCH'))).toHaveLength(2);
  });

  it('a refusal of the API (a wrong token) fails the Job, saying what answered', async () => {
    const wrongDir = await mkdtemp(join(tmpdir(), 'wiki-credentials-wrong-'));
    try {
      await writeFile(join(wrongDir, 'token'), 'not-the-token\n');
      await writeFile(join(wrongDir, 'ca.crt'), await readFile(join(dir, 'ca.crt')));
      const result = await runJob({ TOKEN_DIR: wrongDir });
      expect(result.ok).toBe(false);
      expect(result.output).toContain(`credentials: reading Secret ${jobEnv.SECRET_NAME} answered 401`);
      expect(api.secrets.size).toBe(0);
    } finally {
      await rm(wrongDir, { recursive: true, force: true });
    }
  });
});
