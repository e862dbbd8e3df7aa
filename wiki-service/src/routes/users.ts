import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { PostsRepository } from '../repositories/posts.js';
import type { UsersRepository } from '../repositories/users.js';
import { CreateUserBody, ErrorMessage, INPUT_ERRORS, PageQuery, PostsPage, RenameUserBody, User, UserIdParams, UsersPage } from '../schemas.js';

const tags = ['users'];
const NOT_FOUND = { 404: ErrorMessage };

export const userRoutes: FastifyPluginAsyncTypebox<{ users: UsersRepository; posts: PostsRepository }> = async (app, { users, posts }) => {
  app.post(
    '/users',
    {
      // 200, not 201: the original answered 200 and its clients check for it.
      schema: { tags, summary: 'Create a user', body: CreateUserBody, response: { 200: User, ...INPUT_ERRORS } },
    },
    async (request) => {
      const user = await users.create(request.body.name);
      // Only after the insert has committed: a failed insert is never counted.
      app.metrics.usersCreated.inc();
      return user;
    },
  );

  const getUser = {
    schema: { tags, summary: 'Get a user', params: UserIdParams, response: { 200: User, ...NOT_FOUND, ...INPUT_ERRORS } },
  };
  // /user/{id} is the original path; /users/{id} is the REST spelling the original's
  // ingress already routed. Both answer the same.
  app.get('/user/:id', getUser, async (request) => users.get(request.params.id));
  app.get('/users/:id', getUser, async (request) => users.get(request.params.id));

  app.get(
    '/users',
    { schema: { tags, summary: 'List users, oldest first', querystring: PageQuery, response: { 200: UsersPage, ...INPUT_ERRORS } } },
    async (request) => {
      const { limit, cursor } = request.query;
      const page = await users.list({ limit, after: cursor });
      return { items: page.items, next_cursor: page.nextCursor };
    },
  );

  app.get(
    '/users/:id/posts',
    {
      schema: {
        tags,
        summary: "List a user's posts, oldest first",
        params: UserIdParams,
        querystring: PageQuery,
        response: { 200: PostsPage, ...NOT_FOUND, ...INPUT_ERRORS },
      },
    },
    async (request) => {
      await users.get(request.params.id); // 404 for an unknown user, not an empty list
      const { limit, cursor } = request.query;
      const page = await posts.list({ userId: request.params.id }, { limit, after: cursor });
      return { items: page.items, next_cursor: page.nextCursor };
    },
  );

  app.patch(
    '/users/:id',
    {
      schema: {
        tags,
        summary: "Change a user's name",
        params: UserIdParams,
        body: RenameUserBody,
        response: { 200: User, ...NOT_FOUND, ...INPUT_ERRORS },
      },
    },
    async (request) => users.rename(request.params.id, request.body.name),
  );

  app.delete(
    '/users/:id',
    {
      schema: {
        tags,
        summary: 'Delete a user and all of their posts',
        params: UserIdParams,
        response: { 204: { type: 'null', description: 'Deleted' }, ...NOT_FOUND, ...INPUT_ERRORS },
      },
    },
    async (request, reply) => {
      await users.delete(request.params.id);
      return reply.code(204).send(null);
    },
  );
};
