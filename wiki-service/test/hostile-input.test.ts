import { request as httpRequest } from 'node:http';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testDatabaseConfig } from './support/app.js';
import { BACKENDS, backendUnavailable } from './support/backends.js';
import { client } from '@wiki/test-support/http';
import { startService, type ServiceProcess } from './support/service-process.js';

// Thousands of generated hostile requests against the real service process, on each
// database: odd methods, paths and percent-encodings, numbers at every edge, query
// strings with repeated and nested keys, bodies of every JSON type, invalid UTF-8,
// prototype tricks, deep nesting and sizes around the 1 MiB limit, and headers that
// no well-behaved client sends. Whatever arrives, the answer is a 4xx with a
// FastAPI-shaped body (or a success), never a 5xx, and the process stays healthy.

const REQUESTS_PER_DATABASE = 5000;
// Far above any answer the service should give (its database timeouts are 10 s at
// most, none is reached here): past it, the request is taken to hang.
const ANSWER_WITHIN_MS = 8000;

interface HostileRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: Buffer | undefined;
}

// ---- generators ---------------------------------------------------------------

const EDGE_NUMBER_TEXTS = [
  '0',
  '-0',
  '1',
  '-1',
  '007',
  '2147483647',
  '2147483648',
  '-2147483648',
  '9007199254740993',
  '9'.repeat(400),
  '1e3',
  '1E3',
  '1.5',
  '.5',
  '5.',
  '0x10',
  '0o7',
  '0b1',
  '+1',
  ' 1',
  '1 ',
  'Infinity',
  '-Infinity',
  'NaN',
  '1e309',
  '-1e309',
  '1_000',
  '١',
  '１',
  '',
  'null',
  'true',
  '[]',
  '{}',
  "1' OR '1'='1",
  '1;DROP TABLE users',
];
const BROKEN_PERCENT_ENCODINGS = ['%', '%zz', '%E0%A4%A', '%FF', '%C0%AF', '%00', '%2e%2e', '..', '%2F'];

