import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { PostgresServer } from './postgres.js';

// Barman Cloud, the programs CloudNativePG's Barman Cloud plugin runs in each instance's
// pod: barman-cloud-wal-archive as PostgreSQL's archive_command (every WAL segment to
// the object store as soon as it is complete), barman-cloud-backup for base backups,
// and for a recovery barman-cloud-restore (the base backup into an empty data folder)
// then barman-cloud-wal-restore as restore_command (the WAL up to the target).
// Debian 12's `barman-cli-cloud`, with `python3-boto3` for S3.

const PROGRAMS = ['barman-cloud-backup', 'barman-cloud-wal-archive', 'barman-cloud-restore', 'barman-cloud-wal-restore'];

/** What is missing to run Barman Cloud, or undefined. */
export function barmanCloudMissing(): string | undefined {
  const missing = PROGRAMS.filter((program) => !existsSync(join('/usr/bin', program)));
  return missing.length === 0 ? undefined : `${missing.join(', ')} missing (apt-get install -y barman-cli-cloud python3-boto3)`;
}

/** Where a server's backups and WAL go: a folder of an S3 bucket, under the server's name. */
export interface BackupDestination {
  endpoint: string;
  /** s3://bucket/folder */
  url: string;
  serverName: string;
  accessKeyId: string;
  secretAccessKey: string;
}

/**
 * The object store's credentials, as environment variables (boto3 reads them). They go
 * into the environment of the server (PostgresServer's `environment`) and of each
 * program, never into archive_command or restore_command: PostgreSQL logs a failed
 * command line whole.
 */
export function objectStoreEnvironment(destination: BackupDestination): Record<string, string> {
  return { AWS_ACCESS_KEY_ID: destination.accessKeyId, AWS_SECRET_ACCESS_KEY: destination.secretAccessKey };
}

/** archive_command: PostgreSQL runs it for each complete WAL segment (%p), and retries it until it exits 0. */
export function archiveCommand(destination: BackupDestination): string {
  return `barman-cloud-wal-archive --endpoint-url ${destination.endpoint} ${destination.url} ${destination.serverName} %p`;
}

/** restore_command: fetches WAL segment %f into %p during recovery. */
export function restoreCommand(destination: BackupDestination): string {
  return `barman-cloud-wal-restore --endpoint-url ${destination.endpoint} ${destination.url} ${destination.serverName} %f %p`;
}

/** The postgresql.conf settings that archive every WAL segment, or at the latest every `archiveTimeoutSeconds`. */
export function archiveSettings(destination: BackupDestination, archiveTimeoutSeconds: number): string[] {
  return ['archive_mode=on', `archive_command=${archiveCommand(destination)}`, `archive_timeout=${archiveTimeoutSeconds}`];
}

/** barman-cloud-backup of a running server, under `name` (it reads the data folder, so it runs as the server's user). */
export async function baseBackup(server: PostgresServer, destination: BackupDestination, name: string): Promise<string> {
  return server.runProgram(
    '/usr/bin/barman-cloud-backup',
    [
      '--endpoint-url',
      destination.endpoint,
      '--host',
      '127.0.0.1',
      '--port',
      String(server.port),
      '--user',
      server.superuser,
      '--immediate-checkpoint',
      '--name',
      name,
      destination.url,
      destination.serverName,
    ],
    { PGPASSWORD: server.password, ...objectStoreEnvironment(destination) },
  );
}

/**
 * Fills `server.dataDir` (an empty, not yet started server: PostgresServer.create's
 * `initialise`, with objectStoreEnvironment as its `environment`) with the base backup
 * named `backupName`, and sets it to recover: WAL from the store up to `targetTime`
 * (or to the end of the archive), then promote.
 */
export async function restoreInto(server: PostgresServer, destination: BackupDestination, backupName: string, targetTime?: string): Promise<void> {
  await server.runProgram(
    '/usr/bin/barman-cloud-restore',
    ['--endpoint-url', destination.endpoint, destination.url, destination.serverName, backupName, server.dataDir],
    objectStoreEnvironment(destination),
  );
  const settings = [
    `restore_command = '${restoreCommand(destination)}'`,
    ...(targetTime === undefined ? [] : [`recovery_target_time = '${targetTime}'`, "recovery_target_action = 'promote'"]),
    // The source's archiving does not follow the copy: this server writes a timeline of its own.
    "archive_mode = 'off'",
  ];
  const autoConf = join(server.dataDir, 'postgresql.auto.conf');
  await writeFile(autoConf, `${settings.join('\n')}\n`, { flag: 'a' });
  const signal = join(server.dataDir, 'recovery.signal');
  await writeFile(signal, '');
  await server.giveToServerUser(autoConf);
  await server.giveToServerUser(signal);
}
