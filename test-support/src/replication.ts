import { PostgresServer } from './postgres.js';
import { until } from './wait.js';

// A primary with streaming replicas, as a CloudNativePG cluster runs them: PostgreSQL
// 15's own replication (pg_basebackup, walreceiver) and `pg_ctl promote`.

export interface ReplicatedCluster {
  primary: PostgresServer;
  /** Listed in the primary's synchronous_standby_names (quorum of one): a commit is acknowledged once it has flushed it. */
  synchronous?: PostgresServer;
  /** Streams too, but no commit waits for it. */
  asynchronous?: PostgresServer;
  destroy(): Promise<void>;
}

export interface ClusterOptions {
  synchronous: boolean;
  asynchronous: boolean;
  /** fsync on (default off, as every test server). */
  durable?: boolean;
  /** Runs on the primary before the standbys are made from it (for example, creating the database). */
  prepare?: (primary: PostgresServer) => Promise<void>;
}

export async function startReplicatedCluster(options: ClusterOptions): Promise<ReplicatedCluster> {
  const primary = await PostgresServer.create({ durable: options.durable });
  // wal_log_hints lets pg_rewind bring a failed primary back as a standby. In the
  // configuration file, not on the command line: after a kill -9, pg_rewind runs crash
  // recovery in single-user mode, which reads only the file, and records what it
  // found. It takes effect at a restart.
  await primary.query('ALTER SYSTEM SET wal_log_hints = on');
  await primary.restart();
  const cluster: ReplicatedCluster = {
    primary,
    destroy: async () => {
      const servers = [cluster.primary, cluster.synchronous, cluster.asynchronous].filter((server) => server !== undefined);
      await Promise.all(servers.map((server) => server.destroy()));
    },
  };
  try {
    await options.prepare?.(primary);
    if (options.synchronous) cluster.synchronous = await primary.startStandby('sync');
    if (options.asynchronous) cluster.asynchronous = await primary.startStandby('async');
    if (options.synchronous) {
      // Set on the primary only, after the base backups: a standby that copied it would,
      // once promoted, wait for a standby named "sync" that no longer exists.
      await primary.query("ALTER SYSTEM SET synchronous_standby_names = 'ANY 1 (sync)'");
      await primary.query('SELECT pg_reload_conf()');
    }
    const expected = [...(options.synchronous ? ['sync:quorum'] : []), ...(options.asynchronous ? ['async:async'] : [])].sort().join(',');
    await until(`the standbys streaming (${expected})`, 30_000, async () => {
      const rows = await primary.query<{ name: string }>(
        "SELECT application_name || ':' || sync_state AS name FROM pg_stat_replication WHERE state = 'streaming' ORDER BY 1",
      );
      return rows.map((row) => row.name).join(',') === expected ? true : undefined;
    });
    return cluster;
  } catch (error) {
    await cluster.destroy();
    throw error;
  }
}
