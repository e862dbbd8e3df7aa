import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './support/app.js';
import { BACKENDS, backendUnavailable, type Backend } from './support/backends.js';
import { metricValue, rawExchange, request } from '@wiki/test-support/http';

// The HTTP contract (docs/API.md, the wire-compatible original's endpoints and this
// service's), row by row, on both databases, and through PgBouncer in transaction
// mode with the service's named prepared statements (DB_PREPARED_STATEMENTS, on by
// default), which PgBouncer carries from one server connection to the next
// (max_prepared_statements; pgbouncer.test.ts shows what breaks without it).
const CONTRACT_BACKENDS: Backend[] = [...BACKENDS, 'pgbouncer'];

const ISO_WITH_OFFSET = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?(Z|[+-]\d\d:\d\d)$/;

for (const backend of CONTRACT_BACKENDS)
  describe.skipIf(backendUnavailable(backend))(`HTTP contract on ${backend}`, () => {
    let api: TestApp;

    beforeAll(async () => {
      api = await startTestApp(backend);
    });
    afterAll(async () => {
      await api?.close();
    });

    async function createUser(name = 'alice') {
      const response = await api.post('/users', { name });
      expect(response.status).toBe(200);
      return response.body as { id: number; name: string; created_time: string };
    }

    async function metric(name: string): Promise<number | undefined> {
      return metricValue((await api.get('/metrics')).text, name);
    }

    describe('original endpoints', () => {
      it('POST /users answers 200 with id, name and created_time', async () => {
        const response = await api.post('/users', { name: 'alice' });
        expect(response.status).toBe(200);
        expect(Object.keys(response.body).sort()).toEqual(['created_time', 'id', 'name']);
        expect(response.body.name).toBe('alice');
        expect(Number.isInteger(response.body.id)).toBe(true);
        expect(response.body.created_time).toMatch(ISO_WITH_OFFSET);
        // Within a minute of now: the database set it, in UTC.
        expect(Math.abs(Date.parse(response.body.created_time) - Date.now())).toBeLessThan(60_000);
      });

      it('GET /user/{id} returns the same user, created_time unchanged', async () => {
        const user = await createUser('bob');
        const response = await api.get(`/user/${user.id}`);
        expect(response.status).toBe(200);
        expect(response.body).toEqual(user);
      });

      it('GET /user/{id} of an unknown user is 404 {"detail":"User not found"}', async () => {
        const response = await api.get('/user/2147483647');
        expect(response.status).toBe(404);
        expect(response.body).toEqual({ detail: 'User not found' });
      });

      it('POST /posts answers 200 with post_id, content, user_id, created_time', async () => {
        const user = await createUser();
        const response = await api.post('/posts', { user_id: user.id, content: 'hello' });
        expect(response.status).toBe(200);
        expect(Object.keys(response.body).sort()).toEqual(['content', 'created_time', 'post_id', 'user_id']);
        expect(response.body).toMatchObject({ content: 'hello', user_id: user.id });
        expect(response.body.created_time).toMatch(ISO_WITH_OFFSET);
        const read = await api.get(`/posts/${response.body.post_id}`);
        expect(read.status).toBe(200);
        expect(read.body).toEqual(response.body);
      });

      it('POST /posts for an unknown user is 404 {"detail":"User not found"} and is not counted', async () => {
        const before = await metric('posts_created_total');
        const response = await api.post('/posts', { user_id: 2147483647, content: 'orphan' });
        expect(response.status).toBe(404);
        expect(response.body).toEqual({ detail: 'User not found' });
        expect(await metric('posts_created_total')).toBe(before);
      });

      it('GET /posts/{id} of an unknown post is 404 {"detail":"Post not found"}', async () => {
        const response = await api.get('/posts/2147483647');
        expect(response.status).toBe(404);
        expect(response.body).toEqual({ detail: 'Post not found' });
      });

      it('GET / describes the API', async () => {
        const response = await api.get('/');
        expect(response.status).toBe(200);
        expect(response.body.message).toBe('User and Post API');
        expect(typeof response.body.endpoints).toBe('object');
      });

      it('GET /metrics has the counters with their HELP texts, HTTP and process metrics', async () => {
        await createUser();
        await api.get('/user/1');
        const response = await api.get('/metrics');
        expect(response.status).toBe(200);
        expect(response.headers.get('content-type')).toMatch(/^text\/plain/);
        expect(response.text).toContain('# HELP users_created_total Total number of users created');
        expect(response.text).toContain('# TYPE users_created_total counter');
        expect(response.text).toContain('# HELP posts_created_total Total number of posts created');
        expect(response.text).toContain('# TYPE posts_created_total counter');
        expect(response.text).toMatch(/^http_requests_total\{method="GET",route="\/user\/:id",status_code="200"\} \d+$/m);
        expect(response.text).toContain('http_request_duration_seconds_bucket{');
        expect(response.text).toContain('process_resident_memory_bytes');
        expect(response.text).toContain('nodejs_eventloop_lag_seconds');
        // Route templates only: a raw id never becomes a label value.
        expect(response.text).not.toMatch(/route="\/user\/1"/);
      });

      it("GET /metrics has every route's 500 and 503 series before any error, so a first error shows in rate()", async () => {
        const response = await api.get('/metrics');
        const errorSeries = (status: string) =>
          [...response.text.matchAll(new RegExp(`^http_requests_total\\{method="(\\w+)",route="([^"]+)",status_code="${status}"\\} (\\d+)$`, 'gm'))].map(
            ([, method, route]) => `${method} ${route}`,
          );
        const routes = [
          'GET /',
          'POST /users',
          'GET /users',
          'GET /user/:id',
          'GET /users/:id',
          'GET /users/:id/posts',
          'PATCH /users/:id',
          'DELETE /users/:id',
          'POST /posts',
          'GET /posts',
          'GET /posts/:id',
          'PATCH /posts/:id',
          'DELETE /posts/:id',
        ];
        for (const status of ['500', '503']) {
          expect(errorSeries(status)).toEqual(expect.arrayContaining(routes));
          // Not the probes and scrapes the objective leaves out, nor Fastify's HEAD copies.
          expect(errorSeries(status).filter((series) => /HEAD|\/health|\/ready|\/metrics/.test(series))).toEqual([]);
        }
      });

      it('counters rise by exactly one per committed row', async () => {
        const users = await metric('users_created_total');
        const posts = await metric('posts_created_total');
        const user = await createUser();
        await api.post('/posts', { user_id: user.id, content: 'one' });
        await api.post('/users', { name: '' }); // rejected: not counted
        expect(await metric('users_created_total')).toBe((users ?? 0) + 1);
        expect(await metric('posts_created_total')).toBe((posts ?? 0) + 1);
      });

      it('a trailing slash is accepted on every path', async () => {
        const created = await api.post('/users/', { name: 'slash' });
        expect(created.status).toBe(200);
        expect((await api.get(`/user/${created.body.id}/`)).body).toEqual(created.body);
        expect((await api.get(`/users/${created.body.id}/`)).status).toBe(200);
        const post = await api.post('/posts/', { user_id: created.body.id, content: 'x' });
        expect(post.status).toBe(200);
        expect((await api.get(`/posts/${post.body.post_id}/`)).status).toBe(200);
        expect((await api.get('/metrics/')).status).toBe(200);
        expect((await api.get('/health/')).status).toBe(200);
      });
    });

    describe('validation errors: 422 in FastAPI shape', () => {
      const cases: Array<[string, string, unknown, Array<string | number>, string]> = [
        ['missing name', '/users', {}, ['body', 'name'], 'value_error.missing'],
        ['name of the wrong type', '/users', { name: 42 }, ['body', 'name'], 'type_error.str'],
        ['null name', '/users', { name: null }, ['body', 'name'], 'type_error.str'],
        ['empty name', '/users', { name: '' }, ['body', 'name'], 'value_error.any_str.min_length'],
        ['name over 255 characters', '/users', { name: 'x'.repeat(256) }, ['body', 'name'], 'value_error.any_str.max_length'],
        ['NUL in a name', '/users', { name: 'a\u0000b' }, ['body', 'name'], 'value_error.str.regex'],
        ['unpaired surrogate in a name', '/users', { name: 'a\ud800b' }, ['body', 'name'], 'value_error.str.regex'],
        ['body an array', '/users', [1, 2], ['body'], 'type_error.dict'],
        ['body a string', '/users', 'alice', ['body'], 'type_error.dict'],
        ['missing user_id', '/posts', { content: 'x' }, ['body', 'user_id'], 'value_error.missing'],
        ['missing content', '/posts', { user_id: 1 }, ['body', 'content'], 'value_error.missing'],
        ['user_id as a string', '/posts', { user_id: '1', content: 'x' }, ['body', 'user_id'], 'type_error.integer'],
        ['user_id fractional', '/posts', { user_id: 1.5, content: 'x' }, ['body', 'user_id'], 'type_error.integer'],
        ['user_id zero', '/posts', { user_id: 0, content: 'x' }, ['body', 'user_id'], 'value_error.number.not_ge'],
        ['user_id negative', '/posts', { user_id: -1, content: 'x' }, ['body', 'user_id'], 'value_error.number.not_ge'],
        ['user_id past integer', '/posts', { user_id: 2147483648, content: 'x' }, ['body', 'user_id'], 'value_error.number.not_le'],
        ['user_id huge', '/posts', { user_id: 1e300, content: 'x' }, ['body', 'user_id'], 'value_error.number.not_le'],
        ['content empty', '/posts', { user_id: 1, content: '' }, ['body', 'content'], 'value_error.any_str.min_length'],
        ['content over 100,000', '/posts', { user_id: 1, content: 'x'.repeat(100_001) }, ['body', 'content'], 'value_error.any_str.max_length'],
        ['content an object', '/posts', { user_id: 1, content: { a: 1 } }, ['body', 'content'], 'type_error.str'],
      ];

      it.each(cases)('%s', async (_name, path, body, loc, type) => {
        const response = await api.post(path, body);
        expect(response.status).toBe(422);
        expect(response.body.detail).toEqual(expect.arrayContaining([expect.objectContaining({ loc, type })]));
        for (const issue of response.body.detail) expect(typeof issue.msg).toBe('string');
      });

      it('the exact body for a missing field', async () => {
        const response = await api.post('/users', {});
        expect(response.body).toEqual({ detail: [{ loc: ['body', 'name'], msg: 'field required', type: 'value_error.missing' }] });
      });

      it('every problem is listed, not only the first', async () => {
        const response = await api.post('/posts', {});
        expect(response.body.detail.map((issue: { loc: string[] }) => issue.loc)).toEqual(
          expect.arrayContaining([
            ['body', 'user_id'],
            ['body', 'content'],
          ]),
        );
      });

      it.each([
        ['not JSON at all', 'this is not json'],
        ['truncated JSON', '{"name": "alice"'],
        ['trailing garbage', '{"name": "alice"} x'],
      ])('a body that is %s is 422 with a detail list', async (_name, raw) => {
        const response = await request(api.baseUrl, 'POST', '/users', { raw, headers: { 'content-type': 'application/json' } });
        expect(response.status).toBe(422);
        expect(response.body.detail[0]).toMatchObject({ loc: ['body'], type: 'value_error.jsondecode' });
      });

      it('an empty body is 422 "field required"', async () => {
        const response = await request(api.baseUrl, 'POST', '/users', { raw: '', headers: { 'content-type': 'application/json' } });
        expect(response.status).toBe(422);
        expect(response.body.detail[0]).toMatchObject({ loc: ['body'], type: 'value_error.missing' });
      });

      it('a JSON body sent with another Content-Type (curl -d) is still read as JSON', async () => {
        const response = await request(api.baseUrl, 'POST', '/users', {
          raw: '{"name":"form"}',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
        });
        expect(response.status).toBe(200);
        expect(response.body.name).toBe('form');
      });

      it.each([
        ['abc', 'type_error.integer'],
        ['1.5', 'type_error.integer'],
        ['0', 'value_error.number.not_ge'],
        ['-3', 'value_error.number.not_ge'],
        ['2147483648', 'value_error.number.not_le'],
        ['99999999999999999999999999', 'value_error.number.not_le'],
        ["1'%20OR%20'1'='1", 'type_error.integer'],
      ])('path id %s is 422 at ["path","id"]', async (id, type) => {
        for (const path of [`/user/${id}`, `/users/${id}`, `/posts/${id}`]) {
          const response = await api.get(path);
          expect(response.status, path).toBe(422);
          expect(response.body.detail[0], path).toMatchObject({ loc: ['path', 'id'], type });
        }
      });

      // Numbers that JavaScript would read but the original refused ("0x1" is not an
      // integer to Python), and numbers that parse as ±Infinity: each once reached the
      // database and answered 500 or found user 1.
      const NOT_DECIMAL_INTEGERS = ['Infinity', '-Infinity', '1e309', 'NaN', '0x1', '1e0', '0b1', '0o1', '1.0', '+1', '%201', '1%20', '1_0', ''];
      const idPaths = (id: string) => [`/user/${id}`, `/users/${id}`, `/posts/${id}`, `/users/${id}/posts`];

      it.each(NOT_DECIMAL_INTEGERS.filter((id) => id !== ''))('path id %j is 422 "value is not a valid integer" for every method', async (id) => {
        const attempts: Array<[string, string]> = [
          ...idPaths(id).map((path): [string, string] => ['GET', path]),
          ['HEAD', `/user/${id}`],
          ['PATCH', `/users/${id}`],
          ['PATCH', `/posts/${id}`],
          ['DELETE', `/users/${id}`],
          ['DELETE', `/posts/${id}`],
        ];
        for (const [method, path] of attempts) {
          const body = method === 'PATCH' ? { json: { name: 'x', content: 'x' } } : {};
          const response = await request(api.baseUrl, method, path, body);
          expect(response.status, `${method} ${path}`).toBe(422);
          if (method === 'HEAD') continue;
          expect(response.body, `${method} ${path}`).toEqual({
            detail: [{ loc: ['path', 'id'], msg: 'value is not a valid integer', type: 'type_error.integer' }],
          });
        }
      });

      it.each(['limit', 'cursor', 'user_id'])('query %s that is not a decimal integer is 422 at ["query", name]', async (name) => {
        for (const value of NOT_DECIMAL_INTEGERS) {
          const response = await api.get(`/posts?${name}=${value}`);
          expect(response.status, `${name}=${value}`).toBe(422);
          expect(response.body.detail, `${name}=${value}`).toEqual([{ loc: ['query', name], msg: 'value is not a valid integer', type: 'type_error.integer' }]);
        }
      });

      it('a number of 400 digits is out of range, not Infinity', async () => {
        // Beyond a double's range (over 309 digits) only in the query string: a path
        // parameter over 100 characters is refused earlier, with 414.
        const huge = '1'.repeat(400);
        const long = '1'.repeat(90);
        for (const path of [`/user/${long}`, `/posts/${long}`, `/posts?cursor=${huge}`, `/users?limit=${huge}`, `/posts?user_id=${huge}`]) {
          const response = await api.get(path);
          expect(response.status, path).toBe(422);
          expect(response.body.detail[0].type, path).toBe('value_error.number.not_le');
        }
      });

      it('leading zeros are still a decimal integer (as in the original)', async () => {
        const user = await createUser('zero-padded');
        const response = await api.get(`/user/${String(user.id).padStart(6, '0')}`);
        expect(response.status).toBe(200);
        expect(response.body).toEqual(user);
      });

      it.each([
        ['limit=0', ['query', 'limit']],
        ['limit=101', ['query', 'limit']],
        ['limit=1000000000000', ['query', 'limit']],
        ['limit=ten', ['query', 'limit']],
        ['cursor=-1', ['query', 'cursor']],
        ['cursor=abc', ['query', 'cursor']],
      ])('list query %s is 422', async (query, loc) => {
        for (const path of ['/users', '/posts']) {
          const response = await api.get(`${path}?${query}`);
          expect(response.status, path).toBe(422);
          expect(response.body.detail[0].loc, path).toEqual(loc);
        }
      });

      it('a body over 1 MiB is 413 with a detail message', async () => {
        const response = await api.post('/posts', { user_id: 1, content: 'x'.repeat(1024 * 1024 + 1) });
        expect(response.status).toBe(413);
        expect(typeof response.body.detail).toBe('string');
      });

      it('unknown fields are ignored', async () => {
        const response = await api.post('/users', { name: 'extra', id: 999_999, admin: true });
        expect(response.status).toBe(200);
        expect(response.body.name).toBe('extra');
        expect(response.body.id).not.toBe(999_999);
        expect(response.body).not.toHaveProperty('admin');
      });

      describe('malformed HTTP, URLs and headers: answered in FastAPI shape, never a 500', () => {
        /** A whole HTTP/1.1 request, for raw sockets. */
        const rawPost = (path: string, headerLines: string[], body: string) =>
          `POST ${path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n${headerLines.map((line) => `${line}\r\n`).join('')}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;

        it.each([
          ['empty', 'Content-Type:'],
          ['a list', 'Content-Type: application/json, text/html'],
          ['8,000 characters', `Content-Type: ${'a'.repeat(8000)}`],
          ['not UTF-8', 'Content-Type: \xff\xfe/\xc3('],
          ['a bare parameter', 'Content-Type: ;charset=utf-8'],
        ])('a Content-Type that is %s does not matter: the body is read as JSON like any other', async (_name, header) => {
          const name = `content type ${_name}`;
          const valid = await rawExchange(api.baseUrl, Buffer.from(rawPost('/users', [header], JSON.stringify({ name })), 'latin1'));
          expect(valid.received).toMatch(/^HTTP\/1\.1 200 /);
          expect(valid.received).toContain(`"name":"${name}"`);
          const invalid = await rawExchange(api.baseUrl, Buffer.from(rawPost('/users', [header], '{not json'), 'latin1'));
          expect(invalid.received).toMatch(/^HTTP\/1\.1 422 /);
          expect(invalid.received).toContain('"type":"value_error.jsondecode"');
        });

        it('a URL with broken percent-encoding is 400 {"detail"}, with a request id, and does not echo the URL', async () => {
          const response = await api.get('/user/%E0%A4%A<script>');
          expect(response.status).toBe(400);
          expect(response.body).toEqual({ detail: 'Malformed URL: invalid percent-encoding' });
          expect(response.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
          expect(response.headers.get('x-content-type-options')).toBe('nosniff');
          expect(response.text).not.toContain('script');
        });

        it('a path segment over 100 characters is 414 {"detail"}', async () => {
          const response = await api.get(`/user/${'1'.repeat(101)}`);
          expect(response.status).toBe(414);
          expect(response.body).toEqual({ detail: 'URL path segment too long' });
          expect(response.headers.get('x-request-id')).not.toBeNull();
        });

        it.each([
          ['a malformed request line', 'GARBAGE /\x01 HTTP/1.1\r\n\r\n'],
          ['a request pipelined behind a valid one that is malformed', 'GET /health HTTP/1.1\r\nHost: t\r\n\r\nGET /\x00 HTTP/1.1\r\n\r\n'],
          ['a Content-Length that is not a number', 'POST /users HTTP/1.1\r\nHost: t\r\nContent-Length: abc\r\n\r\n'],
          ['two different Content-Lengths', 'POST /users HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab'],
        ])('%s is 400 {"detail"} with a request id, and the connection is closed', async (_name, bytes) => {
          const { received, closedByServer } = await rawExchange(api.baseUrl, Buffer.from(bytes, 'latin1'));
          expect(closedByServer).toBe(true);
          const lastResponse = received.slice(received.lastIndexOf('HTTP/1.1 '));
          expect(lastResponse).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
          expect(lastResponse).toMatch(/\r\nx-request-id: [0-9a-f-]{36}\r\n/);
          expect(lastResponse).toMatch(/\r\nx-content-type-options: nosniff\r\n/);
          expect(lastResponse.endsWith('\r\n\r\n{"detail":"Malformed HTTP request"}')).toBe(true);
        });

        it('headers over 16 KiB are 431 {"detail"}', async () => {
          const { received } = await rawExchange(api.baseUrl, `GET /health HTTP/1.1\r\nHost: t\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
          expect(received).toMatch(/^HTTP\/1\.1 431 /);
          expect(received).toContain('{"detail":"Request headers too large"}');
        });

        it('every response says X-Content-Type-Options: nosniff, successes and errors alike', async () => {
          for (const response of [await api.get('/'), await api.get('/user/abc'), await api.get('/nowhere'), await api.get('/metrics')]) {
            expect(response.headers.get('x-content-type-options')).toBe('nosniff');
          }
        });

        it('/docs is served with a Content-Security-Policy that allows only this service', async () => {
          for (const path of ['/docs', '/docs/static/index.html', '/docs/static/swagger-initializer.js']) {
            const response = await api.get(path);
            expect(response.status, path).toBeLessThan(400);
            const policy = response.headers.get('content-security-policy');
            expect(policy, path).toContain("default-src 'self'");
            expect(policy, path).toContain("script-src 'self'");
            expect(policy, path).not.toMatch(/https?:|upgrade-insecure-requests|unsafe-eval/);
          }
          const initializer = (await api.get('/docs/static/swagger-initializer.js')).text;
          expect(initializer).toContain('"validatorUrl":null');
        });
      });

      it('an unknown path is 404 {"detail":"Not Found"}', async () => {
        const response = await api.get('/no/such/thing');
        expect(response.status).toBe(404);
        expect(response.body).toEqual({ detail: 'Not Found' });
      });
    });

    describe('text is stored and returned exactly as sent', () => {
      const texts = [
        "Robert'); DROP TABLE users;--",
        '1 OR 1=1; SELECT * FROM pg_shadow',
        '"double" \'single\' `back` \\ backslash',
        '🚀 emoji, 日本語, עברית, Ελληνικά, combining é, zero​width',
        '  leading and trailing spaces  ',
        'line\nbreaks\r\nand\ttabs',
        '%s %d {0} ${x} <script>alert(1)</script>',
      ];

      it.each(texts)('%j', async (text) => {
        const user = await api.post('/users', { name: text });
        expect(user.status).toBe(200);
        expect(user.body.name).toBe(text);
        expect((await api.get(`/user/${user.body.id}`)).body.name).toBe(text);
        const post = await api.post('/posts', { user_id: user.body.id, content: text });
        expect(post.status).toBe(200);
        expect((await api.get(`/posts/${post.body.post_id}`)).body.content).toBe(text);
      });

      it('255 emoji are 255 characters: a valid name', async () => {
        const name = '🚀'.repeat(255);
        const response = await api.post('/users', { name });
        expect(response.status).toBe(200);
        expect(response.body.name).toBe(name);
      });

      it('content of exactly 100,000 characters is accepted', async () => {
        const user = await createUser();
        const content = 'é'.repeat(100_000);
        const response = await api.post('/posts', { user_id: user.id, content });
        expect(response.status).toBe(200);
        expect((await api.get(`/posts/${response.body.post_id}`)).body.content).toBe(content);
      });
    });

    describe('extensions', () => {
      it('GET /users/{id} is the same as GET /user/{id}', async () => {
        const user = await createUser();
        expect((await api.get(`/users/${user.id}`)).body).toEqual((await api.get(`/user/${user.id}`)).body);
        expect((await api.get('/users/2147483647')).body).toEqual({ detail: 'User not found' });
      });

      it('GET /users pages through every user once, in id order', async () => {
        const mine: number[] = [];
        for (let i = 0; i < 7; i++) mine.push((await createUser(`pager-${i}`)).id);
        // The cursor is the last id seen: starting just before this test's first user
        // reads its own rows, whatever other tests created before them.
        const seen: number[] = [];
        let cursor: string | null = String(mine[0]! - 1);
        let pages = 0;
        do {
          const response = await api.get(`/users?limit=3&cursor=${cursor}`);
          expect(response.status).toBe(200);
          expect(response.body.items.length).toBeLessThanOrEqual(3);
          seen.push(...response.body.items.map((user: { id: number }) => user.id));
          cursor = response.body.next_cursor;
          pages++;
        } while (cursor !== null && pages < 100);
        expect(seen).toEqual(mine);
        expect(pages).toBe(3);
      });

      it('limit defaults to 20', async () => {
        for (let i = 0; i < 21; i++) await createUser(`many-${i}`);
        const response = await api.get('/users');
        expect(response.body.items).toHaveLength(20);
        expect(response.body.next_cursor).not.toBeNull();
      });

      it("GET /posts?user_id= and GET /users/{id}/posts list only that user's posts", async () => {
        const author = await createUser('author');
        const other = await createUser('other');
        const mine = [];
        for (let i = 0; i < 3; i++) mine.push((await api.post('/posts', { user_id: author.id, content: `mine ${i}` })).body);
        await api.post('/posts', { user_id: other.id, content: 'not mine' });

        const filtered = await api.get(`/posts?user_id=${author.id}`);
        expect(filtered.status).toBe(200);
        expect(filtered.body).toEqual({ items: mine, next_cursor: null });

        const nested = await api.get(`/users/${author.id}/posts?limit=2`);
        expect(nested.body.items).toEqual(mine.slice(0, 2));
        const rest = await api.get(`/users/${author.id}/posts?limit=2&cursor=${nested.body.next_cursor}`);
        expect(rest.body).toEqual({ items: mine.slice(2), next_cursor: null });

        expect((await api.get('/users/2147483647/posts')).body).toEqual({ detail: 'User not found' });
        expect((await api.get('/posts?user_id=2147483647')).body).toEqual({ items: [], next_cursor: null });
      });

      it('PATCH /users/{id} renames; created_time never changes', async () => {
        const user = await createUser('before');
        const response = await api.patch(`/users/${user.id}`, { name: 'after' });
        expect(response.status).toBe(200);
        expect(response.body).toEqual({ ...user, name: 'after' });
        expect((await api.get(`/user/${user.id}`)).body.name).toBe('after');
        expect((await api.patch('/users/2147483647', { name: 'x' })).status).toBe(404);
        expect((await api.patch(`/users/${user.id}`, { name: '' })).status).toBe(422);
        expect((await api.patch(`/users/${user.id}`, {})).status).toBe(422);
      });

      it('PATCH /posts/{id} edits content', async () => {
        const user = await createUser();
        const post = (await api.post('/posts', { user_id: user.id, content: 'draft' })).body;
        const response = await api.patch(`/posts/${post.post_id}`, { content: 'final' });
        expect(response.status).toBe(200);
        expect(response.body).toEqual({ ...post, content: 'final' });
        expect((await api.patch('/posts/2147483647', { content: 'x' })).body).toEqual({ detail: 'Post not found' });
      });

      it('DELETE /posts/{id} answers 204, then the post is gone', async () => {
        const user = await createUser();
        const post = (await api.post('/posts', { user_id: user.id, content: 'bye' })).body;
        const response = await api.delete(`/posts/${post.post_id}`);
        expect(response.status).toBe(204);
        expect(response.text).toBe('');
        expect((await api.get(`/posts/${post.post_id}`)).status).toBe(404);
        expect((await api.delete(`/posts/${post.post_id}`)).body).toEqual({ detail: 'Post not found' });
      });

      it('DELETE /users/{id} deletes the user and all of their posts', async () => {
        const user = await createUser('leaving');
        const keeper = await createUser('staying');
        const posts = [];
        for (let i = 0; i < 3; i++) posts.push((await api.post('/posts', { user_id: user.id, content: `p${i}` })).body);
        const kept = (await api.post('/posts', { user_id: keeper.id, content: 'kept' })).body;

        expect((await api.delete(`/users/${user.id}`)).status).toBe(204);
        expect((await api.get(`/user/${user.id}`)).status).toBe(404);
        for (const post of posts) expect((await api.get(`/posts/${post.post_id}`)).status).toBe(404);
        expect((await api.get(`/posts/${kept.post_id}`)).body).toEqual(kept);
        expect((await api.delete(`/users/${user.id}`)).body).toEqual({ detail: 'User not found' });
        // A deleted user cannot receive new posts.
        expect((await api.post('/posts', { user_id: user.id, content: 'late' })).status).toBe(404);
      });

      it('GET /health is liveness: {"status":"healthy","timestamp":...}', async () => {
        const response = await api.get('/health');
        expect(response.status).toBe(200);
        expect(response.body.status).toBe('healthy');
        expect(Date.parse(response.body.timestamp)).not.toBeNaN();
      });

      it('GET /ready is 200 while the database answers', async () => {
        const response = await api.get('/ready');
        expect(response.status).toBe(200);
        expect(response.body).toEqual({ status: 'ready' });
      });

      it('GET /openapi.json is an OpenAPI 3 document listing every route', async () => {
        const response = await api.get('/openapi.json');
        expect(response.status).toBe(200);
        expect(response.body.openapi).toMatch(/^3\./);
        const paths = Object.keys(response.body.paths);
        for (const path of ['/users', '/user/{id}', '/users/{id}', '/users/{id}/posts', '/posts', '/posts/{id}', '/health', '/ready']) {
          expect(paths).toContain(path);
        }
        expect(Object.keys(response.body.paths['/users/{id}'])).toEqual(expect.arrayContaining(['get', 'patch', 'delete']));
      });

      it('GET /docs serves the interactive page', async () => {
        const response = await api.get('/docs/');
        expect(response.status).toBe(200);
        expect(response.text.toLowerCase()).toContain('swagger');
      });

      it("every response carries a request id, and a caller's id is kept", async () => {
        expect((await api.get('/health')).headers.get('x-request-id')).toMatch(/\S+/);
        const response = await api.get('/health', { headers: { 'x-request-id': 'trace-123' } });
        expect(response.headers.get('x-request-id')).toBe('trace-123');
      });
    });
  });
