import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { isDatabaseUnavailable } from '../db/database-errors.js';
import { NotFoundError } from '../not-found-error.js';
import { JsonBodyError, toValidationIssues } from './validation.js';

// Every error leaves as FastAPI's `{"detail": ...}`. Only a genuine bug answers 500,
// and its details go to the log, never to the client. Three paths lead there: the
// error handler (everything a route or Fastify's request handling throws),
// answerFrameworkError (a URL the router cannot decode) and answerClientError
// (a connection whose HTTP Node cannot parse, or that is too slow).

/** Headers on every response, whichever of those paths produced it. */
export function commonHeaders(requestId: string): Record<string, string> {
  // nosniff: browsers must not guess a type other than the declared one (a JSON
  // error echoing user input must never be rendered as HTML).
  return { 'x-request-id': requestId, 'x-content-type-options': 'nosniff' };
}

const DATABASE_RETRY_AFTER_SECONDS = 5;

export const errors = fp(
  async (app: FastifyInstance) => {
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
  },
  { name: 'errors' },
);

// Errors the router raises before any hook runs; the URL is not echoed back.
const FRAMEWORK_ERRORS: Record<string, [number, string]> = {
  FST_ERR_BAD_URL: [400, 'Malformed URL: invalid percent-encoding'],
  FST_ERR_MAX_PARAM_LENGTH: [414, 'URL path segment too long'],
};

/** Fastify's `frameworkErrors` option. */
export function answerFrameworkError(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const [status, detail] = FRAMEWORK_ERRORS[error.code] ?? [400, 'Bad request'];
  void reply.code(status).headers(commonHeaders(request.id)).send({ detail });
}

// Node's HTTP server reports these on the connection, before there is a request.
const CLIENT_ERRORS: Record<string, [number, string]> = {
  ERR_HTTP_REQUEST_TIMEOUT: [408, 'Request timeout: the request was not received in time'],
  HPE_HEADER_OVERFLOW: [431, 'Request headers too large'],
};

/**
 * Fastify's `clientErrorHandler` option: malformed HTTP, headers too large, and
 * clients too slow to send their request (REQUEST_TIMEOUT_SECONDS,
 * HEADERS_TIMEOUT_SECONDS). The connection is closed after the answer.
 */
export function answerClientError(this: FastifyInstance, error: Error & { code?: string }, socket: Socket): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, detail] = CLIENT_ERRORS[error.code ?? ''] ?? [400, 'Malformed HTTP request'];
  // At debug level: a flood of slow or broken clients must not flood the log.
  this.log.debug({ err: error, status }, 'client error: connection closed');
  if (socket.writable) {
    const body = JSON.stringify({ detail });
    const headers = {
      'content-type': 'application/json; charset=utf-8',
      'content-length': String(Buffer.byteLength(body)),
      connection: 'close',
      ...commonHeaders(randomUUID()),
    };
    const head = Object.entries(headers)
      .map(([name, value]) => `${name}: ${value}\r\n`)
      .join('');
    socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n${head}\r\n${body}`);
  }
  socket.destroy();
}
