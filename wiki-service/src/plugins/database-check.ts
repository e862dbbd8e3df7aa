import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { Gauge } from 'prom-client';
import type { DatabaseHandle } from '../db/database.js';

// One check of the database, asked by readiness (/ready, plugins/health.ts) and by every
// scrape of /metrics, as wiki_database_up and wiki_database_read_only: Prometheus sees
// what readiness sees without depending on who probes /ready (the alert
// WikiApiDatabaseUnreachable, docs/PHASE10_ALERTING.md).

// Longer than a healthy ping ever takes, shorter than the readiness probe's timeout
// (3 s) and Prometheus's scrape timeout (10 s): a database that hangs must count as
// unreachable, not make the probe or the scrape itself time out.
const DATABASE_CHECK_TIMEOUT_MS = 2000;

/** What the check finds: no answer, an answer from a server that takes no writes, or a writable one. */
type DatabaseState = 'unreachable' | 'read-only' | 'writable';

declare module 'fastify' {
  interface FastifyInstance {
    checkDatabase(): Promise<DatabaseState>;
  }
}

export const databaseCheck = fp(
  async (app: FastifyInstance, options: { database: DatabaseHandle }) => {
    app.decorate('checkDatabase', async (): Promise<DatabaseState> => {
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${DATABASE_CHECK_TIMEOUT_MS} ms`)), DATABASE_CHECK_TIMEOUT_MS);
      });
      try {
        const { writable } = await Promise.race([options.database.ping(), timedOut]);
        if (writable) return 'writable';
        app.log.warn('database check: the database is read-only (a standby, or set read-only)');
        return 'read-only';
      } catch (error) {
        app.log.warn({ err: error }, 'database check: database unreachable');
        return 'unreachable';
      } finally {
        clearTimeout(timer);
      }
    });

    // Each gauge is 1 while the check finds its state: asked at every scrape.
    const gauges: Array<{ name: string; help: string; value: (state: DatabaseState) => number }> = [
      {
        name: 'wiki_database_up',
        help: 'Whether the database answered a ping during this scrape (1) or not (0); /ready answers 503 while it does not',
        value: (state) => (state === 'unreachable' ? 0 : 1),
      },
      {
        name: 'wiki_database_read_only',
        help: 'Whether the database answered this scrape as read-only (1: a standby, or set read-only; writes answer 503) or not (0); /ready answers 503 while it is',
        value: (state) => (state === 'read-only' ? 1 : 0),
      },
    ];
    for (const { name, help, value } of gauges) {
      new Gauge({
        name,
        help,
        registers: [app.metrics.registry],
        async collect() {
          this.set(value(await app.checkDatabase()));
        },
      });
    }
  },
  { name: 'database-check', dependencies: ['metrics'] },
);
