import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { Gauge } from 'prom-client';
import type { DatabaseHandle } from '../db/database.js';
import { Health, Readiness } from '../schemas.js';

// Two probes with different questions, as Kubernetes expects:
// - /health (liveness): is the process alive? Never depends on the database, or a
//   database outage would make Kubernetes restart every healthy replica.
// - /ready (readiness): should traffic come here? Not while the database is
//   unreachable, and not once shutdown has begun (so endpoints drop this pod first).
// The same database check runs at every scrape of /metrics, as wiki_database_up and
// wiki_database_read_only, so Prometheus sees what readiness sees without depending on
// who probes /ready (the alert WikiApiDatabaseUnreachable, docs/PHASE10_ALERTING.md).

// Longer than a healthy ping ever takes, shorter than the readiness probe's timeout
// (3 s) and Prometheus's scrape timeout (10 s): a database that hangs must count as
// unreachable, not make the probe or the scrape itself time out.
const DATABASE_CHECK_TIMEOUT_MS = 2000;

declare module 'fastify' {
  interface FastifyInstance {
    /** Turns readiness to 503 for good: the first step of a graceful shutdown. */
    markShuttingDown(): void;
  }
}

export const health = fp(
  async (app: FastifyInstance, options: { database: DatabaseHandle }) => {
    let shuttingDown = false;
    app.decorate('markShuttingDown', () => {
      shuttingDown = true;
    });

    /** What the database check finds: no answer, an answer from a server that takes no writes, or a writable one. */
    async function checkDatabase(): Promise<'unreachable' | 'read-only' | 'writable'> {
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
    }

    new Gauge({
      name: 'wiki_database_up',
      help: 'Whether the database answered a ping during this scrape (1) or not (0); /ready answers 503 while it does not',
      registers: [app.metrics.registry],
      async collect() {
        this.set((await checkDatabase()) === 'unreachable' ? 0 : 1);
      },
    });
    new Gauge({
      name: 'wiki_database_read_only',
      help: 'Whether the database answered this scrape as read-only (1: a standby, or set read-only; writes answer 503) or not (0); /ready answers 503 while it is',
      registers: [app.metrics.registry],
      async collect() {
        this.set((await checkDatabase()) === 'read-only' ? 1 : 0);
      },
    });

    app.get(
      '/health',
      {
        schema: {
          tags: ['health'],
          operationId: 'checkHealth',
          summary: 'Liveness: the process answers',
          description: "Kubernetes' liveness probe: 200 whenever the process can answer, whatever the database's state.",
          response: { 200: Health },
        },
      },
      async () => ({
        status: 'healthy' as const,
        timestamp: new Date().toISOString(),
      }),
    );

    app.get(
      '/ready',
      {
        schema: {
          tags: ['health'],
          operationId: 'checkReady',
          summary: 'Readiness: the database answers and the process is not shutting down',
          description:
            "Kubernetes' readiness probe: 503, with the reason in detail, while the database is unreachable or read-only, or the process is shutting down.",
          response: { 200: Readiness, 503: Readiness },
        },
      },
      async (_request, reply) => {
        if (shuttingDown) {
          return reply.code(503).send({ status: 'not ready', detail: 'shutting down' });
        }
        const database = await checkDatabase();
        if (database === 'writable') return { status: 'ready' as const };
        // A read-only database serves reads, but every write would answer 503: traffic
        // goes to pods whose database takes writes (during a failover, none, until the
        // endpoint has moved).
        return reply.code(503).send({ status: 'not ready', detail: database === 'read-only' ? 'database is read-only' : 'database unreachable' });
      },
    );
  },
  { name: 'health', dependencies: ['metrics'] },
);
