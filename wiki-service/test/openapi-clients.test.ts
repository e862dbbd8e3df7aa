import { readFileSync } from 'node:fs';
import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tryCommand } from '@wiki/test-support/run-command';
import { startTestApp, type TestApp } from './support/app.js';
import { BACKENDS, backendUnavailable } from './support/backends.js';

// /openapi.json is what client generators read. Here it is read as they read it:
// Redocly's and Spectral's linters with their recommended rules (each exception is
// justified in openapi-lint/), and a typed client generated from it with
// openapi-typescript, whose flows (typed-client/flows.ts) must compile against those
// types and then run against the service.

const LINT_DIR = join(import.meta.dirname, '..', 'openapi-lint');
const TYPED_CLIENT_DIR = join(import.meta.dirname, 'typed-client');
const require = createRequire(import.meta.url);

/** The path of an npm package's command-line program, as its package.json names it. */
function programOf(packageName: string, command: string): string {
  const manifestPath = require.resolve(`${packageName}/package.json`);
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as { bin: Record<string, string> };
  return join(dirname(manifestPath), manifest.bin[command]!);
}

const REDOCLY = programOf('@redocly/cli', 'redocly');
const SPECTRAL = programOf('@stoplight/spectral-cli', 'spectral');
const TSC = programOf('typescript', 'tsc');
const OPENAPI_TYPESCRIPT = programOf('openapi-typescript', 'openapi-typescript');

