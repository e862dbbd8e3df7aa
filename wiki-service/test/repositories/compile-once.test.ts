import { PGlite } from '@electric-sql/pglite';
import { Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrateToLatest } from '../../src/db/migrate.js';
import { PGliteDialect } from '../../src/db/pglite-dialect.js';
import type { Database } from '../../src/db/schema.js';
import { compileOnce, onlyRow } from '../../src/repositories/compile-once.js';

// A query compiled once is run with each call's arguments, put in the order of the
// SQL's placeholders, whatever the order of the arguments.

describe('compileOnce', () => {
  let db: Kysely<Database>;

  beforeAll(async () => {
    db = new Kysely<Database>({ dialect: new PGliteDialect(await PGlite.create()) });
    await migrateToLatest(db);
  });
  afterAll(async () => {
    await db?.destroy();
  });

  it('binds each call its own arguments, in the order of the placeholders, not of the arguments', async () => {
    const insert = compileOnce(db, (name: string) => db.insertInto('users').values({ name }).returning(['id', 'name']), ['sample']);
    // SET name = $1 WHERE id = $2, for arguments (id, name).
    const rename = compileOnce(db, (id: number, name: string) => db.updateTable('users').set({ name }).where('id', '=', id).returning(['id', 'name']), [
      1,
      'sample',
    ]);
    const first = onlyRow(await insert('first'));
    const second = onlyRow(await insert('second'));
    expect(first.name).toBe('first');
    expect(second.name).toBe('second');

    expect((await rename(second.id, 'renamed')).rows).toEqual([{ id: second.id, name: 'renamed' }]);
    const names = await db.selectFrom('users').select(['id', 'name']).orderBy('id').execute();
    expect(names).toEqual([
      { id: first.id, name: 'first' },
      { id: second.id, name: 'renamed' },
    ]);
  });

  it('refuses a query whose arguments do not all reach the SQL unchanged, when it is created', () => {
    expect(() =>
      compileOnce(
        db,
        (rows: number) =>
          db
            .selectFrom('users')
            .select('id')
            .limit(rows + 1),
        [2],
      ),
    ).toThrow('every argument must be a parameter of the SQL, unchanged; sample [2], parameters [3]');
    expect(() => compileOnce(db, (_unused: number) => db.selectFrom('users').select('id'), [2])).toThrow('every argument must be a parameter of the SQL');
  });

  it('refuses equal sample arguments, which could not be told apart', () => {
    expect(() => compileOnce(db, (after: number, rows: number) => db.selectFrom('users').select('id').where('id', '>', after).limit(rows), [1, 1])).toThrow(
      'the sample arguments must differ from each other: [1,1]',
    );
  });

  it('onlyRow fails when the query returned no row', () => {
    expect(() => onlyRow({ rows: [] })).toThrow('expected a row, the query returned none');
  });
});
