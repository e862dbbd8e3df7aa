import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from './support/helm.js';

// The repository is one npm workspace: one lockfile at the root, and packages that use
// each other by name. These checks keep it so: a relative import into another
// package's folder, or a bare import of something the package does not declare, works
// only by the accident of where npm put a folder, and breaks when that moves.

type Manifest = { name: string; workspaces?: string[]; dependencies?: Record<string, string>; devDependencies?: Record<string, string> };
const manifest = (folder: string) => JSON.parse(readFileSync(join(REPO_ROOT, folder, 'package.json'), 'utf8')) as Manifest;
const WORKSPACES = manifest('.').workspaces ?? [];

/** The TypeScript and JavaScript files of a package, without what npm or a build made. */
function sourceFiles(folder: string): string[] {
  const skip = new Set(['node_modules', 'dist', '.cache', 'data']);
  const files: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (skip.has(entry.name)) continue;
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (/\.(ts|mts|mjs|js)$/.test(entry.name)) files.push(path);
    }
  };
  walk(join(REPO_ROOT, folder));
  return files;
}

/** Every module specifier a file imports: static, dynamic, `export ... from`, and `declare module`. */
function specifiersOf(code: string): string[] {
  const found = code.matchAll(/^\s*(?:import|export)\b[^'"`;]*?\bfrom\s+'([^']+)'|^\s*import\s+'([^']+)'|\bimport\('([^']+)'\)|^declare module '([^']+)'/gm);
  return [...found].map((match) => match[1] ?? match[2] ?? match[3] ?? match[4]!);
}

/** The package a bare specifier names: `ajv/dist/2019.js` is `ajv`, `@wiki/test-support/http` is `@wiki/test-support`. */
const packageOf = (specifier: string) =>
  specifier
    .split('/')
    .slice(0, specifier.startsWith('@') ? 2 : 1)
    .join('/');

/** What is wrong with one file's imports, as seen from the package folder it sits in. */
function importProblems(file: string, code: string, packageFolder: string, declared: Set<string>): string[] {
  const problems: string[] = [];
  for (const specifier of specifiersOf(code)) {
    if (specifier.startsWith('.')) {
      const target = resolve(dirname(file), specifier);
      if (relative(packageFolder, target).startsWith('..')) problems.push(`${specifier}: a relative import out of its package`);
    } else if (!specifier.startsWith('node:') && !builtinModules.includes(specifier) && !declared.has(packageOf(specifier))) {
      problems.push(`${specifier}: ${packageOf(specifier)} is not declared in its package.json`);
    }
  }
  return problems;
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

  it('the check finds a relative import into another package and an undeclared one', () => {
    const folder = join(REPO_ROOT, 'system-tests');
    const file = join(folder, 'example.test.ts');
    const code = ["import { loadConfig } from '../wiki-service/src/config.js';", "import pg from 'pg';", "import { x } from './support/helm.js';"].join('\n');
    expect(importProblems(file, code, folder, new Set(['vitest']))).toEqual([
      '../wiki-service/src/config.js: a relative import out of its package',
      'pg: pg is not declared in its package.json',
    ]);
  });

  it.each(WORKSPACES)('%s imports other packages by name only, each one declared in its package.json', (folder) => {
    const { name, dependencies, devDependencies } = manifest(folder);
    const declared = new Set([name, ...Object.keys(dependencies ?? {}), ...Object.keys(devDependencies ?? {})]);
    const packageFolder = join(REPO_ROOT, folder);
    const files = sourceFiles(folder);
    expect(files.length).toBeGreaterThan(2);
    const problems = files.flatMap((file) =>
      importProblems(file, readFileSync(file, 'utf8'), packageFolder, declared).map((problem) => `${relative(REPO_ROOT, file)}: ${problem}`),
    );
    expect(problems).toEqual([]);
  });
});
