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
      schema: {
        tags,
        operationId: 'createUser',
        summary: 'Create a user',
        description: 'Creates a user with the given name and answers it, with its id and creation time.',
        body: CreateUserBody,
        response: { 200: User, ...INPUT_ERRORS },
      },
    },
    async (request) => {
      const user = await users.create(request.body.name);
      // Only after the insert has committed: a failed insert is never counted.
      app.metrics.usersCreated.inc();
      return user;
    },
  );

  // /user/{id} is the original path; /users/{id} is the REST spelling the original's
  // ingress already routed. Both answer the same; each has its own operationId, as a
  // generated client has one method per operation.
  const getUser = (operationId: string, description: string) => ({
    schema: { tags, operationId, summary: 'Get a user', description, params: UserIdParams, response: { 200: User, ...NOT_FOUND, ...INPUT_ERRORS } },
  });
  app.get('/user/:id', getUser('getUser', 'The user with this id, at the original path.'), async (request) => users.get(request.params.id));
  app.get(
    '/users/:id',
    getUser('getUserAtUsersPath', 'The user with this id: the same answer as getUser, at the REST spelling of the path.'),
    async (request) => users.get(request.params.id),
  );

  app.get(
    '/users',
    {
      schema: {
        tags,
        operationId: 'listUsers',
        summary: 'List users, oldest first',
        description: 'One page of users; pass next_cursor back as cursor for the next page, until it is null.',
        querystring: PageQuery,
        response: { 200: UsersPage, ...INPUT_ERRORS },
      },
    },
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
        operationId: 'listUserPosts',
        summary: "List a user's posts, oldest first",
        description: "One page of this user's posts (404 if there is no such user, not an empty page); pages as listUsers.",
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
        operationId: 'renameUser',
        summary: "Change a user's name",
        description: 'Sets the name of the user with this id and answers the user as it is now.',
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
        operationId: 'deleteUser',
        summary: 'Delete a user and all of their posts',
        description: 'Deletes the user with this id and, in the same transaction, every post of theirs. Answers 204 with no body.',
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
