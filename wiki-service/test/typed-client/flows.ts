import createClient from 'openapi-fetch';
// Generated from the served /openapi.json by test/openapi-clients.test.ts, which then
// type-checks this file against it: a flow that the document does not describe fails
// to compile there.
import type { paths } from './wiki-api.js';

// The API's main flows through a client generated from its own document, as a user of
// the API would write them: create, read, page through, update and delete users and
// posts, and the documented errors. Each returns what it saw; the test asserts.

export type WikiClient = ReturnType<typeof createClient<paths>>;

export function wikiClient(baseUrl: string): WikiClient {
  return createClient<paths>({ baseUrl });
}

/** Creates a user, reads it at both paths, renames it; returns every answer's data. */
export async function userLifecycle(client: WikiClient, name: string) {
  const created = await client.POST('/users', { body: { name } });
  if (created.data === undefined) throw new Error(`POST /users answered ${created.response.status}`);
  const id: number = created.data.id;
  const atOriginalPath = await client.GET('/user/{id}', { params: { path: { id } } });
  const atUsersPath = await client.GET('/users/{id}', { params: { path: { id } } });
  const renamed = await client.PATCH('/users/{id}', { params: { path: { id } }, body: { name: `${name} (renamed)` } });
  return { created: created.data, atOriginalPath: atOriginalPath.data, atUsersPath: atUsersPath.data, renamed: renamed.data };
}

/** Creates `count` posts by `userId` and edits the first; returns the created posts and the edited one. */
export async function postLifecycle(client: WikiClient, userId: number, count: number) {
  const posts = [];
  for (let i = 0; i < count; i++) {
    const { data, response } = await client.POST('/posts', { body: { user_id: userId, content: `post ${i}` } });
    if (data === undefined) throw new Error(`POST /posts answered ${response.status}`);
    const postId: number = data.post_id;
    posts.push({ ...data, post_id: postId });
  }
  const edited = await client.PATCH('/posts/{id}', { params: { path: { id: posts[0]!.post_id } }, body: { content: 'edited' } });
  const read = await client.GET('/posts/{id}', { params: { path: { id: posts[0]!.post_id } } });
  return { posts, edited: edited.data, read: read.data };
}

/** Every post of `userId`, `limit` at a time, following next_cursor; returns the pages' ids. */
export async function pageThroughPosts(client: WikiClient, userId: number, limit: number): Promise<number[][]> {
  const pages: number[][] = [];
  let cursor: number | undefined;
  for (;;) {
    const { data, response } = await client.GET('/users/{id}/posts', { params: { path: { id: userId }, query: { limit, cursor } } });
    if (data === undefined) throw new Error(`GET /users/{id}/posts answered ${response.status}`);
    pages.push(data.items.map((post) => post.post_id));
    const next: string | null = data.next_cursor;
    if (next === null) return pages;
    cursor = Number(next);
  }
}

/** The same posts through /posts?user_id=, in one page. */
export async function postsOfUser(client: WikiClient, userId: number) {
  const { data } = await client.GET('/posts', { params: { query: { user_id: userId, limit: 100 } } });
  return data?.items.map((post) => post.post_id);
}

/** Deletes a post, then the user (and with them the rest); returns the statuses, and what reading them afterwards answers. */
export async function deletions(client: WikiClient, userId: number, postId: number) {
  const deletedPost = await client.DELETE('/posts/{id}', { params: { path: { id: postId } } });
  const deletedUser = await client.DELETE('/users/{id}', { params: { path: { id: userId } } });
  const postAfter = await client.GET('/posts/{id}', { params: { path: { id: postId } } });
  const userAfter = await client.GET('/users/{id}', { params: { path: { id: userId } } });
  // The error bodies the document gives this operation: a 404's or 503's detail is a
  // message, a 422's a list of problems.
  const detail = userAfter.error?.detail;
  const notFound: string | undefined = typeof detail === 'string' ? detail : undefined;
  return { deletedPost: deletedPost.response.status, deletedUser: deletedUser.response.status, postAfter: postAfter.response.status, notFound };
}

/** The documented errors: a 404 with its message, and a 422 with FastAPI's list of what was wrong. */
export async function documentedErrors(client: WikiClient) {
  const missingUser = await client.GET('/user/{id}', { params: { path: { id: 2_147_483_647 } } });
  const postOfMissingUser = await client.POST('/posts', { body: { user_id: 2_147_483_647, content: 'orphan' } });
  const emptyName = await client.POST('/users', { body: { name: '' } });
  // A 422's detail is a list of { loc, msg, type }, typed by the document.
  const validation = emptyName.error;
  const problems = validation !== undefined && typeof validation.detail !== 'string' ? validation.detail.map(({ loc, msg, type }) => ({ loc, msg, type })) : [];
  return {
    missingUser: { status: missingUser.response.status, detail: missingUser.error?.detail },
    postOfMissingUser: { status: postOfMissingUser.response.status, detail: postOfMissingUser.error?.detail },
    emptyName: { status: emptyName.response.status, problems },
  };
}

/** Calls the document must refuse at compile time: if the generated types were `any`, these directives would be unused, and tsc fails. */
export function refusedByTheTypes(client: WikiClient) {
  return [
    // @ts-expect-error -- a field the document does not have
    () => client.POST('/users', { body: { nam: 'x' } }),
    // @ts-expect-error -- an id is a number
    () => client.GET('/posts/{id}', { params: { path: { id: 'one' } } }),
    // @ts-expect-error -- no such path
    () => client.GET('/user/{id}/comments', { params: { path: { id: 1 } } }),
  ];
}
