import { Type, type Static } from 'typebox';

// Every request and response shape, in one place. Each schema does three jobs:
// Fastify validates requests against it, serializes responses through it (only the
// listed fields leave the process), and @fastify/swagger publishes it as OpenAPI.

/** PostgreSQL `integer`, the type of every id column. */
const MAX_ID = 2_147_483_647;

const Id = (description: string) => Type.Integer({ minimum: 1, maximum: MAX_ID, description });

// PostgreSQL text cannot hold U+0000, and an unpaired UTF-16 surrogate is not a
// character at all; both are refused up front (422) instead of failing at insert.
// The pattern runs with the `u` flag, where a surrogate pair counts as one character.
const STORABLE_TEXT_PATTERN = '^[^\\u0000\\uD800-\\uDFFF]*$';

const Text = (maxLength: number, description: string) => Type.String({ minLength: 1, maxLength, pattern: STORABLE_TEXT_PATTERN, description });

const UserName = Text(255, 'Display name, 1 to 255 characters');
const PostContent = Text(100_000, 'Post body, 1 to 100,000 characters');
const CreatedTime = Type.String({
  description: 'Set by the database at insert; ISO 8601 with UTC offset and microseconds',
  examples: ['2026-11-23T10:05:50.193645+00:00'],
});

export const User = Type.Object({ id: Id('User id'), name: UserName, created_time: CreatedTime });
export type User = Static<typeof User>;

/** A post as the API shows it: the table's `id` is exposed as `post_id`. */
export const Post = Type.Object({ post_id: Id('Post id'), content: PostContent, user_id: Id('Author (user id)'), created_time: CreatedTime });
export type Post = Static<typeof Post>;

export const UserIdParams = Type.Object({ id: Id('User id') });
export const PostIdParams = Type.Object({ id: Id('Post id') });

export const CreateUserBody = Type.Object({ name: UserName });
export const RenameUserBody = Type.Object({ name: UserName });
export const CreatePostBody = Type.Object({ user_id: Id('Author (user id)'), content: PostContent });
export const EditPostBody = Type.Object({ content: PostContent });

const DEFAULT_PAGE_SIZE = 20;
const MAX_PAGE_SIZE = 100;

const pageQueryFields = {
  limit: Type.Integer({ minimum: 1, maximum: MAX_PAGE_SIZE, default: DEFAULT_PAGE_SIZE, description: 'Page size' }),
  cursor: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_ID, description: "The previous page's next_cursor" })),
};
export const PageQuery = Type.Object(pageQueryFields);
export const PostsPageQuery = Type.Object({
  ...pageQueryFields,
  user_id: Type.Optional(Id('Only posts by this user')),
});

const NextCursor = Type.Union([Type.String(), Type.Null()], {
  description: 'Pass as ?cursor= to get the next page; null on the last page',
});
export const UsersPage = Type.Object({ items: Type.Array(User), next_cursor: NextCursor });
export const PostsPage = Type.Object({ items: Type.Array(Post), next_cursor: NextCursor });

/** 404, 413, 503 and other errors: FastAPI's `{"detail": "..."}`. */
export const ErrorMessage = Type.Object({ detail: Type.String() });

/** 422: FastAPI's list of validation errors. */
const ValidationErrors = Type.Object({
  detail: Type.Array(
    Type.Object({
      loc: Type.Array(Type.Union([Type.String(), Type.Integer()])),
      msg: Type.String(),
      type: Type.String(),
    }),
  ),
});

export const Health = Type.Object({ status: Type.Literal('healthy'), timestamp: Type.String() });
export const Readiness = Type.Object({
  status: Type.Union([Type.Literal('ready'), Type.Literal('not ready')]),
  detail: Type.Optional(Type.String()),
});

/** The error responses every route with input can give. */
export const INPUT_ERRORS = { 422: ValidationErrors, 503: ErrorMessage } as const;
