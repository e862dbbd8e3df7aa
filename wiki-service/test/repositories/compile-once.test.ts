import { PGlite } from '@electric-sql/pglite';
import { Kysely, type KyselyPlugin } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrateToLatest } from '../../src/db/migrate.js';
import { PGliteDialect } from '../../src/db/pglite-dialect.js';
import type { Database } from '../../src/db/schema.js';
import { compileOnce, onlyRow } from '../../src/repositories/compile-once.js';

// A query compiled once is run with each call's arguments, each bound to its own
// placeholder by identity: in the order of the SQL's placeholders whatever the order of
// the arguments, never confused with a value that happens to be equal.

describe('compileOnce', () => {
  let db: Kysely<Database>;
  // The query id of every query run, as a plugin sees it.
  const queryIds: unknown[] = [];
  const recordQueryIds: KyselyPlugin = {
    transformQuery: (args) => args.node,
    transformResult: async (args) => {
      queryIds.push(args.queryId);
      return args.result;
    },
  };

  beforeAll(async () => {
    db = new Kysely<Database>({ dialect: new PGliteDialect(await PGlite.create()), plugins: [recordQueryIds] });
    await migrateToLatest(db);
  });
  afterAll(async () => {
    await db?.destroy();
  });

  it('binds each call its own arguments, in the order of the placeholders, not of the arguments', async () => {
    const insert = compileOnce(db, (name: string) => db.insertInto('users').values({ name }).returning(['id', 'name']));
    // SET name = $1 WHERE id = $2, for arguments (id, name).
    const rename = compileOnce(db, (id: number, name: string) => db.updateTable('users').set({ name }).where('id', '=', id).returning(['id', 'name']));
    const first = onlyRow(await insert('first'));
    const second = onlyRow(await insert('second'));
    expect(first.name).toBe('first');
    expect(second.name).toBe('second');

    expect((await rename(second.id, 'renamed')).rows).toEqual([{ id: second.id, name: 'renamed' }]);
    const names = await db.selectFrom('users').select(['id', 'name']).where('id', 'in', [first.id, second.id]).orderBy('id').execute();
    expect(names).toEqual([
      { id: first.id, name: 'first' },
      { id: second.id, name: 'renamed' },
    ]);
  });

  // Matched by value, `where(user_id = userId).limit(1)` with a sample of 1 compiled to
  // LIMIT $2 bound to the user's id: for user 42, LIMIT 42.
  it('refuses a value fixed inside the query (a constant, or one computed from an argument), when it is created', () => {
    expect(() => compileOnce(db, (userId: number) => db.selectFrom('posts').select('id').where('user_id', '=', userId).limit(1))).toThrow(
      'compileOnce: parameter $2 is 1, a value fixed when the query was built, not an argument',
    );
    expect(() =>
      compileOnce(db, (rows: number) =>
        db
          .selectFrom('users')
          .select('id')
          .limit(rows + 1),
      ),
    ).toThrow('compileOnce: parameter $1 is "[object Object]1"');
    expect(() => compileOnce(db, (_unused: number) => db.selectFrom('users').select('id'))).toThrow('compileOnce: argument 1 never reaches the SQL unchanged');
  });

  it('gives every call a query id of its own, and runs inside a transaction when given one', async () => {
    const select = compileOnce(db, (id: number) => db.selectFrom('users').select('name').where('id', '=', id));
    const insert = compileOnce(db, (name: string) => db.insertInto('users').values({ name }).returning('id'));
    queryIds.length = 0;
    await select(1);
    await select(1);
    expect(queryIds).toHaveLength(2);
    expect(queryIds[0]).not.toBe(queryIds[1]);

    // Seen inside its transaction, and gone with it once it is rolled back: it ran in
    // the transaction, not beside it.
    let inside: { id: number; rows: unknown[] } | undefined;
    await db
      .transaction()
      .execute(async (trx) => {
        const { id } = onlyRow(await insert.in(trx)('inside a transaction'));
        inside = { id, rows: (await select.in(trx)(id)).rows };
        throw new Error('roll back');
      })
      .catch(() => undefined);
    expect(inside!.rows).toEqual([{ name: 'inside a transaction' }]);
    expect((await select(inside!.id)).rows).toEqual([]);
  });

  it('onlyRow fails when the query returned no row', () => {
    expect(() => onlyRow({ rows: [] })).toThrow('expected a row, the query returned none');
  });
});