/** Both linters on `document`, laid out as the exceptions name it (openapi.json beside the configurations). */
async function lint(document: unknown): Promise<{ redocly: { ok: boolean; output: string }; spectral: { ok: boolean; output: string } }> {
  const dir = await mkdtemp(join(tmpdir(), 'wiki-openapi-lint-'));
  try {
    await writeFile(join(dir, 'openapi.json'), JSON.stringify(document, null, 2));
    for (const file of ['redocly.yaml', '.redocly.lint-ignore.yaml', 'spectral.yaml']) await copyFile(join(LINT_DIR, file), join(dir, file));
    const redocly = await tryCommand(process.execPath, [REDOCLY, 'lint', 'openapi.json', '--config', 'redocly.yaml'], {
      cwd: dir,
      env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' },
    });
    const spectral = await tryCommand(process.execPath, [SPECTRAL, 'lint', 'openapi.json', '--ruleset', 'spectral.yaml', '--fail-severity', 'warn'], {
      cwd: dir,
    });
    return { redocly, spectral };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

describe('/openapi.json as client generators read it', () => {
  let service: TestApp;
  let document: any;
  beforeAll(async () => {
    service = await startTestApp('pglite');
    document = (await service.get('/openapi.json')).body;
  });
  afterAll(async () => {
    await service?.close();
  });

  it('every operation has its own stable operationId', () => {
    const operations = Object.entries(document.paths as Record<string, Record<string, { operationId?: string }>>).flatMap(([path, methods]) =>
      Object.entries(methods).map(([method, operation]) => [`${method.toUpperCase()} ${path}`, operation.operationId]),
    );
    // Renaming one renames a method in every generated client: these are the contract.
    expect(Object.fromEntries(operations)).toEqual({
      'GET /health': 'checkHealth',
      'GET /ready': 'checkReady',
      'GET /': 'getIndex',
      'POST /users': 'createUser',
      'GET /users': 'listUsers',
      'GET /user/{id}': 'getUser',
      'GET /users/{id}': 'getUserAtUsersPath',
      'PATCH /users/{id}': 'renameUser',
      'DELETE /users/{id}': 'deleteUser',
      'GET /users/{id}/posts': 'listUserPosts',
      'POST /posts': 'createPost',
      'GET /posts': 'listPosts',
      'GET /posts/{id}': 'getPost',
      'PATCH /posts/{id}': 'editPost',
      'DELETE /posts/{id}': 'deletePost',
    });
  });

  it("passes Redocly's recommended-strict rules and Spectral's spectral:oas, with only the exceptions openapi-lint/ justifies", async () => {
    const { redocly, spectral } = await lint(document);
    expect(redocly.ok, redocly.output).toBe(true);
    expect(redocly.output).toMatch(/3 problems are explicitly ignored/);
    expect(spectral.ok, spectral.output).toBe(true);
  });

  it('the linters fail a document without operationIds, servers or security', async () => {
    const worse = structuredClone(document);
    delete worse.servers;
    delete worse.security;
    delete worse.paths['/users'].post.operationId;
    const { redocly, spectral } = await lint(worse);
    expect(redocly.ok).toBe(false);
    for (const rule of ['operation-operationId', 'no-empty-servers', 'security-defined']) expect(redocly.output).toContain(rule);
    expect(spectral.ok).toBe(false);
    for (const rule of ['operation-operationId', 'oas3-api-servers']) expect(spectral.output).toContain(rule);
  });

  it('a client generated from it (openapi-typescript, the command docs/API.md gives) types the main flows, and refuses calls the document does not describe', async () => {
    const generatedTypes = join(TYPED_CLIENT_DIR, 'wiki-api.d.ts');
    const typeCheck = () => tryCommand(process.execPath, [TSC, '-p', join(TYPED_CLIENT_DIR, 'tsconfig.json')]);
    const generated = await tryCommand(process.execPath, [OPENAPI_TYPESCRIPT, `${service.baseUrl}/openapi.json`, '-o', generatedTypes]);
    expect(generated.ok, generated.output).toBe(true);
    const compiled = await typeCheck();
    expect(compiled.output).toBe('');
    expect(compiled.ok).toBe(true);

    // The check can fail: the same flows against a document whose users have no `id`.
    const dir = await mkdtemp(join(tmpdir(), 'wiki-openapi-'));
    try {
      const withoutId = structuredClone(document);
      delete withoutId.paths['/users'].post.responses['200'].content['application/json'].schema.properties.id;
      await writeFile(join(dir, 'openapi.json'), JSON.stringify(withoutId));
      expect((await tryCommand(process.execPath, [OPENAPI_TYPESCRIPT, join(dir, 'openapi.json'), '-o', generatedTypes])).ok).toBe(true);
      const refused = await typeCheck();
      expect(refused.ok).toBe(false);
      expect(refused.output).toMatch(/flows\.ts.*Property 'id' does not exist/);
    } finally {
      await rm(dir, { recursive: true, force: true });
      await tryCommand(process.execPath, [OPENAPI_TYPESCRIPT, `${service.baseUrl}/openapi.json`, '-o', generatedTypes]);
    }
  });
});

// The flows' module, loaded by its path so that the package's own type check does not
// follow it to types that exist only once the test above has generated them.
const FLOWS_MODULE = pathToFileURL(join(TYPED_CLIENT_DIR, 'flows.ts')).href;

for (const backend of BACKENDS)
  describe.skipIf(backendUnavailable(backend))(`the main flows through the generated client, on ${backend}`, () => {
    let service: TestApp;
    let flows: any;
    let client: any;
    beforeAll(async () => {
      service = await startTestApp(backend);
      flows = await import(FLOWS_MODULE);
      client = flows.wikiClient(service.baseUrl);
    });
    afterAll(async () => {
      await service?.close();
    });

    it('creates, reads at both paths and renames a user', async () => {
      const { created, atOriginalPath, atUsersPath, renamed } = await flows.userLifecycle(client, 'Ada');
      expect(created).toMatchObject({ id: expect.any(Number), name: 'Ada', created_time: expect.any(String) });
      expect(atOriginalPath).toEqual(created);
      expect(atUsersPath).toEqual(created);
      expect(renamed).toEqual({ ...created, name: 'Ada (renamed)' });
    });

    it("creates and edits posts, pages through a user's posts, and deletes", async () => {
      const { created: user } = await flows.userLifecycle(client, 'Grace');
      const { posts, edited, read } = await flows.postLifecycle(client, user.id, 5);
      expect(posts.map((post: { user_id: number }) => post.user_id)).toEqual([user.id, user.id, user.id, user.id, user.id]);
      expect(edited).toEqual({ ...posts[0], content: 'edited' });
      expect(read).toEqual(edited);
      const ids = posts.map((post: { post_id: number }) => post.post_id);
      expect(await flows.pageThroughPosts(client, user.id, 2)).toEqual([ids.slice(0, 2), ids.slice(2, 4), ids.slice(4)]);
      expect(await flows.postsOfUser(client, user.id)).toEqual(ids);
      expect(await flows.deletions(client, user.id, ids[0])).toEqual({ deletedPost: 204, deletedUser: 204, postAfter: 404, notFound: 'User not found' });
      expect(await flows.postsOfUser(client, user.id)).toEqual([]);
    });

    it('gets the documented errors, typed', async () => {
      const errors = await flows.documentedErrors(client);
      expect(errors.missingUser).toEqual({ status: 404, detail: 'User not found' });
      expect(errors.postOfMissingUser).toEqual({ status: 404, detail: 'User not found' });
      expect(errors.emptyName.status).toBe(422);
      expect(errors.emptyName.problems).toEqual([expect.objectContaining({ loc: ['body', 'name'], type: expect.any(String), msg: expect.any(String) })]);
    });
  });
