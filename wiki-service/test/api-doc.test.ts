import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './support/app.js';

// docs/API.md is the API's reference. Its "### METHOD /path" headings must name
// exactly the routes the service registers: a new route without a section, or a
// section for a route that is gone, fails here.

const API_DOC = join(import.meta.dirname, '..', '..', 'docs', 'API.md');

/** "GET /user/{id}" for every route in Fastify's route tree, HEAD and Swagger UI's assets left out. */
export function registeredRoutes(tree: string): string[] {
  const routes: string[] = [];
  const pathAtDepth: string[] = [];
  for (const line of tree.split('\n')) {
    const match = /^([\s│]*)(?:[└├]── )?(\S+) \(([A-Z, ]+)\)$/.exec(line);
    if (match === null) continue;
    const depth = match[1]!.length / 4;
    const segment = match[2]!;
    const parent = depth === 0 ? '' : pathAtDepth[depth - 1]!;
    const path = depth === 0 ? segment : parent === '/' ? `/${segment}` : `${parent}${segment}`;
    pathAtDepth[depth] = path;
    for (const method of match[3]!.split(', ')) {
      if (method === 'HEAD' || path.startsWith('/docs/static/') || path === '/docs*' || path === '/docs/*') continue;
      routes.push(`${method} ${path.replace(/:(\w+)/g, '{$1}')}`);
    }
  }
  return routes.sort();
}

/** Every "METHOD /path" in the document's "### " headings. */
export function documentedRoutes(markdown: string): string[] {
  return [...markdown.matchAll(/^### (.+)$/gm)]
    .flatMap((heading) => [...heading[1]!.matchAll(/\b(GET|POST|PATCH|PUT|DELETE) (\/\S*?)(?=,|$|\s)/g)].map((route) => `${route[1]} ${route[2]}`))
    .sort();
}

describe('docs/API.md', () => {
  let service: TestApp;
  beforeAll(async () => {
    service = await startTestApp('pglite');
  });
  afterAll(async () => {
    await service?.close();
  });

  it('documents every route the service registers, and no route it does not', () => {
    const registered = registeredRoutes(service.app.printRoutes({ commonPrefix: false }));
    expect(registered.length).toBeGreaterThan(15);
    expect(documentedRoutes(readFileSync(API_DOC, 'utf8'))).toEqual(registered);
  });

  it('the comparison can fail: a route missing from a document is found', () => {
    const registered = registeredRoutes(service.app.printRoutes({ commonPrefix: false }));
    const shorter = readFileSync(API_DOC, 'utf8').replace('### DELETE /posts/{id}', '### Deleting posts');
    expect(documentedRoutes(shorter)).not.toEqual(registered);
    expect(registered).toContain('DELETE /posts/{id}');
  });

  it('is where the OpenAPI description (and so /docs) points', async () => {
    const document = (await service.get('/openapi.json')).body as { info: { description: string } };
    expect(document.info.description).toContain('docs/API.md');
  });
});
