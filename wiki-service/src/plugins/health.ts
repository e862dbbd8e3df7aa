import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { Health, Readiness } from '../schemas.js';

// Two probes with different questions, as Kubernetes expects:
// - /health (liveness): is the process alive? Never depends on the database, or a
//   database outage would make Kubernetes restart every healthy replica.
// - /ready (readiness): should traffic come here? Not while the database is
//   unreachable or read-only (plugins/database-check.ts), and not once shutdown has
//   begun (plugins/shutdown.ts), so endpoints drop this pod first.

export const health = fp(
  async (app: FastifyInstance) => {
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
        if (app.isShuttingDown()) {
          return reply.code(503).send({ status: 'not ready', detail: 'shutting down' });
        }
        const database = await app.checkDatabase();
        if (database === 'writable') return { status: 'ready' as const };
        // A read-only database serves reads, but every write would answer 503: traffic
        // goes to pods whose database takes writes (during a failover, none, until the
        // endpoint has moved).
        return reply.code(503).send({ status: 'not ready', detail: database === 'read-only' ? 'database is read-only' : 'database unreachable' });
      },
    );
  },
  { name: 'health', dependencies: ['database-check', 'shutdown'] },
);
