import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
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

/** Builds wiki-service/Dockerfile unchanged as SERVICE_IMAGE, on a local stand-in of its base image. */
export async function buildServiceImage(): Promise<void> {
  if (BASE_IMAGE === undefined) throw new Error('no "ARG NODE_IMAGE=..." in wiki-service/Dockerfile');
  await run('bash', [join(REPO_ROOT, 'system-tests', 'image', 'make-base-image.sh'), BASE_IMAGE]);
  const revision = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO_ROOT }).toString().trim();
  await podman(['build', '--network', 'host', '--build-arg', `REVISION=${revision}`, '--tag', SERVICE_IMAGE, '--file', DOCKERFILE, REPO_ROOT], {
    timeoutMs: 20 * 60_000,
  });
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
