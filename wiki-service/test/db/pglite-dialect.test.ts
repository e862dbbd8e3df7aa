import { PGlite } from '@electric-sql/pglite';
import { Kysely, sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PGliteDialect } from '../../src/db/pglite-dialect.js';
import { sleep } from '@wiki/test-support/wait';

// PGlite is one PostgreSQL session. Two transactions sharing it would see each
// other's uncommitted work and overwrite each other (BEGIN inside BEGIN is ignored).
// The dialect must hand the session to one transaction at a time.

interface Counter {
  counter: { id: number; value: number };
}

describe('PGliteDialect', () => {
  let db: Kysely<Counter>;

  beforeAll(async () => {
    db = new Kysely<Counter>({ dialect: new PGliteDialect(await PGlite.create()) });
    await sql`CREATE TABLE counter (id integer PRIMARY KEY, value integer NOT NULL)`.execute(db);
    await sql`INSERT INTO counter VALUES (1, 0)`.execute(db);
  });
  afterAll(async () => {
    await db?.destroy();
  });

  it('runs concurrent read-modify-write transactions one at a time: no lost updates', async () => {
    const transactions = 50;
    await Promise.all(
      Array.from({ length: transactions }, () =>
        db.transaction().execute(async (trx) => {
          const { value } = await trx.selectFrom('counter').select('value').where('id', '=', 1).executeTakeFirstOrThrow();
          await sleep(1); // let the others run if they can
          await trx
            .updateTable('counter')
            .set({ value: value + 1 })
            .where('id', '=', 1)
            .execute();
        }),
      ),
    );
    const { value } = await db.selectFrom('counter').select('value').executeTakeFirstOrThrow();
    expect(value).toBe(transactions);
  });

  it('a rolled-back transaction leaves nothing behind, and others are unaffected', async () => {
    const before = (await db.selectFrom('counter').select('value').executeTakeFirstOrThrow()).value;
    const failing = db.transaction().execute(async (trx) => {
      await trx.updateTable('counter').set({ value: -1000 }).where('id', '=', 1).execute();
      await sleep(5);
      throw new Error('roll back');
    });
    const succeeding = db.transaction().execute(async (trx) => {
      await trx
        .updateTable('counter')
        .set((eb) => ({ value: eb('value', '+', 1) }))
        .where('id', '=', 1)
        .execute();
    });
    await expect(failing).rejects.toThrow('roll back');
    await succeeding;
    expect((await db.selectFrom('counter').select('value').executeTakeFirstOrThrow()).value).toBe(before + 1);
  });

  it('reports affected rows for updates and deletes', async () => {
    const result = await db.updateTable('counter').set({ value: 7 }).where('id', '=', 1).executeTakeFirst();
    expect(result.numUpdatedRows).toBe(1n);
    const none = await db.deleteFrom('counter').where('id', '=', 999).executeTakeFirst();
    expect(none.numDeletedRows).toBe(0n);
  });
});
