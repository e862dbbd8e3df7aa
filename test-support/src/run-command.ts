import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

// Running a command to completion and capturing what it printed: helm, promtool,
// podman, amtool. One way to do it, so every failure reads the same way.

const execFileAsync = promisify(execFile);

export interface RunOptions {
  cwd?: string;
  /** The whole environment of the command; the default is this process's. */
  env?: NodeJS.ProcessEnv;
  /** Kills the command after this long; the default is two minutes, 0 is none. */
  timeoutMs?: number;
  /** Runs it as this user and group (the server user, for PostgreSQL's programs). */
  uid?: number;
  gid?: number;
}

export interface CommandResult {
  ok: boolean;
  /** stdout then stderr. */
  output: string;
}

async function execute(command: string, args: string[], options: RunOptions) {
  try {
    const { stdout, stderr } = await execFileAsync(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      maxBuffer: 64 * 1024 * 1024,
      timeout: options.timeoutMs ?? 120_000,
      uid: options.uid,
      gid: options.gid,
    });
    return { ok: true, stdout, stderr, error: undefined };
  } catch (error) {
    const { stdout, stderr } = error as { stdout?: string; stderr?: string };
    return { ok: false, stdout: stdout ?? '', stderr: stderr ?? '', error };
  }
}

/** Runs the command and returns its stdout; if it fails, throws an error that carries the command line and everything it printed. */
export async function runCommand(command: string, args: string[], options: RunOptions = {}): Promise<string> {
  const result = await execute(command, args, options);
  if (!result.ok) throw new Error(`${command} ${args.join(' ')} failed:\n${result.stdout}\n${result.stderr}`, { cause: result.error });
  return result.stdout;
}

/** Runs a command whose failure is an answer, not an error (`promtool check` of a bad file, `helm lint`). */
export async function tryCommand(command: string, args: string[], options: RunOptions = {}): Promise<CommandResult> {
  const { ok, stdout, stderr } = await execute(command, args, options);
  return { ok, output: stdout + stderr };
}
