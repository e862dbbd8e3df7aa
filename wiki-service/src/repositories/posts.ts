import type { Kysely } from 'kysely';
import { SQLSTATE_FOREIGN_KEY_VIOLATION, sqlState } from '../db/database-errors.js';
import type { Database } from '../db/schema.js';
import { NotFoundError } from '../not-found-error.js';
// A row is what the API returns: its type comes from the schema that serializes it.
import type { Post } from '../schemas.js';
import { compileOnce, onlyRow } from './compile-once.js';
import { toPage, type Page, type PageRequest } from './pagination.js';

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
  const insertPost = compileOnce(db, (userId: number, content: string) => db.insertInto('posts').values({ user_id: userId, content }).returning(POST_COLUMNS));
  const selectPost = compileOnce(db, (id: number) => db.selectFrom('posts').select(POST_COLUMNS).where('id', '=', id));
  const selectPage = compileOnce(db, (after: number, rows: number) =>
    db.selectFrom('posts').select(POST_COLUMNS).where('id', '>', after).orderBy('id').limit(rows),
  );
  const selectPageOfUser = compileOnce(db, (userId: number, after: number, rows: number) =>
    db.selectFrom('posts').select(POST_COLUMNS).where('id', '>', after).where('user_id', '=', userId).orderBy('id').limit(rows),
  );
  const editPost = compileOnce(db, (id: number, content: string) => db.updateTable('posts').set({ content }).where('id', '=', id).returning(POST_COLUMNS));
  const deletePost = compileOnce(db, (id: number) => db.deleteFrom('posts').where('id', '=', id));

  return {
    async create(userId, content) {
      try {
        return onlyRow(await insertPost(userId, content));
      } catch (error) {
        // The foreign key is the check: no separate "does the user exist" query, and
        // no window in which the user could be deleted between the check and the insert.
        if (sqlState(error) === SQLSTATE_FOREIGN_KEY_VIOLATION) throw new NotFoundError('User not found');
        throw error;
      }
    },

    async get(id) {
      const { rows } = await selectPost(id);
      return rows[0] ?? notFound();
    },

    async list({ userId }, { limit, after }) {
      const { rows } = userId === undefined ? await selectPage(after ?? 0, limit + 1) : await selectPageOfUser(userId, after ?? 0, limit + 1);
      return toPage(rows, limit, (post) => post.post_id);
    },

    async edit(id, content) {
      const { rows } = await editPost(id, content);
      return rows[0] ?? notFound();
    },

    async delete(id) {
      const { numAffectedRows } = await deletePost(id);
      if (numAffectedRows === 0n) notFound();
    },
  };
}

function notFound(): never {
  throw new NotFoundError('Post not found');
}
