import { existsSync, readFileSync } from 'node:fs';
import { chown, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, postgresUserIfRoot } from './postgres.js';
import { runCommand } from './run-command.js';
import { startProcess, type StartedProcess } from './process.js';
import { until } from './wait.js';

// A throwaway PgBouncer in transaction pooling mode, the mode CloudNativePG's Pooler
// and most managed poolers run: a server connection belongs to a client only for one
// transaction, then serves another client. It forwards every database to one
// PostgreSQL port (a server, or a TcpEndpoint standing for a Service). PgBouncer
// refuses to run as root, so as root it runs as the `postgres` system user.

/** The PgBouncer to run: $PGBOUNCER_BIN, else tools/fetch-pgbouncer.sh's, else `pgbouncer` on PATH. */
export function findPgBouncer(): string | undefined {
  const fromEnv = process.env.PGBOUNCER_BIN;
  if (fromEnv !== undefined && fromEnv !== '') return existsSync(fromEnv) ? fromEnv : undefined;
  const fetched = fileURLToPath(new URL('../../.cache/pgbouncer/bin/pgbouncer', import.meta.url));
  if (existsSync(fetched)) return fetched;
  return ['/usr/sbin/pgbouncer', '/usr/bin/pgbouncer'].find((path) => existsSync(path));
}

/** Its version, e.g. [1, 26]. */
export async function pgBouncerVersion(binary: string): Promise<[number, number]> {
  const match = /PgBouncer (\d+)\.(\d+)/.exec(await runCommand(binary, ['--version']));
  if (match === null) throw new Error(`${binary} --version printed no PgBouncer version`);
  return [Number(match[1]), Number(match[2])];
}

export interface PgBouncerOptions {
  /** The PostgreSQL port every database is forwarded to (on 127.0.0.1). */
  targetPort: number;
  user: string;
  password: string;
  /**
   * Protocol-level prepared statements kept per server connection (PgBouncer 1.21 and
   * later). 0 turns the support off: a named statement then lives only on the server
   * connection that prepared it, which transaction pooling hands to other clients.
   */
  maxPreparedStatements?: number;
  /** Server connections per database and user. */
  poolSize?: number;
}

export class PgBouncer {
  /** Every PgBouncer process started, the running one last: the log reads them all. */
  private readonly processes: StartedProcess[] = [];

  private constructor(
    private readonly binary: string,
    private readonly dir: string,
    readonly port: number,
    private readonly options: PgBouncerOptions,
  ) {}

  static async start(options: PgBouncerOptions): Promise<PgBouncer> {
    const binary = findPgBouncer();
    if (binary === undefined) throw new Error('PgBouncer not found: run tools/fetch-pgbouncer.sh, or set PGBOUNCER_BIN');
    const dir = await mkdtemp(join(tmpdir(), 'wiki-pgbouncer-'));
    const bouncer = new PgBouncer(binary, dir, await freePort(), options);
    await bouncer.writeConfig();
    await bouncer.start();
    return bouncer;
  }

  url(database: string): string {
    return `postgresql://${this.options.user}:${encodeURIComponent(this.options.password)}@127.0.0.1:${this.port}/${database}`;
  }

  /** SIGKILL, as a pod killed at the end of its grace period or by the OOM killer; then waits for the exit. */
  async kill(): Promise<void> {
    await this.processes.at(-1)?.stop('SIGKILL');
  }

  /** Its log: what it did with each client and server connection. */
  log(): string {
    const file = join(this.dir, 'pgbouncer.log');
    return (existsSync(file) ? readFileSync(file, 'utf8') : '') + this.processes.map((started) => started.output()).join('');
  }

  async destroy(): Promise<void> {
    await this.kill();
    await rm(this.dir, { recursive: true, force: true });
  }

  private async writeConfig(): Promise<void> {
    const { targetPort, user, password, maxPreparedStatements = 200, poolSize = 20 } = this.options;
    const ini = join(this.dir, 'pgbouncer.ini');
    const users = join(this.dir, 'userlist.txt');
    await writeFile(
      ini,
      [
        '[databases]',
        `* = host=127.0.0.1 port=${targetPort}`,
        '[pgbouncer]',
        'listen_addr = 127.0.0.1',
        `listen_port = ${this.port}`,
        'unix_socket_dir =',
        'auth_type = scram-sha-256',
        `auth_file = ${users}`,
        'pool_mode = transaction',
        `max_prepared_statements = ${maxPreparedStatements}`,
        `default_pool_size = ${poolSize}`,
        'max_client_conn = 1000',
        // After a failed server login PgBouncer waits this long before trying again,
        // failing every client at once meanwhile. Its default, 15 s, would add up to 15 s
        // to every failover; a database endpoint that moves is back within a second.
        'server_login_retry = 1',
        `logfile = ${join(this.dir, 'pgbouncer.log')}`,
        '',
      ].join('\n'),
    );
    // The plain password lets PgBouncer log in to PostgreSQL with SCRAM as the client did.
    await writeFile(users, `"${user}" "${password}"\n`);
    const runAs = postgresUserIfRoot();
    if (runAs !== undefined) for (const path of [this.dir, ini, users]) await chown(path, runAs.uid, runAs.gid);
  }

  /** Starts PgBouncer (again, after `kill()`: on the same port, with the same settings). */
  async start(): Promise<void> {
    const runAs = postgresUserIfRoot();
    const started = startProcess(this.binary, [join(this.dir, 'pgbouncer.ini')], {
      uid: runAs?.uid,
      gid: runAs?.gid,
      cwd: this.dir,
      discardStdout: true,
    });
    this.processes.push(started);
    try {
      await until(`PgBouncer listening on ${this.port}`, 10_000, () => accepts(this.port), {
        intervalMs: 50,
        giveUpIf: () => (started.exit() === undefined ? undefined : `it exited (${JSON.stringify(started.exit())})`),
      });
    } catch (error) {
      await started.stop('SIGKILL');
      throw new Error(`${(error as Error).message}:\n${this.log()}`, { cause: error });
    }
  }
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
  });
}
