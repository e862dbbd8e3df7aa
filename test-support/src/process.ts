import { execa } from 'execa';

// Starting a long-running program from a test (a server, a daemon, a lock holder) and
// stopping it again. One way to do it, on execa: every started process is killed if
// the test process exits first (its `cleanup`), and a process asked to stop with
// SIGTERM that is still running 10 s later is killed with SIGKILL. Programs that run
// to completion go through run-command.ts instead.

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface StartOptions {
  cwd?: string;
  /** Added to this process's environment, or the whole environment with `inheritEnv: false`. */
  env?: Record<string, string | undefined>;
  /** False: the environment is `env` alone (plus PATH), nothing inherited. */
  inheritEnv?: boolean;
  /** Runs it as this user and group (the server user, for PostgreSQL's programs). */
  uid?: number;
  gid?: number;
  /** Stdout is not kept (a program that writes a lot that no test reads). */
  discardStdout?: boolean;
  /** In a process group of its own, so that a signal can reach its children too (`signalGroup`). */
  ownGroup?: boolean;
  /** Its stdin is a pipe that `write` writes to, as a terminal's typing; otherwise it reads nothing. */
  input?: boolean;
}

export interface StartedProcess {
  pid: number;
  /** Stdout and stderr, interleaved as they have arrived so far. */
  output: () => string;
  /** Stdout alone, as it has arrived so far. */
  stdout: () => string;
  /** How it ended, once it has; undefined while it runs. */
  exit: () => Exit | undefined;
  /** Resolves when it has exited. */
  exited: Promise<Exit>;
  /** Writes to its stdin (`input` only). */
  write: (text: string) => void;
  /** Sends a signal, and does not wait; no SIGKILL follows. */
  signal: (signal: NodeJS.Signals) => void;
  /** Sends a signal to its whole process group (`ownGroup` only), and does not wait. */
  signalGroup: (signal: NodeJS.Signals) => void;
  /**
   * Sends `signal` (SIGTERM unless given) unless it has exited, and waits for the exit.
   * After SIGTERM, a process still running 10 s later gets SIGKILL.
   */
  stop: (signal?: NodeJS.Signals) => Promise<Exit>;
}

const FORCE_KILL_AFTER_MS = 10_000;

export function startProcess(command: string, args: string[], options: StartOptions = {}): StartedProcess {
  const inheritEnv = options.inheritEnv ?? true;
  const subprocess = execa(command, args, {
    cwd: options.cwd,
    env: inheritEnv ? options.env : { PATH: process.env.PATH ?? '/usr/bin:/bin', ...options.env },
    extendEnv: inheritEnv,
    uid: options.uid,
    gid: options.gid,
    stdin: options.input ? 'pipe' : 'ignore',
    stdout: options.discardStdout ? 'ignore' : 'pipe',
    stderr: 'pipe',
    // Output is gathered here as it arrives, for tests that read it while the process runs.
    buffer: false,
    // An exit, even a failed one, is what the test asserts on, not an exception.
    reject: false,
    cleanup: true,
    forceKillAfterDelay: FORCE_KILL_AFTER_MS,
    killDescendants: options.ownGroup ?? false,
  });
  // A program that cannot start at all (not found, not executable) gets no pid.
  if (subprocess.pid === undefined) throw new Error(`${command} could not be started`);
  const pid = subprocess.pid;
  let stdout = '';
  let output = '';
  subprocess.stdout?.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    output += chunk.toString();
  });
  subprocess.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  let exit: Exit | undefined;
  const exited = subprocess.then((result) => {
    exit = { code: result.exitCode ?? null, signal: result.signal ?? null };
    return exit;
  });
  return {
    pid,
    output: () => output,
    stdout: () => stdout,
    exit: () => exit,
    exited,
    write: (text) => {
      if (subprocess.stdin === null) throw new Error('write needs a process started with input');
      subprocess.stdin.write(text);
    },
    // Straight to the process: no SIGKILL follows, so a test can watch what the program
    // does with the signal (a graceful shutdown that takes its time).
    signal: (signal) => {
      if (exit === undefined) process.kill(pid, signal);
    },
    signalGroup: (signal) => {
      if (!options.ownGroup) throw new Error('signalGroup needs a process started with ownGroup');
      if (exit === undefined) process.kill(-pid, signal);
    },
    stop: async (signal = 'SIGTERM') => {
      if (exit === undefined) subprocess.kill(signal);
      return exited;
    },
  };
}
