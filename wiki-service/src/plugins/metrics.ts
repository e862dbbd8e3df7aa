import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

// Prometheus metrics for this process, on one registry per app.
// Counters count what this process has done since it started. They are never seeded
// from the database: with two replicas that would count every row twice, and each
// restart would look like a burst. Totals across pods are PromQL's job:
//   sum(users_created_total)  or  sum(rate(users_created_total[5m]))

interface AppMetrics {
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

// The server errors the service answers (a bug; the database unavailable), and the
// routes no user calls, which the availability objective leaves out.
const SERVER_ERRORS = ['500', '503'];
const NOT_IN_OBJECTIVE = new Set(['/health', '/ready', '/metrics']);

export const metrics = fp(
  async (app: FastifyInstance) => {
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

    // Each route's 5xx series exist from the start, at 0. A counter series that first
    // appears at 1 has no earlier sample, so rate() cannot see that first error: a burst
    // of 503s shorter than a scrape interval would be invisible to the objective's
    // alerts. HEAD routes (Fastify's copies of the GETs) and hidden ones (documentation
    // assets, /metrics) are left out.
    app.addHook('onRoute', (route) => {
      if (route.schema?.hide === true || NOT_IN_OBJECTIVE.has(route.url)) return;
      for (const method of [route.method].flat()) {
        if (method === 'HEAD') continue;
        for (const status_code of SERVER_ERRORS) requests.inc({ method, route: route.url, status_code }, 0);
      }
    });

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
  },
  { name: 'metrics' },
);
