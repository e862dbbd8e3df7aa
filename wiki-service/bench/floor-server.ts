// The platform's floor for `npm run bench`: the least a Node.js server can do to answer
// the bench's three requests as the service does. node:http, the `pg` driver with the
// same pool size and the same SQL as named (prepared) statements, the same JSON out,
// and the same request log line through the same logger. No Fastify, no validation,
// no metrics, no error handling beyond what the three requests need. The service's
// CPU per request beside this one's is what those cost on top of the platform.
//
// Started by bench/run.ts exactly as the service is (the same Node flags), with tsx.

import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { createLogger } from '../src/logger.js';
import { parseInt8, parseTimestamptz, PG_TYPE_INT8, PG_TYPE_TIMESTAMPTZ, SESSION_UTC_OPTIONS } from '../src/db/types.js';

const types = {
  getTypeParser: (oid: number, format?: 'text' | 'binary') =>
    oid === PG_TYPE_INT8 ? parseInt8 : oid === PG_TYPE_TIMESTAMPTZ ? parseTimestamptz : pg.types.getTypeParser(oid, format),
};
const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: Number(process.env.DB_POOL_MAX ?? 10), options: SESSION_UTC_OPTIONS, types });
const log = createLogger(process.env.LOG_LEVEL ?? 'info');

const SELECT_USER = 'select "id", "name", "created_time" from "users" where "id" = $1';
const INSERT_USER = 'insert into "users" ("name") values ($1) returning "id", "name", "created_time"';
const INSERT_POST = 'insert into "posts" ("user_id", "content") values ($1, $2) returning "id" as "post_id", "content", "user_id", "created_time"';

function send(response: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  response.end(text);
}

async function readJson(request: IncomingMessage): Promise<Record<string, unknown>> {
  let text = '';
  for await (const chunk of request) text += chunk;
  return JSON.parse(text) as Record<string, unknown>;
}

async function answer(request: IncomingMessage, response: ServerResponse): Promise<string> {
  const url = request.url ?? '/';
  if (request.method === 'GET' && url === '/health') {
    send(response, 200, { status: 'healthy' });
    return '/health';
  }
  if (request.method === 'GET' && url.startsWith('/user/')) {
    const { rows } = await pool.query({ name: 'floor-select-user', text: SELECT_USER, values: [Number(url.slice('/user/'.length))] });
    if (rows[0] === undefined) send(response, 404, { detail: 'User not found' });
    else send(response, 200, rows[0]);
    return '/user/:id';
  }
  if (request.method === 'POST' && url === '/users') {
    const { name } = await readJson(request);
    const { rows } = await pool.query({ name: 'floor-insert-user', text: INSERT_USER, values: [name] });
    send(response, 200, rows[0]);
    return '/users';
  }
  if (request.method === 'POST' && url === '/posts') {
    const { user_id: userId, content } = await readJson(request);
    const { rows } = await pool.query({ name: 'floor-insert-post', text: INSERT_POST, values: [userId, content] });
    send(response, 200, rows[0]);
    return '/posts';
  }
  send(response, 404, { detail: 'Not Found' });
  return 'unmatched';
}

const server = createServer((request, response) => {
  const started = performance.now();
  const requestId = randomUUID();
  answer(request, response).then(
    (route) =>
      log.info(
        {
          request_id: requestId,
          method: request.method,
          route,
          url: request.url,
          status: response.statusCode,
          duration_ms: Math.round((performance.now() - started) * 100) / 100,
        },
        'request',
      ),
    (error: unknown) => {
      log.error({ err: error }, 'request failed');
      send(response, 500, { detail: 'Internal Server Error' });
    },
  );
});
server.keepAliveTimeout = 5000;
server.listen(Number(process.env.PORT), process.env.HOST ?? '127.0.0.1');
process.on('SIGTERM', () => server.close(() => void pool.end().then(() => process.exit(0))));
