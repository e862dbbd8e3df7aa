import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from './support/helm.js';

// `npm start` (README's quick start) installs and compiles only what changed: a second
// start on an unchanged checkout goes straight to the server.

const SERVICE_DIR = join(REPO_ROOT, 'wiki-service');
const INSTALL_IF_CHANGED = join(REPO_ROOT, 'tools', 'install-if-changed.mjs');
const scratch = mkdtempSync(join(tmpdir(), 'wiki-quick-start-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const node = (script: string, args: string[], cwd: string) => execFileSync(process.execPath, [script, ...args], { cwd, encoding: 'utf8', stdio: 'pipe' });

describe('a second npm start', () => {
  it('does not reinstall wiki-service when its dependencies were installed from the current lockfile', () => {
    // The test suite installed wiki-service before it ran.
    expect(node(INSTALL_IF_CHANGED, ['wiki-service'], REPO_ROOT)).toBe('');
  });

  it('installs (npm ci) when package.json or the lockfile changed since the last install', () => {
    const folder = join(scratch, 'package');
    mkdirSync(folder);
    writeFileSync(join(folder, 'package.json'), JSON.stringify({ name: 'empty', version: '1.0.0', private: true }));
    writeFileSync(
      join(folder, 'package-lock.json'),
      JSON.stringify({ name: 'empty', version: '1.0.0', lockfileVersion: 3, requires: true, packages: { '': { name: 'empty', version: '1.0.0' } } }),
    );
    expect(node(INSTALL_IF_CHANGED, ['package'], scratch)).toContain('package: installing dependencies (npm ci)');
  });

  it('compiles only when a source, the lockfile or a tsconfig is newer than the last build', () => {
    const copy = join(scratch, 'wiki-service');
    for (const entry of ['src', 'scripts', 'package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json']) {
      cpSync(join(SERVICE_DIR, entry), join(copy, entry), { recursive: true });
    }
    symlinkSync(join(SERVICE_DIR, 'node_modules'), join(copy, 'node_modules'));
    const built = join(copy, 'dist', 'server.js');
    // The copy's own script, run from elsewhere: it works on the package it sits in.
    const buildIfChanged = join(copy, 'scripts', 'build-if-changed.mjs');

    expect(node(buildIfChanged, [], scratch)).toContain('compiling');
    const firstBuild = statSync(built).mtimeMs;
    expect(node(buildIfChanged, [], scratch), 'nothing changed: no compile').toBe('');
    expect(statSync(built).mtimeMs).toBe(firstBuild);

    const later = new Date(firstBuild + 60_000);
    utimesSync(join(copy, 'src', 'routes', 'users.ts'), later, later);
    expect(node(buildIfChanged, [], scratch), 'a source changed: compile').toContain('compiling');
    expect(statSync(built).mtimeMs).toBeGreaterThan(firstBuild);
  }, 120_000);
});
