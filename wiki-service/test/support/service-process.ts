import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '@wiki/test-support/postgres';
import { startProcess, type StartedProcess } from '@wiki/test-support/process';
import { until } from '@wiki/test-support/wait';

// The built service (dist/server.js) as its own process, as it runs in production:
// real signals, real exit codes, its own stdout. The service's own tests use it, and
// the system tests through the package's exports (`wiki-service/service-process`);
// @wiki/test-support, which the service's tests depend on, does not depend back.

export const SERVICE_DIR = join(import.meta.dirname, '..', '..');
export const SERVER_SCRIPT = join(SERVICE_DIR, 'dist', 'server.js');
export const MIGRATE_SCRIPT = join(SERVICE_DIR, 'dist', 'migrate.js');

export interface NodeProcess extends StartedProcess {
  /** stdout lines parsed as JSON (the service's structured log). */
  logLines: () => Array<Record<string, unknown>>;
}

/**
 * The Node.js flags of `npm start` (package.json), so tests and the benchmark run
 * the server exactly as it is started for real.
 */
export function startFlags(): string[] {
  const packageJson = JSON.parse(readFileSync(join(SERVICE_DIR, 'package.json'), 'utf8')) as { scripts: { start: string } };
  const [command, ...args] = packageJson.scripts.start.split(/\s+/);
  if (command !== 'node' || args.at(-1) !== 'dist/server.js') throw new Error('expected "start": "node [flags] dist/server.js"');
  return args.slice(0, -1);
}

/** Runs a built script with exactly the given environment (plus PATH), nothing inherited. */
export function runNode(
  script: string,
  env: Record<string, string>,
  options: { nodeArgs?: string[]; args?: string[]; discardStdout?: boolean; nodeBinary?: string } = {},
): NodeProcess {
  if (!existsSync(script)) throw new Error(`${script} is missing: run "npm run build" first`);
  const started = startProcess(options.nodeBinary ?? process.execPath, [...(options.nodeArgs ?? []), script, ...(options.args ?? [])], {
    env,
    inheritEnv: false,
    discardStdout: options.discardStdout,
  });
  return {
    ...started,
    logLines: () =>
      started
        .stdout()
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}

export interface ServiceProcess extends NodeProcess {
  baseUrl: string;
}

/**
 * Starts dist/server.js (or `options.serverScript`, another build of it) on a free port
 * (or `options.port`) and waits until /health answers.
 */
export async function startService(
  env: Record<string, string>,
  options: { startTimeoutMs?: number; extraNodeArgs?: string[]; discardStdout?: boolean; port?: number; serverScript?: string; nodeBinary?: string } = {},
): Promise<ServiceProcess> {
  // A given port: a process started again where an earlier one listened (a container
  // restarted in the same pod keeps its address).
  const port = options.port ?? (await freePort());
  const nodeArgs = [...startFlags(), ...(options.extraNodeArgs ?? [])];
  // The helper owns HOST and PORT: it must know where to reach the service.
  const process_ = runNode(
    options.serverScript ?? SERVER_SCRIPT,
    { ...env, HOST: '127.0.0.1', PORT: String(port) },
    { nodeArgs, discardStdout: options.discardStdout, nodeBinary: options.nodeBinary },
  );
  const baseUrl = `http://127.0.0.1:${port}`;
  const service: ServiceProcess = { ...process_, baseUrl };
  try {
    await until('the service to answer /health', options.startTimeoutMs ?? 60_000, async () => (await fetch(`${baseUrl}/health`)).ok, {
      intervalMs: 100,
      giveUpIf: () => (service.exit() === undefined ? undefined : `it exited during start-up (${JSON.stringify(service.exit())})`),
    });
  } catch (error) {
    await service.stop('SIGKILL');
    throw new Error(`${(error as Error).message}:\n${process_.output()}`, { cause: error });
  }
  return service;
}
