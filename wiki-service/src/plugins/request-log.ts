import { LogController, type FastifyReply, type FastifyRequest } from 'fastify';

// Exactly one JSON log line per request, written when the response is sent, with
// what an operator filters on: method, route template, status, duration and the
// request id (pino adds `request_id` from the request's child logger). Fastify's
// default is two lines (incoming + completed) carrying whole request objects.
export class OneLinePerRequest extends LogController {
  constructor() {
    super({ requestIdLogLabel: 'request_id' });
  }

  override incomingRequest(): void {}

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    const line = {
      method: request.method,
      route: request.routeOptions.url ?? 'unmatched',
      url: request.url,
      status: reply.statusCode,
      duration_ms: Math.round(reply.elapsedTime * 100) / 100,
    };
    if (error) reply.log.error({ ...line, err: error }, 'request failed');
    else reply.log.info(line, 'request');
  }
}
