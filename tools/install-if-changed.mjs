// Installs the workspace's dependencies with `npm ci` (one lockfile at the root for
// every package), unless they are already installed from the current lockfile: npm
// writes node_modules/.package-lock.json on every install, so when that file is newer
// than the lockfile and every package.json there is nothing to do. This keeps a
// second `npm start` on an unchanged checkout from spending most of its time in npm.
//
// Usage: node tools/install-if-changed.mjs   (the root package.json's scripts run it)
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
const modifiedAt = (path) => (existsSync(path) ? statSync(path).mtimeMs : undefined);

const { workspaces } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const declared = ['package.json', 'package-lock.json', ...workspaces.map((folder) => join(folder, 'package.json'))];
const installedAt = modifiedAt(join(root, 'node_modules', '.package-lock.json'));
const declaredAt = Math.max(...declared.map((file) => modifiedAt(join(root, file)) ?? 0));
if (installedAt === undefined || installedAt < declaredAt) {
  console.log('installing dependencies (npm ci)');
  execFileSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: root, stdio: 'inherit' });
}
