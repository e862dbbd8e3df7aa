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
        operationId: 'createPost',
        summary: 'Create a post (404 if the user does not exist)',
        description: 'Creates a post by the user user_id and answers it, with its id and creation time.',
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
    {
      schema: {
        tags,
        operationId: 'getPost',
        summary: 'Get a post',
        description: 'The post with this id.',
        params: PostIdParams,
        response: { 200: Post, ...NOT_FOUND, ...INPUT_ERRORS },
      },
    },
    async (request) => posts.get(request.params.id),
  );

  app.get(
    '/posts',
    {
      schema: {
        tags,
        operationId: 'listPosts',
        summary: 'List posts, oldest first, optionally of one user',
        description: 'One page of posts, of every user or of user_id (an unknown user_id answers an empty page); pages as listUsers.',
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
        operationId: 'editPost',
        summary: "Change a post's content",
        description: 'Sets the content of the post with this id and answers the post as it is now.',
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
        operationId: 'deletePost',
        summary: 'Delete a post',
        description: 'Deletes the post with this id. Answers 204 with no body.',
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
