import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { freePort } from '@wiki/test-support/postgres';
import { runCommand } from '@wiki/test-support/run-command';
import { sleep } from '@wiki/test-support/wait';

// Podman from Debian, as it works on these machines: as root, with the runc runtime
// (crun fails on this host's hybrid cgroups), host networking, and our own
// containers.conf (no default ulimits).

const HERE = dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = join(HERE, '..', '..');
const CONTAINERS_CONF = join(REPO_ROOT, 'system-tests', 'image', 'containers.conf');

/** Undefined when Podman can build and run images here, else why not. */
export function podmanMissing(): string | undefined {
  if (process.getuid?.() !== 0) return 'not running as root (rootless Podman is not set up here)';
  for (const binary of ['/usr/bin/podman', '/usr/sbin/runc', '/usr/sbin/debootstrap']) {
    if (!existsSync(binary)) return `${binary} is missing (apt-get install -y podman runc debootstrap)`;
  }
  return undefined;
}

export async function podman(args: string[], options: { timeoutMs?: number } = {}): Promise<string> {
  return (await run('podman', ['--runtime', 'runc', ...args], options.timeoutMs ?? 120_000)).trim();
}

/** Runs a command (podman, podman-compose, a build script) with our containers.conf. */
export async function run(command: string, args: string[], timeoutMs = 20 * 60_000, options: { cwd?: string } = {}): Promise<string> {
  return runCommand(command, args, { cwd: options.cwd, env: { ...process.env, CONTAINERS_CONF }, timeoutMs });
}

export const SERVICE_DIR = join(REPO_ROOT, 'wiki-service');
/** The Dockerfile, built with the repository's root as its context (the workspace's lockfile is there). */
export const DOCKERFILE = join(SERVICE_DIR, 'Dockerfile');
/** The tag the tests and the capacity benchmark build wiki-service/Dockerfile under. */
export const SERVICE_IMAGE = 'localhost/wiki-service:test';
/** The official Node.js image the Dockerfile names (ARG NODE_IMAGE=...), for which a local stand-in is made. */
export const BASE_IMAGE = /^ARG NODE_IMAGE=(\S+)$/m.exec(readFileSync(DOCKERFILE, 'utf8'))?.[1];
const IMAGE_SCRIPTS = join(REPO_ROOT, 'system-tests', 'image');

/**
 * Makes the stand-in for BASE_IMAGE (image/make-base-image.sh) and returns its name,
 * under localhost/stand-in/: never the official name (image/stand-ins.sh says why).
 */
export async function makeBaseStandIn(): Promise<string> {
  if (BASE_IMAGE === undefined) throw new Error('no "ARG NODE_IMAGE=..." in wiki-service/Dockerfile');
  const standIn = (await run('bash', [join(IMAGE_SCRIPTS, 'make-base-image.sh'), BASE_IMAGE])).trim().split('\n').at(-1)!;
  if (!standIn.startsWith('localhost/stand-in/')) throw new Error(`make-base-image.sh named its stand-in ${standIn}`);
  return standIn;
}

/** Builds wiki-service/Dockerfile unchanged as SERVICE_IMAGE, on the stand-in of its base image (through ARG NODE_IMAGE); returns the stand-in's name. */
export async function buildServiceImage(): Promise<string> {
  const base = await makeBaseStandIn();
  const revision = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO_ROOT }).toString().trim();
  await podman(
    [
      'build',
      '--network',
      'host',
      '--build-arg',
      `NODE_IMAGE=${base}`,
      '--build-arg',
      `REVISION=${revision}`,
      '--tag',
      SERVICE_IMAGE,
      '--file',
      DOCKERFILE,
      REPO_ROOT,
    ],
    { timeoutMs: 20 * 60_000 },
  );
  return base;
}

/** The official names stand-ins are made for: the Dockerfile's base, and the images compose.yaml pulls. */
export function officialImages(): string[] {
  const compose = parseYaml(readFileSync(join(REPO_ROOT, 'compose.yaml'), 'utf8'), { merge: true }) as {
    services: Record<string, { image?: string; build?: unknown }>;
  };
  const pulled = Object.values(compose.services).flatMap((service) => (service.image !== undefined && service.build === undefined ? [service.image] : []));
  return [BASE_IMAGE!, ...new Set(pulled)];
}

/** Those of `names` (official image names) that point at a stand-in on this machine (image/stand-ins.sh): there must be none. */
export async function officialNamesOnStandIns(names: string[]): Promise<string[]> {
  const output = await run('bash', [join(IMAGE_SCRIPTS, 'stand-ins.sh'), 'look-alikes', ...names]);
  return output.split('\n').filter((line) => line !== '');
}

/**
 * Runs SERVICE_IMAGE as the chart's pod security context runs it (read-only root, no
 * capabilities, no privilege escalation), on the host's network at a free port, and
 * waits until `readyPath` answers 200. `extraArgs` add `podman run` arguments (limits,
 * a volume). Returns the service's base URL.
 */
export async function startServiceContainer(
  name: string,
  env: Record<string, string>,
  options: { extraArgs?: string[]; readyPath?: string } = {},
): Promise<string> {
  const port = await freePort();
  const args = [
    'run',
    '--detach',
    '--name',
    name,
    '--read-only',
    '--cap-drop=ALL',
    '--security-opt=no-new-privileges',
    '--network',
    'host',
    ...(options.extraArgs ?? []),
  ];
  for (const [key, value] of Object.entries({ ...env, PORT: String(port), HOST: '127.0.0.1' })) args.push('--env', `${key}=${value}`);
  await podman([...args, SERVICE_IMAGE]);
  const baseUrl = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 300; i++) {
    if ((await fetch(`${baseUrl}${options.readyPath ?? '/health'}`).catch(() => undefined))?.ok) return baseUrl;
    const state = await podman(['inspect', name, '--format', '{{.State.Status}}']);
    if (state === 'exited') throw new Error(`container exited during start-up:\n${await podman(['logs', name])}`);
    await sleep(200);
  }
  throw new Error(`container did not answer ${options.readyPath ?? '/health'}:\n${await podman(['logs', name])}`);
}
