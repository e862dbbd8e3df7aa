import { readFileSync } from 'node:fs';
import { appendFile, cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client } from '@wiki/test-support/http';
import { PostgresServer } from '@wiki/test-support/postgres';
import {
  BASE_IMAGE,
  buildServiceImage,
  officialNamesOnStandIns,
  podman,
  podmanMissing,
  REPO_ROOT,
  SERVICE_DIR,
  SERVICE_IMAGE as IMAGE,
  startServiceContainer,
} from './support/podman.js';
import { skipLoudly } from './support/skip.js';

// Phase 3, proven here: build wiki-service/Dockerfile unchanged with Podman and run
// the image the way Kubernetes will (read-only root, unprivileged, SIGTERM to stop).
// No image can be pulled on these machines, so the official Node.js base image the
// Dockerfile names is replaced by a local stand-in (image/make-base-image.sh), passed in
// through the Dockerfile's ARG NODE_IMAGE under its own name, localhost/stand-in/...;
// afterwards no official name may point at a stand-in.

const PROJECT_LAYERS_TARGET_MB = 80;

const skip = skipLoudly(podmanMissing(), 'the container image tests are');

const containers: string[] = [];
const volumes: string[] = [];

async function startContainer(name: string, env: Record<string, string>, volume?: string): Promise<string> {
  containers.push(name);
  return startServiceContainer(name, env, { extraArgs: volume === undefined ? [] : ['--volume', `${volume}:/app/data`] });
}

/** Creates a user and a post, reads both back, and checks /metrics counted them. */
async function exerciseApi(baseUrl: string) {
  const api = client(baseUrl);
  const user = await api.post('/users', { name: 'in a container 🐳' });
  expect(user.status).toBe(200);
  const post = await api.post('/posts', { user_id: user.body.id, content: 'hello from the image' });
  expect(post.status).toBe(200);
  expect((await api.get(`/user/${user.body.id}`)).body).toEqual(user.body);
  expect((await api.get(`/posts/${post.body.post_id}`)).body).toEqual(post.body);
  const metrics = (await api.get('/metrics')).text;
  expect(metrics).toMatch(/^users_created_total 1$/m);
  expect(metrics).toMatch(/^posts_created_total 1$/m);
  return { user: user.body, post: post.body };
}

