import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';

// Whether a graceful shutdown has begun (server.ts begins it on SIGTERM). Readiness
// answers 503 from then on, so the endpoints drop this pod before it stops listening.

declare module 'fastify' {
  interface FastifyInstance {
    /** Turns readiness to 503 for good: the first step of a graceful shutdown. */
    markShuttingDown(): void;
    isShuttingDown(): boolean;
  }
}

export const shutdown = fp(
  async (app: FastifyInstance) => {
    let shuttingDown = false;
    app.decorate('markShuttingDown', () => {
      shuttingDown = true;
    });
    app.decorate('isShuttingDown', () => shuttingDown);
  },
  { name: 'shutdown' },
);
