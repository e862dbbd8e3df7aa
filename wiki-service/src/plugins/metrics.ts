import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

// Prometheus metrics for this process, on one registry per app.
// Counters count what this process has done since it started. They are never seeded
// from the database: with two replicas that would count every row twice, and each
// restart would look like a burst. Totals across pods are PromQL's job:
//   sum(users_created_total)  or  sum(rate(users_created_total[5m]))

export interface AppMetrics {
  registry: Registry;
  usersCreated: Counter;
  postsCreated: Counter;
}

declare module 'fastify' {
  interface FastifyInstance {
    metrics: AppMetrics;
  }
}

// Route templates, not raw URLs, keep the label set small (/user/{id}, never /user/42).
const UNMATCHED_ROUTE = 'unmatched';

export const metrics = fp(async (app: FastifyInstance) => {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });

  const usersCreated = new Counter({
    name: 'users_created_total',
    help: 'Total number of users created',
    registers: [registry],
  });
  const postsCreated = new Counter({
    name: 'posts_created_total',
    help: 'Total number of posts created',
    registers: [registry],
  });
  const requests = new Counter({
    name: 'http_requests_total',
    help: 'HTTP requests answered, by method, route template and status code',
    labelNames: ['method', 'route', 'status_code'],
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'Time to answer HTTP requests, by method, route template and status code',
    labelNames: ['method', 'route', 'status_code'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });

  app.decorate('metrics', { registry, usersCreated, postsCreated });

  app.addHook('onResponse', async (request, reply) => {
    const labels = {
      method: request.method,
      route: request.routeOptions.url ?? UNMATCHED_ROUTE,
      status_code: String(reply.statusCode),
    };
    requests.inc(labels);
    duration.observe(labels, reply.elapsedTime / 1000);
  });

  app.get('/metrics', { schema: { hide: true } }, async (_request, reply) => {
    reply.header('content-type', registry.contentType);
    return registry.metrics();
  });
});