describe.skipIf(skip)('the container image', () => {
  let baseStandIn = '';
  beforeAll(async () => {
    baseStandIn = await buildServiceImage();
  });

  afterAll(async () => {
    for (const name of containers) await podman(['rm', '--force', '--time', '0', name]).catch(() => {});
    for (const volume of volumes) await podman(['volume', 'rm', '--force', volume]).catch(() => {});
    const lookAlikes = await officialNamesOnStandIns([BASE_IMAGE!]);
    if (lookAlikes.length > 0) throw new Error(`after the tests, official names point at stand-ins: ${lookAlikes.join(', ')}`);
  });

  it('carries the OCI labels and runs node as a numeric non-root user', async () => {
    const config = JSON.parse(await podman(['image', 'inspect', IMAGE, '--format', '{{json .Config}}'])) as {
      User: string;
      Labels: Record<string, string>;
      ExposedPorts: Record<string, unknown>;
      Volumes: Record<string, unknown>;
      Cmd: string[];
      Entrypoint: string[] | null;
    };
    expect(config.User).toBe('1000:1000');
    expect(Object.keys(config.ExposedPorts)).toEqual(['8000/tcp']);
    expect(Object.keys(config.Volumes)).toEqual(['/app/data']);
    expect(config.Cmd).toEqual(['node', '--max-semi-space-size=4', '--liftoff-only', '--no-maglev', 'dist/server.js']);
    for (const label of ['title', 'description', 'version', 'revision', 'created', 'licenses', 'base.name']) {
      expect(config.Labels, label).toHaveProperty(`org.opencontainers.image.${label}`);
    }
    // Built here on the stand-in, and the image says so: its base is the stand-in's name,
    // which says what it stands in for.
    expect(config.Labels['org.opencontainers.image.base.name']).toBe(baseStandIn);
    expect(config.Labels['wiki.stand-in-for']).toBe(BASE_IMAGE);
    // The CMD agrees with `npm start`.
    const start = (JSON.parse(readFileSync(join(SERVICE_DIR, 'package.json'), 'utf8')) as { scripts: { start: string } }).scripts.start;
    expect(config.Cmd.join(' ')).toBe(start);
  });

  it('the check finds an official name on a stand-in, as the scripts of earlier versions left them', async () => {
    expect(await officialNamesOnStandIns([BASE_IMAGE!])).toEqual([]);
    await podman(['tag', baseStandIn, BASE_IMAGE!]); // podman names it localhost/node:...
    try {
      expect(await officialNamesOnStandIns([BASE_IMAGE!])).toEqual([BASE_IMAGE]);
    } finally {
      await podman(['untag', baseStandIn, `localhost/${BASE_IMAGE!}`]);
    }
    expect(await officialNamesOnStandIns([BASE_IMAGE!])).toEqual([]);
  });

  it('on the embedded database: read-only root, uid 1000 as PID 1, serves, counts, keeps data in its volume, stops cleanly on SIGTERM', async () => {
    const volume = `wiki-image-test-${process.pid}`;
    volumes.push(volume);
    const name = `wiki-image-embedded-${process.pid}`;
    const baseUrl = await startContainer(name, {}, volume);

    const status = await podman(['exec', name, 'cat', '/proc/1/status']);
    expect(status).toMatch(/^Uid:\s+1000\s+1000\s+1000\s+1000$/m);
    expect(status).toMatch(/^CapEff:\s+0+$/m);
    expect(status).toMatch(/^NoNewPrivs:\s+1$/m);
    const cmdline = (await podman(['exec', name, 'cat', '/proc/1/cmdline'])).split('\0').filter(Boolean);
    expect(cmdline).toEqual(['node', '--max-semi-space-size=4', '--liftoff-only', '--no-maglev', 'dist/server.js']);
    // The root filesystem really is read-only.
    await expect(podman(['exec', name, 'touch', '/app/written'])).rejects.toThrow(/Read-only file system/);

    const { user } = await exerciseApi(baseUrl);

    const stopped = Date.now();
    await podman(['stop', '--time', '10', name], { timeoutMs: 30_000 });
    const stopSeconds = (Date.now() - stopped) / 1000;
    expect(await podman(['inspect', name, '--format', '{{.State.ExitCode}}'])).toBe('0');
    const logs = await podman(['logs', name]);
    expect(logs).toContain('"msg":"shutdown complete"');
    console.log(`image: SIGTERM to exit took ${stopSeconds.toFixed(1)} s (5 s of it is the default SHUTDOWN_DELAY_SECONDS)`);

    // A new container on the same volume finds the data.
    const again = await startContainer(`${name}-again`, {}, volume);
    expect((await client(again).get(`/user/${user.id}`)).body).toEqual(user);
  });

  it('against a PostgreSQL on the host', async () => {
    const postgres = await PostgresServer.create();
    try {
      const name = `wiki-image-postgres-${process.pid}`;
      const baseUrl = await startContainer(name, { DATABASE_URL: await postgres.createDatabase('image') });
      expect(await podman(['logs', name])).toMatch(/"database":"PostgreSQL postgresql:\/\/wiki@127\.0\.0\.1:\d+\/image_/);
      await exerciseApi(baseUrl);
      expect((await client(baseUrl).get('/ready')).body).toEqual({ status: 'ready' });
      await podman(['stop', '--time', '10', name], { timeoutMs: 30_000 });
      expect(await podman(['inspect', name, '--format', '{{.State.ExitCode}}'])).toBe('0');
    } finally {
      await postgres.destroy();
    }
  });

  it('a source change reuses the cached dependency layers', async () => {
    // Build a copy of the context with one source file changed.
    const context = await mkdtemp(join(tmpdir(), 'wiki-image-context-'));
    try {
      // The files the build context's .dockerignore lets in, from a copy of the repository.
      for (const file of ['.dockerignore', 'package.json', 'package-lock.json']) await cp(join(REPO_ROOT, file), join(context, file));
      await cp(SERVICE_DIR, join(context, 'wiki-service'), {
        recursive: true,
        filter: (source) => !/\/(node_modules|dist|data)(\/|$)/.test(source.slice(SERVICE_DIR.length)),
      });
      await appendFile(join(context, 'wiki-service', 'src', 'server.ts'), `\n// cache test ${Date.now()}\n`);
      const output = await podman(
        [
          'build',
          '--network',
          'host',
          '--build-arg',
          `NODE_IMAGE=${baseStandIn}`,
          '--tag',
          `${IMAGE}-cachetest`,
          '--file',
          join(context, 'wiki-service', 'Dockerfile'),
          context,
        ],
        {
          timeoutMs: 20 * 60_000,
        },
      );
      const stepsUsingCache = output
        .split(/^(?:\[\d+\/\d+\] )?STEP /m)
        .filter((step) => step.includes('--> Using cache'))
        .map((step) => step.split('\n')[0] ?? '');
      expect(stepsUsingCache.filter((step) => step.includes('RUN npm ci'))).toHaveLength(2); // deps and build stages
      expect(stepsUsingCache.some((step) => step.includes('COPY wiki-service/src'))).toBe(false);
    } finally {
      await rm(context, { recursive: true, force: true });
      await podman(['rmi', '--force', `${IMAGE}-cachetest`]).catch(() => {});
    }
  });

  it(`the project's own layers stay under ${PROJECT_LAYERS_TARGET_MB} MB`, async () => {
    const size = Number(await podman(['image', 'inspect', IMAGE, '--format', '{{.Size}}']));
    const baseSize = Number(await podman(['image', 'inspect', baseStandIn, '--format', '{{.Size}}']));
    const projectMb = (size - baseSize) / 1e6;
    console.log(`image: ${(size / 1e6).toFixed(1)} MB in all, base ${(baseSize / 1e6).toFixed(1)} MB, project layers ${projectMb.toFixed(1)} MB`);
    expect(projectMb).toBeLessThan(PROJECT_LAYERS_TARGET_MB);
  });
});
