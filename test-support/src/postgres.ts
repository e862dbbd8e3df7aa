import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { chown, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { runCommand, tryCommand } from './run-command.js';
import { until } from './wait.js';

// A throwaway PostgreSQL server for tests and benchmarks: `initdb` in a temporary
// folder, listening on 127.0.0.1 on a free port, with password authentication over
// TCP as in production. Nothing is installed or left behind.
//
// `initdb` refuses to run as root, so when we are root (CI, containers) the server
// runs as the `postgres` system user that Debian's packages create.

export const TEST_DB_USER = 'wiki';
export const TEST_DB_PASSWORD = 'test-password-not-secret';

/** The server binaries: $PG_BIN_DIR, else the newest /usr/lib/postgresql/<version>/bin. */
export function findPostgresBinaries(): string | undefined {
  const fromEnv = process.env.PG_BIN_DIR;
  if (fromEnv !== undefined && fromEnv !== '') return existsSync(join(fromEnv, 'initdb')) ? fromEnv : undefined;
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((name) => existsSync(join(root, name, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] === undefined ? undefined : join(root, versions[0], 'bin');
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

export interface RunAs {
  uid: number;
  gid: number;
}

/** The system user servers (and programs that refuse root, like PgBouncer) run as: `postgres` when we are root. */
export function postgresUserIfRoot(): RunAs | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((entry) => entry.startsWith('postgres:'));
  if (line === undefined) throw new Error('running as root, but there is no "postgres" user to run PostgreSQL as');
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

/** How a server's folder is filled: by default `initdb` with a superuser of the given name. */
export interface CreateOptions {
  durable?: boolean;
  superuser?: string;
  /** The superuser's password (default TEST_DB_PASSWORD). */
  password?: string;
  /**
   * Creates the database cluster in `server.dataDir` instead of initdb (for example a
   * chart's own setup script, run with `server.runProgram`).
   */
  initialise?: (server: PostgresServer) => Promise<void>;
  /** postgresql.conf settings ("name=value") instead of the test defaults (max_connections=200). */
  settings?: string[];
  /**
   * Environment variables of the server's processes (its archive_command and
   * restore_command inherit them): where credentials belong, since PostgreSQL logs a
   * failed command line whole.
   */
  environment?: Record<string, string>;
}

export class PostgresServer {
  private constructor(
    readonly binDir: string,
    readonly dataDir: string,
    readonly port: number,
    private readonly runAs: RunAs | undefined,
    private readonly durable: boolean,
    readonly superuser: string,
    readonly password: string = TEST_DB_PASSWORD,
    private readonly settings: string[] = ['max_connections=200'],
    private readonly environment: Record<string, string> = {},
  ) {}

  /** A server another process (the global setup) created and runs. */
  static attach(shared: SharedPostgres): PostgresServer {
    return new PostgresServer(shared.binDir, shared.dataDir, shared.port, postgresUserIfRoot(), false, TEST_DB_USER);
  }

  get shared(): SharedPostgres {
    return { binDir: this.binDir, dataDir: this.dataDir, port: this.port };
  }

  /**
   * initdb + start. Tests want speed, so by default the server skips fsync; pass
   * `durable: true` for production settings (the benchmark does: commit cost is real).
   */
  static async create(options: CreateOptions = {}): Promise<PostgresServer> {
    const binDir = findPostgresBinaries();
    if (binDir === undefined) {
      throw new Error('PostgreSQL server binaries not found (install postgresql, or set PG_BIN_DIR)');
    }
    const runAs = postgresUserIfRoot();
    const dir = await mkdtemp(join(tmpdir(), 'wiki-pg-'));
    const passwordFile = join(dir, 'password');
    await writeFile(passwordFile, `${options.password ?? TEST_DB_PASSWORD}\n`);
    if (runAs !== undefined) {
      await chown(dir, runAs.uid, runAs.gid);
      await chown(passwordFile, runAs.uid, runAs.gid);
    }
    const superuser = options.superuser ?? TEST_DB_USER;
    const server = new PostgresServer(
      binDir,
      join(dir, 'data'),
      await freePort(),
      runAs,
      options.durable ?? false,
      superuser,
      options.password,
      options.settings,
      options.environment,
    );
    if (options.initialise !== undefined) {
      await options.initialise(server);
      await server.start();
      return server;
    }
    await server.run('initdb', [
      '--pgdata',
      server.dataDir,
      '--username',
      superuser,
      '--pwfile',
      passwordFile,
      '--auth-local',
      'trust',
      '--auth-host',
      'scram-sha-256',
      '--encoding',
      'UTF8',
      '--locale',
      'C',
      '--no-sync',
    ]);
    await server.start();
    return server;
  }

  /** Starts (or restarts) the server on the same data folder and port. */
  async start(): Promise<void> {
    const options = [
      `-p ${this.port}`,
      "-c listen_addresses='127.0.0.1'",
      `-c unix_socket_directories='${join(this.dataDir, '..')}'`,
      ...this.settings.map((setting) => `-c '${setting}'`),
      // A throwaway server for tests: durability against power loss buys nothing.
      ...(this.durable ? [] : ['-c fsync=off', '-c full_page_writes=off']),
    ].join(' ');
    try {
      await this.runProgram(
        join(this.binDir, 'pg_ctl'),
        ['--pgdata', this.dataDir, '--wait', '--timeout', '60', '--log', this.logFile, '-o', options, 'start'],
        this.environment,
      );
    } catch (error) {
      // Why the server refused to start is in its log, not in pg_ctl's output.
      const tail = this.log().split('\n').slice(-20).join('\n') || '(no server log)';
      throw new Error(`${(error as Error).message}\nserver log:\n${tail}`, { cause: error });
    }
  }

  private get logFile(): string {
    return join(this.dataDir, '..', 'server.log');
  }

  /** The server's log so far (every start appends to it). */
  log(): string {
    return existsSync(this.logFile) ? readFileSync(this.logFile, 'utf8') : '';
  }

  /** Stops the server ("fast": running transactions are rolled back, clients disconnected). */
  async stop(): Promise<void> {
    await this.run('pg_ctl', ['--pgdata', this.dataDir, '--wait', '--mode', 'fast', 'stop']);
  }

  /** `pg_ctl restart -m fast`: running transactions rolled back, every client disconnected, then up again. */
  async restart(): Promise<void> {
    await this.run('pg_ctl', ['--pgdata', this.dataDir, '--wait', '--mode', 'fast', 'stop']);
    await this.start();
  }

  /**
   * kill -9 of the postmaster, as an OOM kill or a node failure does, then a start
   * with crash recovery. The orphaned backends exit by themselves once they notice;
   * until they have, the new postmaster refuses to start on their shared memory, so
   * the start is retried.
   */
  async killAndStart(): Promise<void> {
    this.kill();
    await until(
      'PostgreSQL to start again after kill -9',
      30_000,
      async () => {
        await this.start();
        return true;
      },
      { intervalMs: 200 },
    );
  }

  /**
   * Freezes (SIGSTOP) or thaws (SIGCONT) the postmaster and every backend: the server
   * keeps its connections open but answers nothing, like a database on a hung host.
   */
  async setFrozen(frozen: boolean): Promise<void> {
    const postmaster = String(this.postmasterPid());
    const stdout = await runCommand('pgrep', ['-P', postmaster]);
    for (const pid of [postmaster, ...stdout.split('\n').filter(Boolean)]) process.kill(Number(pid), frozen ? 'SIGSTOP' : 'SIGCONT');
  }

  /** Ends every session on one database while the server stays up (pg_terminate_backend). */
  async terminateBackends(database: string): Promise<number> {
    const rows = await this.query<{ terminated: boolean }>(
      `SELECT pg_terminate_backend(pid) AS terminated FROM pg_stat_activity WHERE datname = '${database}' AND pid <> pg_backend_pid()`,
    );
    return rows.filter((row) => row.terminated).length;
  }

  /**
   * A hot standby of this server, as a replica that has not been promoted: a base
   * backup (pg_basebackup --write-recovery-conf, so it streams the primary's write-ahead
   * log), started on a port of its own. It answers reads and refuses every write
   * (read_only_sql_transaction) until `promote()`. Its `name` is the application_name
   * it streams under (through cluster_name), the name `synchronous_standby_names` lists.
   */
  async startStandby(name = 'standby'): Promise<PostgresServer> {
    const dir = await mkdtemp(join(tmpdir(), 'wiki-pg-standby-'));
    if (this.runAs !== undefined) await chown(dir, this.runAs.uid, this.runAs.gid);
    const standby = new PostgresServer(
      this.binDir,
      join(dir, 'data'),
      await freePort(),
      this.runAs,
      this.durable,
      this.superuser,
      this.password,
      [...this.settings.filter((setting) => !setting.startsWith('cluster_name=')), `cluster_name=${name}`],
      this.environment,
    );
    await this.runProgram(
      join(this.binDir, 'pg_basebackup'),
      ['--pgdata', standby.dataDir, ...this.connectionOptions(), '--write-recovery-conf', '--checkpoint=fast'],
      { PGPASSWORD: this.password },
    );
    await standby.start();
    return standby;
  }

  /**
   * Brings a failed primary back as a standby of the server that replaced it, as an
   * operator does (CloudNativePG runs pg_rewind too): pg_rewind winds back what this
   * server wrote that the new primary never received (it runs crash recovery first
   * after a kill -9; it needs wal_log_hints=on), then it starts streaming from
   * `newPrimary`. The server must be stopped.
   */
  async rewindAndFollow(newPrimary: PostgresServer): Promise<void> {
    const source = `host=127.0.0.1 port=${newPrimary.port} user=${newPrimary.superuser} dbname=postgres`;
    // After a kill -9, pg_rewind's crash recovery cannot start until the orphaned
    // backends have noticed and exited (as killAndStart): it is retried until then.
    await until(
      'pg_rewind to run',
      30_000,
      async () => {
        await this.runProgram(join(this.binDir, 'pg_rewind'), ['--target-pgdata', this.dataDir, '--source-server', source, '--write-recovery-conf'], {
          PGPASSWORD: newPrimary.password,
        });
        return true;
      },
      { intervalMs: 200 },
    );
    await this.start();
  }

  /** Kills the postmaster with SIGKILL, as an OOM kill or a lost node does, and leaves it down. */
  kill(): void {
    process.kill(this.postmasterPid(), 'SIGKILL');
  }

  private postmasterPid(): number {
    return Number(readFileSync(join(this.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  }

  private connectionOptions(): string[] {
    return ['--host', '127.0.0.1', '--port', String(this.port), '--username', this.superuser];
  }

  /** `pg_ctl promote`: a standby becomes a primary and takes writes. */
  async promote(): Promise<void> {
    await this.run('pg_ctl', ['--pgdata', this.dataDir, '--wait', 'promote']);
  }

  /** Stops the server and deletes its folder. */
  async destroy(): Promise<void> {
    await this.stop().catch(() => {});
    await rm(join(this.dataDir, '..'), { recursive: true, force: true });
  }

  url(database = 'postgres'): string {
    return `postgresql://${this.superuser}:${encodeURIComponent(this.password)}@127.0.0.1:${this.port}/${database}`;
  }

  /** Creates an empty database with a unique name and returns its URL. */
  async createDatabase(prefix = 'test'): Promise<string> {
    const name = `${prefix}_${process.pid}_${Math.random().toString(36).slice(2, 10)}`;
    await this.query(`CREATE DATABASE ${name}`);
    return this.url(name);
  }

  async query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, database = 'postgres'): Promise<R[]> {
    const client = new pg.Client({ connectionString: this.url(database) });
    await client.connect();
    try {
      return (await client.query<R>(text)).rows;
    } finally {
      await client.end();
    }
  }

  private async run(program: string, args: string[]): Promise<void> {
    await this.runProgram(join(this.binDir, program), args);
  }

  /**
   * Runs a program as the server's system user (`postgres` when we are root), with the
   * server binaries first on PATH and `env` added; returns its output, or throws with it.
   */
  async runProgram(file: string, args: string[], env: Record<string, string> = {}): Promise<string> {
    const { ok, output } = await tryCommand(file, args, {
      uid: this.runAs?.uid,
      gid: this.runAs?.gid,
      cwd: tmpdir(),
      env: { PATH: `${this.binDir}:${process.env.PATH}`, LANG: 'C', LC_ALL: 'C', ...env },
      timeoutMs: 0, // a server start or a restore under load takes what it takes
    });
    if (!ok) throw new Error(`${file} ${args.join(' ')} failed:\n${output}`);
    return output;
  }

  /** Makes `path` (a file or folder the test created) the server user's, so runProgram can use it. */
  async giveToServerUser(path: string): Promise<void> {
    if (this.runAs !== undefined) await chown(path, this.runAs.uid, this.runAs.gid);
  }
}

/** Connection details handed from the global setup to test files. */
export interface SharedPostgres {
  binDir: string;
  dataDir: string;
  port: number;
}
