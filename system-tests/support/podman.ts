import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

// Podman from Debian, as it works on these machines: as root, with the runc runtime
// (crun fails on this host's hybrid cgroups), host networking, and our own
// containers.conf (no default ulimits).

const execFileAsync = promisify(execFile);
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
  try {
    const { stdout } = await execFileAsync('podman', ['--runtime', 'runc', ...args], {
      env: { ...process.env, CONTAINERS_CONF },
      maxBuffer: 64 * 1024 * 1024,
      timeout: options.timeoutMs ?? 120_000,
    });
    return stdout.trim();
  } catch (error) {
    const { stderr, stdout } = error as { stderr?: string; stdout?: string };
    throw new Error(`podman ${args.join(' ')} failed:\n${stdout ?? ''}\n${stderr ?? ''}`);
  }
}

export async function run(command: string, args: string[], timeoutMs = 20 * 60_000): Promise<string> {
  try {
    const { stdout } = await execFileAsync(command, args, {
      env: { ...process.env, CONTAINERS_CONF },
      maxBuffer: 64 * 1024 * 1024,
      timeout: timeoutMs,
    });
    return stdout;
  } catch (error) {
    const { stderr, stdout } = error as { stderr?: string; stdout?: string };
    throw new Error(`${command} ${args.join(' ')} failed:\n${stdout ?? ''}\n${stderr ?? ''}`);
  }
}
