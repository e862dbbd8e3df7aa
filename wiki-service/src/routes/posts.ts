import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { PostsRepository } from '../repositories/posts.js';
import { CreatePostBody, EditPostBody, ErrorMessage, INPUT_ERRORS, Post, PostIdParams, PostsPage, PostsPageQuery } from '../schemas.js';

const tags = ['posts'];
const NOT_FOUND = { 404: ErrorMessage };

export const postRoutes: FastifyPluginAsyncTypebox<{ posts: PostsRepository }> = async (app, { posts }) => {
  app.post(
    '/posts',
    {
      schema: {
        tags,
        summary: 'Create a post (404 if the user does not exist)',
        body: CreatePostBody,
        response: { 200: Post, ...NOT_FOUND, ...INPUT_ERRORS },
      },
    },
    async (request) => {
      const post = await posts.create(request.body.user_id, request.body.content);
      app.metrics.postsCreated.inc();
      return post;
    },
  );

  app.get(
    '/posts/:id',
    { schema: { tags, summary: 'Get a post', params: PostIdParams, response: { 200: Post, ...NOT_FOUND, ...INPUT_ERRORS } } },
    async (request) => posts.get(request.params.id),
  );

  app.get(
    '/posts',
    {
      schema: {
        tags,
        summary: 'List posts, oldest first, optionally of one user',
        querystring: PostsPageQuery,
        response: { 200: PostsPage, ...INPUT_ERRORS },
      },
    },
    async (request) => {
      const { limit, cursor, user_id: userId } = request.query;
      const page = await posts.list({ userId }, { limit, after: cursor });
      return { items: page.items, next_cursor: page.nextCursor };
    },
  );

  app.patch(
    '/posts/:id',
    {
      schema: {
        tags,
        summary: "Change a post's content",
        params: PostIdParams,
        body: EditPostBody,
        response: { 200: Post, ...NOT_FOUND, ...INPUT_ERRORS },
      },
    },
    async (request) => posts.edit(request.params.id, request.body.content),
  );

  app.delete(
    '/posts/:id',
    {
      schema: {
        tags,
        summary: 'Delete a post',
        params: PostIdParams,
        response: { 204: { type: 'null', description: 'Deleted' }, ...NOT_FOUND, ...INPUT_ERRORS },
      },
    },
    async (request, reply) => {
      await posts.delete(request.params.id);
      return reply.code(204).send(null);
    },
  );
};
