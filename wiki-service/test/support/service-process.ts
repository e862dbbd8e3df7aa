import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '@wiki/test-support/postgres';
import { sleep } from '@wiki/test-support/wait';

// The built service (dist/server.js) as its own process, as it runs in production:
// real signals, real exit codes, its own stdout. The service's own tests use it, and
// the system tests through the package's exports (`wiki-service/service-process`);
// @wiki/test-support, which the service's tests depend on, does not depend back.

export const SERVICE_DIR = join(import.meta.dirname, '..', '..');
export const SERVER_SCRIPT = join(SERVICE_DIR, 'dist', 'server.js');
export const MIGRATE_SCRIPT = join(SERVICE_DIR, 'dist', 'migrate.js');

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface NodeProcess {
  child: ChildProcess;
  /** stdout and stderr as they arrive. */
  output(): string;
  /** stdout lines parsed as JSON (the service's structured log). */
  logLines(): Array<Record<string, unknown>>;
  exited: Promise<Exit>;
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
  const child = spawn(options.nodeBinary ?? process.execPath, [...(options.nodeArgs ?? []), script, ...(options.args ?? [])], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
    stdio: ['ignore', options.discardStdout ? 'ignore' : 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<Exit>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return {
    child,
    output: () => stdout + stderr,
    logLines: () =>
      stdout
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as Record<string, unknown>),
    exited,
  };
}

export interface ServiceProcess extends NodeProcess {
  baseUrl: string;
  /** Sends the signal and waits for the exit. */
  stop(signal?: NodeJS.Signals): Promise<Exit>;
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
  const service: ServiceProcess = {
    ...process_,
    baseUrl,
    stop: async (signal = 'SIGTERM') => {
      if (process_.child.exitCode === null && process_.child.signalCode === null) process_.child.kill(signal);
      return process_.exited;
    },
  };
  const deadline = Date.now() + (options.startTimeoutMs ?? 60_000);
  let exit: Exit | undefined;
  void process_.exited.then((value) => (exit = value));
  while (Date.now() < deadline) {
    if (exit !== undefined) throw new Error(`service exited during start-up (${JSON.stringify(exit)}):\n${process_.output()}`);
    try {
      if ((await fetch(`${baseUrl}/health`)).ok) return service;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  await service.stop('SIGKILL');
  throw new Error(`service did not answer /health in time:\n${process_.output()}`);
}
