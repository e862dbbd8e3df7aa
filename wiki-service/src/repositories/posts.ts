import type { Kysely } from 'kysely';
import { SQLSTATE_FOREIGN_KEY_VIOLATION, sqlState } from '../db/errors.js';
import type { Database } from '../db/schema.js';
import { NotFoundError } from '../errors.js';
import { toPage, type Page, type PageRequest } from './pagination.js';

/** A post as the API shows it: the table's `id` is exposed as `post_id`. */
export interface Post {
  post_id: number;
  content: string;
  user_id: number;
  created_time: string;
}

export interface PostsRepository {
  /** @throws NotFoundError('User not found') when the author does not exist */
  create(userId: number, content: string): Promise<Post>;
  /** @throws NotFoundError when there is no such post */
  get(id: number): Promise<Post>;
  list(filter: { userId?: number }, page: PageRequest): Promise<Page<Post>>;
  /** @throws NotFoundError when there is no such post */
  edit(id: number, content: string): Promise<Post>;
  /** @throws NotFoundError when there is no such post */
  delete(id: number): Promise<void>;
}

const POST_COLUMNS = ['id as post_id', 'content', 'user_id', 'created_time'] as const;

export function createPostsRepository(db: Kysely<Database>): PostsRepository {
  return {
    async create(userId, content) {
      try {
        return await db
          .insertInto('posts')
          .values({ user_id: userId, content })
          .returning(POST_COLUMNS)
          .executeTakeFirstOrThrow();
      } catch (error) {
        // The foreign key is the check: no separate "does the user exist" query, and
        // no window in which the user could be deleted between the check and the insert.
        if (sqlState(error) === SQLSTATE_FOREIGN_KEY_VIOLATION) throw new NotFoundError('User not found');
        throw error;
      }
    },

    async get(id) {
      const post = await db.selectFrom('posts').select(POST_COLUMNS).where('id', '=', id).executeTakeFirst();
      return post ?? notFound();
    },

    async list({ userId }, { limit, after }) {
      let query = db
        .selectFrom('posts')
        .select(POST_COLUMNS)
        .where('id', '>', after ?? 0)
        .orderBy('id')
        .limit(limit + 1);
      if (userId !== undefined) query = query.where('user_id', '=', userId);
      const rows = await query.execute();
      return toPage(rows, limit, (post) => post.post_id);
    },

    async edit(id, content) {
      const post = await db.updateTable('posts').set({ content }).where('id', '=', id).returning(POST_COLUMNS).executeTakeFirst();
      return post ?? notFound();
    },

    async delete(id) {
      const result = await db.deleteFrom('posts').where('id', '=', id).executeTakeFirst();
      if (result.numDeletedRows === 0n) notFound();
    },
  };
}

function notFound(): never {
  throw new NotFoundError('Post not found');
}
