import { createQueryId, type Compilable, type Kysely, type QueryResult } from 'kysely';
import { nameStatement } from '../db/database.js';
import type { Database } from '../db/schema.js';

/** Stands for one argument while the query is built: an object of its own, never equal to any value. */
class Argument {
  constructor(readonly index: number) {}
}

/** Where a compiled query runs: the database, or a transaction of it. */
type Executor = Pick<Kysely<Database>, 'executeQuery'>;

export interface CompiledOnce<Args extends unknown[], Row> {
  (...args: Args): Promise<QueryResult<Row>>;
  /** The same query inside a transaction: `query.in(trx)(...args)`. */
  in(executor: Executor): (...args: Args) => Promise<QueryResult<Row>>;
}

/**
 * A query built and compiled to SQL once, when its repository is created; each call
 * runs that same SQL with its own parameters, as a named prepared statement.
 *
 * Kysely otherwise builds a tree of immutable nodes and compiles it to the same SQL
 * text again on every request (docs/PHASE2_POSTGRESQL.md, "The request path,
 * measured", gives what that cost).
 *
 * `build` is called once, with one placeholder object per argument. Each SQL
 * parameter must be one of them, so each is bound to its argument by identity, never
 * by value. A value fixed inside `build` (`limit(1)`, `rows + 1`) would be a parameter
 * that is no argument: it is refused, as is an argument that never reaches the SQL,
 * when the service starts. Compute such values before the call and pass them in.
 */
export function compileOnce<Args extends unknown[], Row>(db: Kysely<Database>, build: (...args: Args) => Compilable<Row>): CompiledOnce<Args, Row> {
  const placeholders = Array.from({ length: build.length }, (_, index) => new Argument(index));
  const compiled = build(...(placeholders as unknown as Args)).compile();
  const argumentOf = compiled.parameters.map((parameter, position) => {
    if (!(parameter instanceof Argument)) {
      throw new Error(
        `compileOnce: parameter $${position + 1} is ${JSON.stringify(parameter)}, a value fixed when the query was built, not an argument: pass it as one: ${compiled.sql}`,
      );
    }
    return parameter.index;
  });
  const unused = placeholders.filter((placeholder) => !argumentOf.includes(placeholder.index)).map((placeholder) => placeholder.index + 1);
  if (unused.length > 0) throw new Error(`compileOnce: argument ${unused.join(', ')} never reaches the SQL unchanged: ${compiled.sql}`);
  nameStatement(compiled.sql);
  const run =
    (executor: Executor) =>
    (...args: Args): Promise<QueryResult<Row>> =>
      // A query id of its own each time, as Kysely gives every query it runs.
      executor.executeQuery<Row>({ query: compiled.query, sql: compiled.sql, queryId: createQueryId(), parameters: argumentOf.map((index) => args[index]) });
  return Object.assign(run(db), { in: run });
}

/** The one row a query returns (an INSERT ... RETURNING), or an error if it returned none. */
export function onlyRow<Row>(result: QueryResult<Row>): Row {
  const row = result.rows[0];
  if (row === undefined) throw new Error('expected a row, the query returned none');
  return row;
}
