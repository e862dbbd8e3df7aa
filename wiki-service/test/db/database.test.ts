import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { pino } from 'pino';
import { describe, expect, it, onTestFinished } from 'vitest';
import { openDatabase } from '../../src/db/database.js';

// The embedded database's memory settings (the figures are the bench's job).

describe('openDatabase on PGlite', () => {
  it('initialises a new folder, then runs with 8MB of shared buffers instead of 128MB', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'wiki-pglite-'));
    onTestFinished(() => rm(dir, { recursive: true, force: true }));
    const dataDir = join(dir, 'data');

    const database = await openDatabase({ kind: 'pglite', dataDir }, pino({ level: 'silent' }));
    try {
      expect(existsSync(join(dataDir, 'PG_VERSION'))).toBe(true);
      const { rows } = await sql<{ shared_buffers: string }>`SHOW shared_buffers`.execute(database.db);
      expect(rows[0]!.shared_buffers).toBe('8MB');
      // The usual settings of PGlite are kept (only shared_buffers is added to them).
      const searchPath = await sql<{ search_path: string }>`SHOW search_path`.execute(database.db);
      expect(searchPath.rows[0]!.search_path).toBe('public');
    } finally {
      await database.close();
    }
  });
});
