import type { FastifyError, FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { isDatabaseUnavailable } from '../db/errors.js';
import { NotFoundError } from '../errors.js';
import { JsonBodyError, toValidationIssues } from './validation.js';

// Every error leaves as FastAPI's `{"detail": ...}`. Only a genuine bug answers 500,
// and its details go to the log, never to the client.

const DATABASE_RETRY_AFTER_SECONDS = 5;

export const errors = fp(async (app: FastifyInstance) => {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (error.validation !== undefined) {
      const detail = toValidationIssues(error.validation as never, error.validationContext, request.body);
      return reply.code(422).send({ detail });
    }
    if (error instanceof JsonBodyError) {
      return reply.code(422).send({ detail: [{ loc: ['body'], msg: error.message, type: 'value_error.jsondecode' }] });
    }
    if (error instanceof NotFoundError) {
      return reply.code(404).send({ detail: error.message });
    }
    if (isDatabaseUnavailable(error)) {
      request.log.warn({ err: error }, 'database unavailable');
      reply.header('retry-after', String(DATABASE_RETRY_AFTER_SECONDS));
      return reply.code(503).send({ detail: 'Database unavailable, try again shortly' });
    }
    // Fastify's own client errors (413 body too large, 400 bad header, ...).
    const status = error.statusCode ?? 500;
    if (status >= 400 && status < 500) {
      return reply.code(status).send({ detail: error.message });
    }
    request.log.error({ err: error }, 'unhandled error');
    return reply.code(500).send({ detail: 'Internal Server Error' });
  });

  app.setNotFoundHandler((_request, reply) => reply.code(404).send({ detail: 'Not Found' }));
});
