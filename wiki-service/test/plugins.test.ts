import Fastify from 'fastify';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { buildApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { openDatabase, type DatabaseHandle } from '../src/db/database.js';
import { migrateToLatest } from '../src/db/migrate.js';
import { databaseCheck } from '../src/plugins/database-check.js';
import { health } from '../src/plugins/health.js';
import { metrics } from '../src/plugins/metrics.js';
import { shutdown } from '../src/plugins/shutdown.js';
import { testDatabaseConfig } from './support/app.js';

// Each plugin is named and declares what it uses from another, so registering them in
// the wrong order fails at start-up with a message that names both, rather than with
// "cannot read properties of undefined" at the first scrape.

const unusedDatabase: DatabaseHandle = {
  db: undefined as never,
  ping: () => Promise.reject(new Error('not used by this test')),
  close: () => Promise.resolve(),
};

describe('plugins', () => {
  it('the database check declares that it needs metrics: without it, the app refuses to start', async () => {
    const app = Fastify();
    app.register(databaseCheck, { database: unusedDatabase });
    await expect(app.ready()).rejects.toThrow("The dependency 'metrics' of plugin 'database-check' is not registered");
  });

  it('health declares that it needs the database check and the shutdown flag', async () => {
    const app = Fastify();
    app.register(metrics);
    app.register(health);
    await expect(app.ready()).rejects.toThrow("The dependency 'database-check' of plugin 'health' is not registered");
  });

  it('health starts once metrics, the database check and the shutdown flag are registered first', async () => {
    const app = Fastify();
    app.register(metrics);
    app.register(databaseCheck, { database: unusedDatabase });
    app.register(shutdown);
    app.register(health);
    await expect(app.ready()).resolves.toBe(app);
    await app.close();
  });

  it("every body is JSON only on the original's routes: a route added beside them keeps its Content-Type and Fastify's parsers", async () => {
    const { config, cleanup } = await testDatabaseConfig('pglite');
    const logger = pino({ level: 'silent' });
    const database = await openDatabase(config, logger);
    await migrateToLatest(database.db);
    const app = await buildApp({ database, logger, timeouts: loadConfig({}).http });
    // What a future upload or webhook route would be: one that reads its own content types.
    app.post('/beside', async (request) => ({ contentType: request.headers['content-type'], body: request.body }));
    try {
      const beside = await app.inject({ method: 'POST', url: '/beside', headers: { 'content-type': 'text/plain' }, payload: 'plain words' });
      expect(beside.json()).toEqual({ contentType: 'text/plain', body: 'plain words' });
      // The original's routes still read a form-typed body as JSON (curl -d).
      const original = await app.inject({
        method: 'POST',
        url: '/users',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        payload: '{"name": "curl"}',
      });
      expect(original.statusCode).toBe(200);
      expect(original.json()).toMatchObject({ name: 'curl' });
    } finally {
      await app.close();
      await database.close();
      await cleanup();
    }
  });
});
