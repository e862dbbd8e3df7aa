import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';

// The OpenAPI 3 document is generated from the routes' schemas, so it cannot drift
// from what the service really accepts. /openapi.json serves it; /docs is Swagger UI.

// The page loads only its own scripts, styles and the OpenAPI document from this
// service. Styles allow 'unsafe-inline' because Swagger UI sets style attributes;
// scripts do not. (The plugin's built-in policy adds upgrade-insecure-requests,
// which breaks the page when it is served over plain HTTP, e.g. a port-forward.)
const DOCS_CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "base-uri 'self'",
  "connect-src 'self'",
  "font-src 'self' data:",
  "form-action 'self'",
  "frame-ancestors 'self'",
  "img-src 'self' data:",
  "object-src 'none'",
  "script-src 'self'",
  "script-src-attr 'none'",
  "style-src 'self' 'unsafe-inline'",
].join('; ');

export const openapi = fp(
  async (app: FastifyInstance) => {
    await app.register(swagger, {
      openapi: {
        openapi: '3.0.3',
        info: {
          title: 'User and Post API',
          description: 'The wiki service: users and posts. The full reference, with every error and curl examples, is docs/API.md in the repository.',
          version: '1.0.0',
          license: { name: 'MIT', url: 'https://spdx.org/licenses/MIT.html' },
        },
        // The server that serves this document: a client generated from it is pointed
        // at a base URL of its own (openapi-fetch's baseUrl), this one only says the
        // paths are from the root.
        servers: [{ url: '/', description: 'The service that serves this document' }],
        // No operation needs credentials, and the document says so rather than leaving
        // clients to guess: the service sits behind the cluster's Ingress and network
        // policies (docs/PHASE9_INGRESS.md), not behind authentication.
        security: [],
        tags: [
          { name: 'users', description: 'Users' },
          { name: 'posts', description: 'Posts' },
          { name: 'health', description: 'Probes for Kubernetes' },
          { name: 'index', description: 'What this API is' },
        ],
      },
    });
    await app.register(swaggerUi, {
      routePrefix: '/docs',
      // Swagger UI would ask an outside validator service for a badge; nothing here
      // should reach beyond this service.
      uiConfig: { validatorUrl: null },
      staticCSP: DOCS_CONTENT_SECURITY_POLICY,
    });
    app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  },
  { name: 'openapi' },
);
