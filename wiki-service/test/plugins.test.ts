import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import type { DatabaseHandle } from '../src/db/database.js';
import { health } from '../src/plugins/health.js';
import { metrics } from '../src/plugins/metrics.js';

// Each plugin is named and declares what it uses from another, so registering them in
// the wrong order fails at start-up with a message that names both, rather than with
// "cannot read properties of undefined" at the first scrape.

const unusedDatabase: DatabaseHandle = {
  db: undefined as never,
  ping: () => Promise.reject(new Error('not used by this test')),
  close: () => Promise.resolve(),
};

describe('plugins', () => {
  it('health declares that it needs metrics: without it, the app refuses to start', async () => {
    const app = Fastify();
    app.register(health, { database: unusedDatabase });
    await expect(app.ready()).rejects.toThrow("The dependency 'metrics' of plugin 'health' is not registered");
  });

  it('health starts once metrics is registered first', async () => {
    const app = Fastify();
    app.register(metrics);
    app.register(health, { database: unusedDatabase });
    await expect(app.ready()).resolves.toBe(app);
    await app.close();
  });
});
