// `npm run bench:compile-once`: what compileOnce (src/repositories/compile-once.ts)
// saves per query, with and without it, side by side. Without it, Kysely builds the
// query's tree of nodes and compiles it to SQL on every call, as a repository that
// wrote `db.selectFrom(...)...execute()` per request would; with it, each call only
// fills in the parameters of SQL compiled once. Both run on Kysely's DummyDriver (no
// database: it answers every query with no rows), so the figures are the JavaScript
// each way costs and nothing else; a query's round trip to PostgreSQL is the same
// either way. The queries are the repositories' own shapes. Variants run interleaved,
// in an order reversed every other round; medians are reported.
//
// Run it with the service's Node flags: `npm run bench:compile-once` does.

import { DummyDriver, Kysely, PostgresAdapter, PostgresIntrospector, PostgresQueryCompiler, type Compilable } from 'kysely';
import { median } from '@wiki/test-support/median';
import type { Database } from '../src/db/schema.js';
import { compileOnce } from '../src/repositories/compile-once.js';

const CALLS = 50_000;
const ROUNDS = 6;
const COLUMNS = ['id', 'name', 'created_time'] as const;

const db = new Kysely<Database>({
  dialect: {
    createAdapter: () => new PostgresAdapter(),
    createDriver: () => new DummyDriver(),
    createIntrospector: (kysely) => new PostgresIntrospector(kysely),
    createQueryCompiler: () => new PostgresQueryCompiler(),
  },
});

// The repositories' queries (users.ts, posts.ts), each with arguments for one call.
const QUERIES: Record<string, { build: (...args: never[]) => Compilable<unknown>; args: unknown[] }> = {
  'GET /user/{id}: select by id': { build: (id: number) => db.selectFrom('users').select(COLUMNS).where('id', '=', id), args: [123] },
  'POST /users: insert ... returning': { build: (name: string) => db.insertInto('users').values({ name }).returning(COLUMNS), args: ['a name'] },
  'GET /users: a page': {
    build: (after: number, rows: number) => db.selectFrom('users').select(COLUMNS).where('id', '>', after).orderBy('id').limit(rows),
    args: [100, 21],
  },
  'PATCH /posts/{id}: update ... returning': {
    build: (id: number, content: string) =>
      db.updateTable('posts').set({ content }).where('id', '=', id).returning(['id', 'user_id', 'content', 'created_time']),
    args: [123, 'new content'],
  },
};

type Run = () => Promise<unknown>;

async function cpuMicrosecondsPerCall(run: Run): Promise<number> {
  const started = process.cpuUsage();
  for (let i = 0; i < CALLS; i++) await run();
  const used = process.cpuUsage(started);
  return (used.user + used.system) / CALLS;
}

const variants = new Map<string, Run>();
for (const [name, { build, args }] of Object.entries(QUERIES)) {
  const compiled = compileOnce(db, build as (...args: unknown[]) => Compilable<unknown>);
  variants.set(`${name}, compiled once`, () => compiled(...args));
  variants.set(`${name}, built and compiled per call`, () => db.executeQuery((build as (...args: unknown[]) => Compilable<unknown>)(...args).compile()));
}

const measured = new Map<string, number[]>([...variants.keys()].map((name) => [name, []]));
for (const run of variants.values()) await cpuMicrosecondsPerCall(run); // warm-up, not counted
for (let round = 0; round < ROUNDS; round++) {
  const names = [...variants.keys()];
  for (const name of round % 2 === 0 ? names : names.reverse()) measured.get(name)!.push(await cpuMicrosecondsPerCall(variants.get(name)!));
}

console.log(`compileOnce: CPU per query in µs, median of ${ROUNDS} rounds of ${CALLS} calls, without a database (Kysely's DummyDriver)`);
for (const name of Object.keys(QUERIES)) {
  const once = median(measured.get(`${name}, compiled once`)!);
  const perCall = median(measured.get(`${name}, built and compiled per call`)!);
  console.log(
    `  ${name.padEnd(42)} compiled once ${once.toFixed(2).padStart(6)}   per call ${perCall.toFixed(2).padStart(6)}   saved ${(perCall - once).toFixed(2).padStart(6)}`,
  );
}
await db.destroy();
