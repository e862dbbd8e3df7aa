import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';

/** A long-running binary with its output kept for error messages. */
export interface Daemon {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
  /** SIGKILL, unless it has exited already; resolves once it has. */
  kill: () => Promise<void>;
}

export function startDaemon(binary: string, args: string[], env?: Record<string, string>): Daemon {
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'], env: env === undefined ? process.env : { ...process.env, ...env } });
  let output = '';
  child.stdout.on('data', (chunk) => (output += chunk));
  child.stderr.on('data', (chunk) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    child,
    output: () => output,
    exited,
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

/** Whether nothing listens on 127.0.0.1:`port`: a daemon that needs a fixed port says so before it starts. */
export async function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}
