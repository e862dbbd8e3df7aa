import { describe, expect, it, onTestFinished } from 'vitest';
import { until } from '@wiki/test-support/wait';
import { testDatabaseConfig } from './support/app.js';
import { client } from '@wiki/test-support/http';
import { startService } from './support/service-process.js';
import { mergeAcknowledged, startWriters, type Acknowledged } from '@wiki/test-support/writers';

// What the embedded default (PGlite, which runs with fsync off) promises: a crash of
// the process (kill -9, an out-of-memory kill) loses no acknowledged write, because
// each commit has been written to the data folder's files before the answer leaves.
// A crash of the machine may lose the last writes: that is what fsync would guard
// against, and why production runs on PostgreSQL (docs/PHASE2_POSTGRESQL.md).

const WRITERS = 8;
const CRASHES = 3;

describe('embedded database (PGlite): a process crash loses no acknowledged write', () => {
  it(
    `kill -9 with ${WRITERS} writers in flight, ${CRASHES} times: after a restart on the same folder, every acknowledged user and post is there`,
    { timeout: 180_000 },
    async () => {
      const { config, cleanup } = await testDatabaseConfig('pglite');
      onTestFinished(cleanup);
      const env = { DATA_DIR: config.kind === 'pglite' ? config.dataDir : '', SHUTDOWN_DELAY_SECONDS: '0', LOG_LEVEL: 'warn' };
      const acknowledged: Acknowledged = { users: new Map(), posts: new Map() };
      // An id acknowledged before a crash and again after it: the first write was lost.
      const acknowledgedTwice: string[] = [];

      for (let crash = 1; crash <= CRASHES; crash++) {
        const service = await startService(env, { discardStdout: true });
        const load = startWriters(service.baseUrl, WRITERS, 10_000);
        // Writes are flowing when the process is killed.
        await until('150 writes', 30_000, () => load.writes() >= 150, { intervalMs: 10 });
        service.signal('SIGKILL');
        expect((await service.exited).signal).toBe('SIGKILL');
        await load.stop(); // its requests in flight fail: they were never acknowledged
        acknowledgedTwice.push(...mergeAcknowledged(acknowledged, load.acknowledged));
      }

      const service = await startService(env, { discardStdout: true });
      onTestFinished(() => service.stop().then(() => {}));
      const api = client(service.baseUrl);
      const lost: string[] = [];
      for (const [id, name] of acknowledged.users) {
        const response = await api.get(`/user/${id}`);
        if (response.status !== 200 || response.body.name !== name) lost.push(`user ${id}: ${response.status} ${response.text}`);
      }
      for (const [id, post] of acknowledged.posts) {
        const response = await api.get(`/posts/${id}`);
        if (response.status !== 200 || response.body.content !== post.content || response.body.user_id !== post.userId) {
          lost.push(`post ${id}: ${response.status} ${response.text}`);
        }
      }
      console.log(
        `PGlite, ${CRASHES} kill -9 under load: ${acknowledged.users.size} users and ${acknowledged.posts.size} posts acknowledged, ${lost.length} lost`,
      );
      expect(lost).toEqual([]);
      expect(acknowledgedTwice).toEqual([]);
      expect(acknowledged.users.size).toBeGreaterThanOrEqual(CRASHES * 50);
    },
  );
});
