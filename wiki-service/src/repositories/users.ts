import type { Kysely } from 'kysely';
import type { Database } from '../db/schema.js';
import { NotFoundError } from '../not-found-error.js';
// A row is what the API returns: its type comes from the schema that serializes it.
import type { User } from '../schemas.js';
import { compileOnce, onlyRow } from './compile-once.js';
import { toPage, type Page, type PageRequest } from './pagination.js';

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
  const insertUser = compileOnce(db, (name: string) => db.insertInto('users').values({ name }).returning(USER_COLUMNS));
  const selectUser = compileOnce(db, (id: number) => db.selectFrom('users').select(USER_COLUMNS).where('id', '=', id));
  const selectPage = compileOnce(db, (after: number, rows: number) =>
    db.selectFrom('users').select(USER_COLUMNS).where('id', '>', after).orderBy('id').limit(rows),
  );
  const renameUser = compileOnce(db, (id: number, name: string) => db.updateTable('users').set({ name }).where('id', '=', id).returning(USER_COLUMNS));
  const deleteUser = compileOnce(db, (id: number) => db.deleteFrom('users').where('id', '=', id));

  return {
    async create(name) {
      return onlyRow(await insertUser(name));
    },

    async get(id) {
      const { rows } = await selectUser(id);
      return rows[0] ?? notFound();
    },

    async list({ limit, after }) {
      const { rows } = await selectPage(after ?? 0, limit + 1);
      return toPage(rows, limit, (user) => user.id);
    },

    async rename(id, name) {
      const { rows } = await renameUser(id, name);
      return rows[0] ?? notFound();
    },

    async delete(id) {
      const { numAffectedRows } = await deleteUser(id);
      if (numAffectedRows === 0n) notFound();
    },
  };
}

function notFound(): never {
  throw new NotFoundError('User not found');
}
