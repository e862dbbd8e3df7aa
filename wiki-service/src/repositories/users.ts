import type { Kysely } from 'kysely';
import type { Database } from '../db/schema.js';
import { NotFoundError } from '../errors.js';
import { toPage, type Page, type PageRequest } from './pagination.js';

export interface User {
  id: number;
  name: string;
  created_time: string;
}

export interface UsersRepository {
  create(name: string): Promise<User>;
  /** @throws NotFoundError when there is no such user */
  get(id: number): Promise<User>;
  list(page: PageRequest): Promise<Page<User>>;
  /** @throws NotFoundError when there is no such user */
  rename(id: number, name: string): Promise<User>;
  /** Deletes the user and, by the foreign key's ON DELETE CASCADE, the user's posts. */
  delete(id: number): Promise<void>;
}

const USER_COLUMNS = ['id', 'name', 'created_time'] as const;

export function createUsersRepository(db: Kysely<Database>): UsersRepository {
  return {
    async create(name) {
      return db.insertInto('users').values({ name }).returning(USER_COLUMNS).executeTakeFirstOrThrow();
    },

    async get(id) {
      const user = await db.selectFrom('users').select(USER_COLUMNS).where('id', '=', id).executeTakeFirst();
      return user ?? notFound();
    },

    async list({ limit, after }) {
      const rows = await db
        .selectFrom('users')
        .select(USER_COLUMNS)
        .where('id', '>', after ?? 0)
        .orderBy('id')
        .limit(limit + 1)
        .execute();
      return toPage(rows, limit, (user) => user.id);
    },

    async rename(id, name) {
      const user = await db.updateTable('users').set({ name }).where('id', '=', id).returning(USER_COLUMNS).executeTakeFirst();
      return user ?? notFound();
    },

    async delete(id) {
      const result = await db.deleteFrom('users').where('id', '=', id).executeTakeFirst();
      if (result.numDeletedRows === 0n) notFound();
    },
  };
}

function notFound(): never {
  throw new NotFoundError('User not found');
}
