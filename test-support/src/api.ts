import { client, type Client } from './http.js';

// Reading the API's data back, as a client would.

export type User = { id: number; name: string; created_time: string };
export type Post = { post_id: number; content: string; user_id: number; created_time: string };

/** Every item of a paginated list (`/users`, `/posts`), following next_cursor; `api` is a base URL or a client. */
export async function everything<T>(api: string | Pick<Client, 'get'>, path: string): Promise<T[]> {
  const { get } = typeof api === 'string' ? client(api) : api;
  const items: T[] = [];
  let cursor: string | null = null;
  do {
    const page: { items: T[]; next_cursor: string | null } = (await get(`${path}?limit=100${cursor === null ? '' : `&cursor=${cursor}`}`)).body;
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor !== null);
  return items;
}
