import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from './support/helm.js';

// The repository is one npm workspace: one lockfile at the root, and packages that use
// each other by name and without a circle. That imports stay so is ESLint's job
// (eslint.config.mjs: import-x's no-relative-packages and no-extraneous-dependencies,
// run by `npm run lint`); the last tests here show that the rules, as configured, find
// what they are there for.

type Manifest = { name: string; workspaces?: string[]; dependencies?: Record<string, string>; devDependencies?: Record<string, string> };
const manifest = (folder: string) => JSON.parse(readFileSync(join(REPO_ROOT, folder, 'package.json'), 'utf8')) as Manifest;
const WORKSPACES = manifest('.').workspaces ?? [];

/**
 * The import rules' findings for `code`, linted in place of the file at `path` (relative
 * to the repository; an existing file, which the type-checked rules need to find in a
 * tsconfig.json).
 */
async function importFindings(path: string, code: string): Promise<string[]> {
  const eslint = new ESLint({ cwd: REPO_ROOT });
  const [result] = await eslint.lintText(code, { filePath: join(REPO_ROOT, path) });
  return result!.messages.filter((message) => message.ruleId?.startsWith('import-x/')).map((message) => `${message.ruleId}: ${message.message}`);
}

describe('one npm workspace', () => {
  it('lists the three packages, and the only lockfile is the root’s', () => {
    expect(WORKSPACES).toEqual(['test-support', 'wiki-service', 'system-tests']);
    expect(existsSync(join(REPO_ROOT, 'package-lock.json'))).toBe(true);
    for (const folder of WORKSPACES) expect(existsSync(join(REPO_ROOT, folder, 'package-lock.json')), folder).toBe(false);
  });

  it('the packages depend on one another without a circle (test-support on none of them)', () => {
    const names = new Map(WORKSPACES.map((folder) => [manifest(folder).name, folder]));
    const dependsOn = (name: string) => {
      const { dependencies, devDependencies } = manifest(names.get(name)!);
      return Object.keys({ ...dependencies, ...devDependencies }).filter((dependency) => names.has(dependency));
    };
    const circles: string[] = [];
    const walk = (name: string, path: string[]) => {
      if (path.includes(name)) return circles.push([...path.slice(path.indexOf(name)), name].join(' -> '));
      for (const dependency of dependsOn(name)) walk(dependency, [...path, name]);
    };
    for (const name of names.keys()) walk(name, []);
    expect(circles).toEqual([]);
    expect(dependsOn('@wiki/test-support')).toEqual([]);
  });

  it('lint finds a relative import into another package, and an undeclared one', async () => {
    const code = [
      "import { loadConfig } from '../wiki-service/src/config.js';",
      "import Fastify from 'fastify';",
      "import { REPO_ROOT } from './support/helm.js';",
      'export { loadConfig, Fastify, REPO_ROOT };',
    ].join('\n');
    const findings = await importFindings('system-tests/load.test.ts', code);
    expect(findings, findings.join('\n')).toHaveLength(2);
    expect(findings[0]).toMatch(/^import-x\/no-relative-packages: Relative import from another package is not allowed/);
    expect(findings[1]).toMatch(/^import-x\/no-extraneous-dependencies: 'fastify' should be listed in the project's dependencies/);
  });

  it("lint finds a devDependency imported by the service's own code, which the image does not install", async () => {
    const code = "import { describe } from 'vitest';\nimport Fastify from 'fastify';\nexport { describe, Fastify };";
    expect(await importFindings('wiki-service/src/app.ts', code)).toEqual([
      "import-x/no-extraneous-dependencies: 'vitest' should be listed in the project's dependencies, not devDependencies.",
    ]);
    expect(await importFindings('wiki-service/test/config.test.ts', code)).toEqual([]);
  });
});
