import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';

// The OpenAPI 3 document is generated from the routes' schemas, so it cannot drift
// from what the service really accepts. /openapi.json serves it; /docs is Swagger UI.

export const openapi = fp(async (app: FastifyInstance) => {
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'User and Post API',
        description: 'The wiki service: users and posts. See CONTRACT.md for the wire contract.',
        version: '1.0.0',
      },
      tags: [
        { name: 'users', description: 'Users' },
        { name: 'posts', description: 'Posts' },
        { name: 'health', description: 'Probes for Kubernetes' },
      ],
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
});
