import { execFileSync, spawnSync } from 'node:child_process';
import { appendFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
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
  it('does not reinstall when the dependencies were installed from the current lockfile', () => {
    // The test command installed the workspace before the tests ran.
    expect(node(INSTALL_IF_CHANGED, [], REPO_ROOT)).toBe('');
  });

  it('installs (npm ci) when a package.json or the lockfile changed since the last install', () => {
    // A workspace of its own, with one empty package, and a copy of the script in its tools/.
    const root = join(scratch, 'workspace');
    mkdirSync(join(root, 'tools'), { recursive: true });
    mkdirSync(join(root, 'package'));
    cpSync(INSTALL_IF_CHANGED, join(root, 'tools', 'install-if-changed.mjs'));
    const empty = { name: 'empty', version: '1.0.0', private: true };
    writeFileSync(join(root, 'package.json'), JSON.stringify({ name: 'root', version: '1.0.0', private: true, workspaces: ['package'] }));
    writeFileSync(join(root, 'package', 'package.json'), JSON.stringify(empty));
    writeFileSync(
      join(root, 'package-lock.json'),
      JSON.stringify({
        name: 'root',
        version: '1.0.0',
        lockfileVersion: 3,
        requires: true,
        packages: {
          '': { name: 'root', version: '1.0.0', workspaces: ['package'] },
          'node_modules/empty': { resolved: 'package', link: true },
          package: { name: 'empty', version: '1.0.0' },
        },
      }),
    );
    const script = join(root, 'tools', 'install-if-changed.mjs');
    expect(node(script, [], scratch)).toContain('installing dependencies (npm ci)');
    expect(node(script, [], scratch), 'installed: nothing to do').toBe('');
    const later = new Date(Date.now() + 60_000);
    utimesSync(join(root, 'package', 'package.json'), later, later);
    expect(node(script, [], scratch), "a workspace's package.json changed").toContain('installing dependencies (npm ci)');
  });

  it('compiles (npm run build: tsc -b) only when a source was added, changed or deleted', () => {
    // A copy of the service in a workspace of its own, with the installed dependencies
    // at its root, as in the repository.
    const root = join(scratch, 'build');
    const copy = join(root, 'wiki-service');
    for (const entry of ['src', 'package.json', 'tsconfig.json', 'tsconfig.build.json']) {
      cpSync(join(SERVICE_DIR, entry), join(copy, entry), { recursive: true });
    }
    symlinkSync(join(REPO_ROOT, 'node_modules'), join(root, 'node_modules'));
    const built = join(copy, 'dist', 'server.js');
    const usersBuilt = join(copy, 'dist', 'routes', 'users.js');
    const build = () => spawnSync('npm', ['run', 'build'], { cwd: copy, encoding: 'utf8' });

    expect(build().status).toBe(0);
    const firstBuild = statSync(built).mtimeMs;
    expect(build().status).toBe(0);
    expect(statSync(built).mtimeMs, 'nothing changed: nothing written').toBe(firstBuild);

    const users = join(copy, 'src', 'routes', 'users.ts');
    appendFileSync(users, '\nexport const ADDED_BY_THE_TEST = 1;\n');
    expect(build().status).toBe(0);
    expect(readFileSync(usersBuilt, 'utf8'), 'a source changed: compiled').toContain('ADDED_BY_THE_TEST');

    writeFileSync(join(copy, 'src', 'added-by-the-test.ts'), 'export const ADDED = 1;\n');
    expect(build().status).toBe(0);
    expect(existsSync(join(copy, 'dist', 'added-by-the-test.js')), 'a source added: compiled').toBe(true);

    // A source the others import, deleted: the build notices, and fails naming it
    // (a check of modification times alone saw nothing newer, and started the old output).
    rmSync(join(copy, 'src', 'not-found-error.ts'));
    const afterDeletion = build();
    expect(afterDeletion.status).not.toBe(0);
    expect(afterDeletion.stdout).toContain("Cannot find module '../not-found-error.js'");
  }, 120_000);
});
