import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from './support/helm.js';
import { skipLoudly } from './support/skip.js';

// One Node: the version the container image runs is the one the tests, the benchmarks
// and CI run, and every place that names it agrees. .nvmrc is where it is written down;
// .ci/run puts that version first on PATH (tools/node-from-npm.sh).

const read = (path: string) => readFileSync(join(REPO_ROOT, path), 'utf8');
const nvmrc = read('.nvmrc').trim();
const major = nvmrc.split('.')[0]!;
const manifest = (path: string) => JSON.parse(read(path)) as { workspaces?: string[]; engines?: { node?: string }; devDependencies?: Record<string, string> };
// The root and every package of the workspace.
const packages = ['package.json', ...(manifest('package.json').workspaces ?? []).map((folder) => `${folder}/package.json`)];

describe('one Node version', () => {
  it('.nvmrc names the version of the Dockerfile’s default base image', () => {
    expect(nvmrc).toMatch(/^\d+\.\d+\.\d+$/);
    const image = /^ARG NODE_IMAGE=node:(\S+?)-/m.exec(read('wiki-service/Dockerfile'))?.[1];
    expect(image).toBe(nvmrc);
  });

  it.each(packages)('%s: engines asks for that major or newer', (path) => {
    expect(manifest(path).engines?.node).toBe(`>=${major}`);
  });

  it.each(packages.slice(1))('%s: @types/node is that major', (path) => {
    expect(manifest(path).devDependencies?.['@types/node']).toMatch(new RegExp(`^\\^${major}\\.`));
  });

  it('README names that major', () => {
    expect(read('README.md')).toContain(`You need Node.js ${major}`);
  });

  const other = process.version === `v${nvmrc}` ? undefined : `Node ${process.version}, not .nvmrc's ${nvmrc}`;
  it.skipIf(skipLoudly(other, 'the check that the tests run on the image’s Node is'))('the tests run on that very version', () => {
    expect(process.version).toBe(`v${nvmrc}`);
  });
});
