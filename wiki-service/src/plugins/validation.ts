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

// Path and query values arrive as text, so they are coerced ("42" -> 42); JSON
// bodies are not, so {"user_id": "42"} or {"name": 42} is a type error, not a guess.
const ajvOptions = { allErrors: true, useDefaults: true, strict: true } as const;
const bodyAjv = new Ajv.default({ ...ajvOptions, coerceTypes: false });
const urlAjv = new Ajv.default({ ...ajvOptions, coerceTypes: true });

const LOCATION_OF_PART: Record<string, string> = { body: 'body', params: 'path', querystring: 'query', headers: 'header' };

export const validation = fp(async (app: FastifyInstance) => {
  app.setValidatorCompiler(({ schema, httpPart }) =>
    httpPart === 'body' ? bodyAjv.compile(schema) : urlAjv.compile(schema),
  );

  // One parser for every request body, whatever its Content-Type says: the original
  // read any body as JSON, and clients such as `curl -d` send form content types.
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
});

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
