import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { DatabaseHandle } from '../db/database.js';
import { Health, Readiness } from '../schemas.js';

// Two probes with different questions, as Kubernetes expects:
// - /health (liveness): is the process alive? Never depends on the database, or a
//   database outage would make Kubernetes restart every healthy replica.
// - /ready (readiness): should traffic come here? Not while the database is
//   unreachable, and not once shutdown has begun (so endpoints drop this pod first).

declare module 'fastify' {
  interface FastifyInstance {
    /** Turns readiness to 503 for good: the first step of a graceful shutdown. */
    markShuttingDown(): void;
  }
}

export const health = fp(async (app: FastifyInstance, options: { database: DatabaseHandle }) => {
  let shuttingDown = false;
  app.decorate('markShuttingDown', () => {
    shuttingDown = true;
  });

  app.get(
    '/health',
    { schema: { tags: ['health'], summary: 'Liveness: the process answers', response: { 200: Health } } },
    async () => ({ status: 'healthy' as const, timestamp: new Date().toISOString() }),
  );

  app.get(
    '/ready',
    {
      schema: {
        tags: ['health'],
        summary: 'Readiness: the database answers and the process is not shutting down',
        response: { 200: Readiness, 503: Readiness },
      },
    },
    async (request, reply) => {
      if (shuttingDown) {
        return reply.code(503).send({ status: 'not ready', detail: 'shutting down' });
      }
      try {
        await options.database.ping();
        return { status: 'ready' as const };
      } catch (error) {
        request.log.warn({ err: error }, 'readiness check: database unreachable');
        return reply.code(503).send({ status: 'not ready', detail: 'database unreachable' });
      }
    },
  );
});
