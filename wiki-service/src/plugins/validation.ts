import Ajv, { type ErrorObject } from 'ajv';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';

// Request parsing and validation, shaped like FastAPI's so the original's clients
// keep working: every bad input is a 422 whose `detail` lists what was wrong where.

export class JsonBodyError extends Error {
  constructor(readonly reason: string) {
    super(`invalid JSON body: ${reason}`);
    this.name = 'JsonBodyError';
  }
}

export interface ValidationIssue {
  loc: Array<string | number>;
  msg: string;
  type: string;
}

// Neither JSON bodies nor URL values are coerced by Ajv: {"user_id": "42"} or
// {"name": 42} is a type error, not a guess. Path and query values arrive as text, so
// their integers are parsed here first (see parseUrlIntegers).
const ajvOptions = { allErrors: true, useDefaults: true, strict: true, coerceTypes: false } as const;
const bodyAjv = new Ajv.default(ajvOptions);
const urlAjv = new Ajv.default(ajvOptions);

const LOCATION_OF_PART: Record<string, string> = { body: 'body', params: 'path', querystring: 'query', headers: 'header' };

export const validation = fp(
  async (app: FastifyInstance) => {
    app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? bodyAjv.compile(schema) : compileUrlValidator(schema as UrlSchema)));
  },
  { name: 'validation' },
);

/**
 * One parser for every request body, whatever its Content-Type says: the original read
 * any body as JSON, and clients such as `curl -d` send form content types. The header
 * is dropped before parsing, since Fastify would refuse one it cannot parse (empty, a
 * list, non-ASCII bytes) with a 415 before any parser runs. Registered only in the
 * scope of the original's routes (app.ts): any other route, a file upload say, keeps
 * its Content-Type and Fastify's parsers.
 */
export const everyBodyAsJson = fp(
  async (app: FastifyInstance) => {
    app.addHook('onRequest', async (request) => {
      delete request.headers['content-type'];
    });
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('*', { parseAs: 'string' }, (_request, body, done) => {
      const text = body as string;
      if (text.trim() === '') return done(null, undefined);
      try {
        done(null, JSON.parse(text));
      } catch (error) {
        done(new JsonBodyError((error as Error).message), undefined);
      }
    });
  },
  { name: 'every-body-as-json' },
);

interface UrlSchema {
  type: 'object';
  properties: Record<string, { type?: string }>;
}

type UrlValidator = ((data: unknown) => boolean) & { errors?: ErrorObject[] | null };

/**
 * Path parameters and query strings are flat objects of text. Their integers are
 * parsed by parseUrlIntegers, then Ajv checks types and ranges. Ajv's own coercion is
 * not used: it reads "0x1", "1e0", "+1" and " 1" as 1, and "Infinity" or a 400-digit
 * string as Infinity, which then skips its range checks and reaches the database.
 */
function compileUrlValidator(schema: UrlSchema): UrlValidator {
  const integerFields: string[] = [];
  for (const [name, property] of Object.entries(schema.properties)) {
    if (property.type === 'integer') integerFields.push(name);
    else if (property.type !== 'string') throw new Error(`URL schemas hold strings and integers only; ${name} is ${property.type}`);
  }
  const validate = urlAjv.compile(schema);
  const validator: UrlValidator = (data) => {
    if (typeof data === 'object' && data !== null) parseUrlIntegers(data as Record<string, unknown>, integerFields);
    const valid = validate(data);
    validator.errors = validate.errors;
    return valid;
  };
  return validator;
}

const DECIMAL_INTEGER = /^-?[0-9]+$/;

/**
 * Replaces each field that is written as a plain decimal integer by its number;
 * anything else stays text, which Ajv then reports as "value is not a valid integer".
 * A number too large for a double becomes the largest finite one, so the range check
 * (not the type check) names the problem, as it does for any other large value.
 */
function parseUrlIntegers(data: Record<string, unknown>, fields: string[]): void {
  for (const field of fields) {
    const text = data[field];
    if (typeof text !== 'string' || !DECIMAL_INTEGER.test(text)) continue;
    const value = Number(text);
    data[field] = Number.isFinite(value) ? value : Math.sign(value) * Number.MAX_VALUE;
  }
}

/** Translates Ajv's errors into FastAPI's `detail` entries. */
export function toValidationIssues(errors: ErrorObject[], httpPart: string | undefined, data: unknown): ValidationIssue[] {
  const part = LOCATION_OF_PART[httpPart ?? 'body'] ?? 'body';
  return errors.map((error) => {
    const path = error.instancePath.split('/').slice(1).map(unescapeJsonPointer);
    const loc: Array<string | number> = [part, ...path];
    const limit = error.params.limit as number | undefined;
    switch (error.keyword) {
      case 'required':
        return { loc: [...loc, error.params.missingProperty as string], msg: 'field required', type: 'value_error.missing' };
      case 'type':
        return describeTypeError(loc, error.params.type as string, path.length === 0 ? data : undefined);
      case 'minLength':
        return { loc, msg: `ensure this value has at least ${limit} characters`, type: 'value_error.any_str.min_length' };
      case 'maxLength':
        return { loc, msg: `ensure this value has at most ${limit} characters`, type: 'value_error.any_str.max_length' };
      case 'minimum':
        return { loc, msg: `ensure this value is greater than or equal to ${limit}`, type: 'value_error.number.not_ge' };
      case 'maximum':
        return { loc, msg: `ensure this value is less than or equal to ${limit}`, type: 'value_error.number.not_le' };
      case 'pattern':
        return { loc, msg: 'text must not contain NUL characters or unpaired surrogates', type: 'value_error.str.regex' };
      default:
        return { loc, msg: error.message ?? 'invalid value', type: `value_error.${error.keyword}` };
    }
  });
}

function describeTypeError(loc: Array<string | number>, expected: string, rootValue: unknown): ValidationIssue {
  // A missing body fails the root "must be object" check; FastAPI calls that missing.
  if (loc.length === 1 && (rootValue === undefined || rootValue === null)) {
    return { loc, msg: 'field required', type: 'value_error.missing' };
  }
  switch (expected) {
    case 'integer':
      return { loc, msg: 'value is not a valid integer', type: 'type_error.integer' };
    case 'string':
      return { loc, msg: 'str type expected', type: 'type_error.str' };
    case 'object':
      return { loc, msg: 'value is not a valid dict', type: 'type_error.dict' };
    default:
      return { loc, msg: `value is not a valid ${expected}`, type: `type_error.${expected}` };
  }
}

function unescapeJsonPointer(segment: string): string {
  return segment.replace(/~1/g, '/').replace(/~0/g, '~');
}
