import type { Compilable, Kysely, QueryResult } from 'kysely';
import type { Database } from '../db/schema.js';

/**
 * A query built and compiled to SQL once, when its repository is created; each call
 * runs that same SQL with its own parameters.
 *
 * Kysely otherwise builds a tree of immutable nodes and compiles it to the same SQL
 * text again on every request (docs/PHASE2_POSTGRESQL.md, "The request path,
 * measured", gives what that cost).
 *
 * `build` is called once, with the `sample` arguments. Each argument must reach the
 * SQL unchanged as a parameter (compute `limit + 1` before calling, not inside
 * `build`), and the sample values must differ from each other: that is how each
 * call's arguments are put in the order of the SQL's placeholders, which need not be
 * the order of the arguments (`UPDATE ... SET name = $1 WHERE id = $2` for `(id, name)`).
 * Both are checked here, so a query that breaks them fails when the service starts.
 */
export function compileOnce<Args extends unknown[], Row>(
  db: Kysely<Database>,
  build: (...args: Args) => Compilable<Row>,
  sample: Args,
): (...args: Args) => Promise<QueryResult<Row>> {
  if (new Set(sample).size !== sample.length) throw new Error(`compileOnce: the sample arguments must differ from each other: ${JSON.stringify(sample)}`);
  const compiled = build(...sample).compile();
  const argumentOf = compiled.parameters.map((parameter) => sample.indexOf(parameter));
  const unused = sample.filter((_, i) => !argumentOf.includes(i));
  if (argumentOf.includes(-1) || unused.length > 0) {
    throw new Error(
      `compileOnce: every argument must be a parameter of the SQL, unchanged; sample ${JSON.stringify(sample)}, parameters ${JSON.stringify(compiled.parameters)}: ${compiled.sql}`,
    );
  }
  return (...args) => db.executeQuery<Row>({ ...compiled, parameters: argumentOf.map((i) => args[i]) });
}

/** The one row a query returns (an INSERT ... RETURNING), or an error if it returned none. */
export function onlyRow<Row>(result: QueryResult<Row>): Row {
  const row = result.rows[0];
  if (row === undefined) throw new Error('expected a row, the query returned none');
  return row;
}