/** Percent-encodes the UTF-8 bytes of any string (lone surrogates become U+FFFD, as on the wire). */
const percentEncode = (text: string) =>
  [...Buffer.from(text, 'utf8')]
    .map((byte) => (/[A-Za-z0-9\-._~]/.test(String.fromCharCode(byte)) ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`))
    .join('');

const numberText = fc.oneof(
  fc.constantFrom(...EDGE_NUMBER_TEXTS),
  fc.integer().map(String),
  fc.bigInt({ min: -(2n ** 80n), max: 2n ** 80n }).map(String),
  fc.double().map(String),
);
const urlValue = fc.oneof(
  // Ids of rows that exist, so that reads, updates and deletes reach the database.
  { arbitrary: fc.integer({ min: 1, max: 12 }).map(String), weight: 3 },
  numberText.map(percentEncode),
  fc.string({ unit: 'binary', maxLength: 40 }).map(percentEncode),
  fc.constantFrom(...BROKEN_PERCENT_ENCODINGS),
);

const PATH_TEMPLATES = [
  '/users',
  '/users/',
  '/user/{}',
  '/users/{}',
  '/users/{}/',
  '/users/{}/posts',
  '/posts',
  '/posts/{}',
  '/',
  '/health',
  '/ready',
  '/metrics',
  '/openapi.json',
  '/docs',
  '/docs/{}',
  '/docs/static/{}',
  '/{}',
  '/users/{}/{}',
  '//users',
  '/users//{}',
];
const QUERY_KEYS = ['limit', 'cursor', 'user_id', 'limit[]', 'user_id[a]', '__proto__[x]', 'constructor', 'name'];

const path = fc
  .tuple(
    fc.constantFrom(...PATH_TEMPLATES),
    fc.array(urlValue, { minLength: 2, maxLength: 2 }),
    fc.array(fc.tuple(fc.constantFrom(...QUERY_KEYS), urlValue), { maxLength: 4 }),
  )
  .map(([template, [first, second], query]) => {
    const filled = template.replace('{}', first!).replace('{}', second!);
    return query.length === 0 ? filled : `${filled}?${query.map(([key, value]) => `${key}=${value}`).join('&')}`;
  });

const jsonEdgeValue = fc.oneof(
  fc.constantFrom(0, -0, 1, -1, 2147483647, 2147483648, -2147483649, 1e308, -1e308, 0.5, Number.MAX_SAFE_INTEGER + 2, null, true, false, '', [], {}),
  fc.integer(),
  fc.double(),
  fc.string({ unit: 'binary', maxLength: 60 }),
  fc.constantFrom('x'.repeat(255), 'x'.repeat(256), '😀'.repeat(255), '😀'.repeat(256), 'a\u0000b', '\ud800', "'; DROP TABLE users; --"),
  fc.anything({ maxDepth: 2 }),
);

// Far more than one read of the socket: the server may close before reading it all.
const LARGE_BODY_BYTES = 64 * 1024;

// Built once: sending these is the slow part of the run.
const LARGE_BODIES = [
  JSON.stringify({ user_id: 1, content: 'x'.repeat(100_000) }),
  JSON.stringify({ user_id: 1, content: 'x'.repeat(100_001) }),
  JSON.stringify({ user_id: 1, content: 'x'.repeat(1024 * 1024 - 40) }),
  JSON.stringify({ user_id: 1, content: 'x'.repeat(1024 * 1024 + 1) }),
  '['.repeat(100_000),
  `${'['.repeat(5000)}${']'.repeat(5000)}`,
  `{"name": "${'\\u0000'.repeat(1000)}"}`,
].map((text) => Buffer.from(text));

const body = fc.oneof(
  fc.record({ name: jsonEdgeValue, user_id: jsonEdgeValue, content: jsonEdgeValue }, { requiredKeys: [] }).map((value) => Buffer.from(JSON.stringify(value))),
  fc.json().map((text) => Buffer.from(text)),
  fc.string({ unit: 'binary', maxLength: 200 }).map((text) => Buffer.from(text)),
  fc.uint8Array({ maxLength: 200 }).map((bytes) => Buffer.from(bytes)), // not UTF-8, mostly
  fc
    .constantFrom(
      '{"__proto__": {"admin": true}, "name": "proto"}',
      '{"constructor": {"prototype": {"admin": true}}, "name": "ctor"}',
      '{"name": "first", "name": "second"}',
      '{"name": "a", "user_id": 1, "content": "c"}',
    )
    .map((text) => Buffer.from(text)),
  fc.constantFrom(...LARGE_BODIES),
);

// Values Node's HTTP client can put on the wire (it refuses control characters).
const headerText = fc.string({ unit: 'binary-ascii', maxLength: 120 }).map((text) => text.replace(/[^\t\x20-\x7e]/g, ''));
const headers = fc.record(
  {
    'content-type': fc.oneof(
      fc.constantFrom(
        'application/json',
        'text/plain',
        '',
        'application/json; charset=utf-16',
        'multipart/form-data; boundary=x',
        ';;;',
        'a'.repeat(8000),
        '\u00ff\u00fe',
      ),
      headerText,
    ),
    'x-request-id': fc.oneof(headerText, fc.constant('a'.repeat(129)), fc.constant('../../etc/passwd')),
    accept: fc.constantFrom('*/*', 'text/html', 'application/xml', ''),
    'accept-encoding': fc.constantFrom('gzip', 'br', 'identity;q=0', '*'),
    'content-encoding': fc.constantFrom('gzip', 'deflate', 'br', 'identity', 'x-unknown'),
    'x-forwarded-for': headerText,
  },
  { requiredKeys: [] },
);

const hostileRequest: fc.Arbitrary<HostileRequest> = fc.record({
  method: fc.oneof({ arbitrary: fc.constantFrom('GET', 'POST', 'PATCH', 'DELETE'), weight: 4 }, fc.constantFrom('PUT', 'HEAD', 'OPTIONS', 'TRACE', 'PROPFIND')),
  path,
  headers,
  body: fc.option(body, { nil: undefined }),
});

// ---- sending --------------------------------------------------------------------

interface Answer {
  status: number;
  text: string;
}

/** One request on its own connection (a malformed one cannot spoil the next). */
function send(baseUrl: string, hostile: HostileRequest): Promise<Answer> {
  const { hostname, port } = new URL(baseUrl);
  // Node's client frames a body only for methods it expects one with; for GET, HEAD,
  // DELETE, OPTIONS and TRACE it would send the bytes unframed, as a second, garbage
  // request. Malformed framing is tested on its own (contract tests).
  const headers = hostile.body === undefined ? hostile.headers : { ...hostile.headers, 'content-length': String(hostile.body.length) };
  return new Promise((resolve, reject) => {
    const outgoing = httpRequest(
      { host: hostname, port, method: hostile.method, path: hostile.path, headers, agent: false, timeout: ANSWER_WITHIN_MS },
      (response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk) => (text += chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, text }));
        // Once the answer has begun, a broken connection is reported here, not on the request.
        response.on('error', reject);
      },
    );
    outgoing.on('timeout', () => outgoing.destroy(new Error(`no answer within ${ANSWER_WITHIN_MS} ms`)));
    outgoing.on('error', reject);
    // Settles the promise whatever ended the exchange (a no-op once it has resolved).
    outgoing.on('close', () => reject(Object.assign(new Error('connection closed before the answer was complete'), { code: 'ECONNRESET' })));
    outgoing.end(hostile.body);
  });
}

function describeRequest(hostile: HostileRequest): string {
  const body = hostile.body === undefined ? '' : ` body(${hostile.body.length} bytes)=${JSON.stringify(hostile.body.subarray(0, 120).toString('latin1'))}`;
  return `${hostile.method} ${hostile.path.slice(0, 300)} headers=${JSON.stringify(hostile.headers).slice(0, 300)}${body}`;
}

// ---- the test -------------------------------------------------------------------

describe.each(BACKENDS)('hostile input on %s', (backend) => {
  let service: ServiceProcess;
  let removeDatabase: () => Promise<void>;

  beforeAll(async () => {
    if (backendUnavailable(backend)) return;
    const { config, cleanup } = await testDatabaseConfig(backend);
    removeDatabase = cleanup;
    const database: Record<string, string> = config.kind === 'pglite' ? { DATA_DIR: config.dataDir } : { DATABASE_URL: config.connectionString! };
    service = await startService({ ...database, SHUTDOWN_DELAY_SECONDS: '0', LOG_LEVEL: 'warn' });
    // Something to find, so that reads, updates and deletes reach the database too.
    const api = client(service.baseUrl);
    for (let i = 0; i < 5; i++) {
      const user = (await api.post('/users', { name: `seed ${i}` })).body;
      await api.post('/posts', { user_id: user.id, content: `seed post ${i}` });
    }
  });
  afterAll(async () => {
    await service?.stop();
    await removeDatabase?.();
  });

  it.skipIf(backendUnavailable(backend))(
    `${REQUESTS_PER_DATABASE} generated requests: no 5xx, every error a {"detail"} body, the process healthy afterwards`,
    { timeout: 300_000 },
    async () => {
      const statuses = new Map<number | string, number>();
      await fc.assert(
        fc.asyncProperty(hostileRequest, async (hostile) => {
          let answer: Answer;
          try {
            answer = await send(service.baseUrl, hostile);
          } catch (error) {
            // A server may answer without reading a large body it has no use for (over the
            // limit: 413; a bad URL; a GET) and close the connection; unread data turns the
            // close into a reset, and the client fails writing or loses the answer. Small
            // bodies are read whole, so there every request must be answered. A crash
            // would still show in the checks after the run.
            const code = (error as { code?: string }).code;
            if ((hostile.body?.length ?? 0) > LARGE_BODY_BYTES && (code === 'EPIPE' || code === 'ECONNRESET')) {
              statuses.set('large body, closed unread', (statuses.get('large body, closed unread') ?? 0) + 1);
              return;
            }
            throw new Error(`no answer (${(error as Error).message}) to ${describeRequest(hostile)}\n${service.output().slice(-2000)}`, { cause: error });
          }
          statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
          if (answer.status >= 500) throw new Error(`${answer.status} ${answer.text} for ${describeRequest(hostile)}`);
          if (answer.status >= 400 && hostile.method !== 'HEAD') {
            let parsed: unknown;
            try {
              parsed = JSON.parse(answer.text);
            } catch {
              throw new Error(`${answer.status} with a body that is not JSON (${answer.text.slice(0, 200)}) for ${describeRequest(hostile)}`);
            }
            if (typeof parsed !== 'object' || parsed === null || !('detail' in parsed)) {
              throw new Error(`${answer.status} without "detail" (${answer.text.slice(0, 200)}) for ${describeRequest(hostile)}`);
            }
          }
        }),
        // No shrinking: each step would resend requests against a server whose state has
        // moved on, and a hang would cost a timeout per step. The failing request is
        // printed whole, with the seed that replays the run.
        { numRuns: REQUESTS_PER_DATABASE, endOnFailure: true },
      );
      console.log(
        `${backend}: ${REQUESTS_PER_DATABASE} hostile requests, statuses ${JSON.stringify(Object.fromEntries([...statuses].sort(([a], [b]) => String(a).localeCompare(String(b)))))}`,
      );

      expect(service.exit()).toBeUndefined();
      const api = client(service.baseUrl);
      expect((await api.get('/health')).status).toBe(200);
      expect((await api.get('/ready')).status).toBe(200);
      const created = await api.post('/users', { name: 'still works' });
      expect(created.status).toBe(200);
      expect((await api.get(`/user/${created.body.id}`)).body).toEqual(created.body);
      // No request was logged as an unhandled error (level 50 and above).
      const errors = service.logLines().filter((line) => Number(line.level) >= 50);
      expect(errors).toEqual([]);
    },
  );
});
