import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { HttpTimeouts } from './config.js';
import type { DatabaseHandle } from './db/database.js';
import { answerClientError, answerFrameworkError, commonHeaders, errors } from './plugins/error-handler.js';
import { databaseCheck } from './plugins/database-check.js';
import { health } from './plugins/health.js';
import { metrics } from './plugins/metrics.js';
import { openapi } from './plugins/openapi.js';
import { OneLinePerRequest } from './plugins/request-log.js';
import { shutdown } from './plugins/shutdown.js';
import { everyBodyAsJson, validation } from './plugins/validation.js';
import { createPostsRepository } from './repositories/posts.js';
import { createUsersRepository } from './repositories/users.js';
import { postRoutes } from './routes/posts.js';
import { rootRoutes } from './routes/root.js';
import { userRoutes } from './routes/users.js';

const BODY_LIMIT_BYTES = 1024 * 1024;

export interface AppOptions {
  /** Opened (and later closed) by the caller; the app only uses it. */
  database: DatabaseHandle;
  logger: FastifyBaseLogger;
  timeouts: HttpTimeouts;
}

/** Builds the whole HTTP application without listening, so tests can run it in-process. */
export async function buildApp({ database, logger, timeouts }: AppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: logger,
    logController: new OneLinePerRequest(),
    genReqId: requestIdOf,
    bodyLimit: BODY_LIMIT_BYTES,
    // Without these a client that never finishes its request holds its connection
    // (and a file descriptor) forever: Fastify turns Node's request timeout off.
    requestTimeout: timeouts.requestTimeoutMs,
    keepAliveTimeout: timeouts.keepAliveTimeoutMs,
    // Node checks for overdue requests this often (its default, 30 s, would let a
    // 10 s timeout run to 40 s).
    http: { headersTimeout: timeouts.headersTimeoutMs, connectionsCheckingInterval: 1000 },
    clientErrorHandler: answerClientError,
    frameworkErrors: answerFrameworkError,
    // `POST /users/` is `POST /users`: the original answered 307 there, which many
    // clients do not follow for POST.
    routerOptions: { ignoreTrailingSlash: true },
  }).withTypeProvider<TypeBoxTypeProvider>();

  app.addHook('onRequest', async (request, reply) => {
    reply.headers(commonHeaders(request.id));
  });

  await app.register(validation);
  await app.register(errors);
  await app.register(metrics);
  await app.register(openapi); // before the routes, so it sees them all
  await app.register(databaseCheck, { database });
  await app.register(shutdown);
  await app.register(health);

  const users = createUsersRepository(database.db);
  const posts = createPostsRepository(database.db);
  await app.register(rootRoutes);
  // The original's routes read every body as JSON, whatever its Content-Type; only
  // they: a scope of their own keeps that from any other route.
  await app.register(async (originalRoutes) => {
    await originalRoutes.register(everyBodyAsJson);
    await originalRoutes.register(userRoutes, { users, posts });
    await originalRoutes.register(postRoutes, { posts });
  });

  return app;
}

// Keep a caller's X-Request-Id so one id follows a request across services; make
// one up when there is none or it does not look like an id.
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

function requestIdOf(request: IncomingMessage): string {
  const header = request.headers['x-request-id'];
  return typeof header === 'string' && REQUEST_ID.test(header) ? header : randomUUID();
}
