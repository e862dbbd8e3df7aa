import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';

// The original's index, kept for clients that read it.
const INDEX = {
  message: 'User and Post API',
  endpoints: {
    create_user: 'POST /users',
    get_user: 'GET /user/{id}',
    create_post: 'POST /posts',
    get_post: 'GET /posts/{id}',
    metrics: 'GET /metrics',
    health: 'GET /health',
    ready: 'GET /ready',
    docs: 'GET /docs',
  },
} as const;

const Index = Type.Object({
  message: Type.String(),
  endpoints: Type.Record(Type.String(), Type.String()),
});

export const rootRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/',
    {
      schema: {
        tags: ['index'],
        operationId: 'getIndex',
        summary: 'What this API is and where its endpoints are',
        description: "The original's index: the API's name and its main endpoints.",
        response: { 200: Index },
      },
    },
    async () => INDEX,
  );
};
