// Installs a package's dependencies with `npm ci`, unless they are already installed
// from its current lockfile: npm writes node_modules/.package-lock.json on every
// install, so when that file is newer than package.json and package-lock.json there
// is nothing to do. This keeps a second `npm start` on an unchanged checkout from
// spending most of its time in npm.
//
// Usage: node tools/install-if-changed.mjs wiki-service [system-tests ...]
import { execFileSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';

const modifiedAt = (path) => (existsSync(path) ? statSync(path).mtimeMs : undefined);

for (const folder of process.argv.slice(2)) {
  const installedAt = modifiedAt(join(folder, 'node_modules', '.package-lock.json'));
  const declaredAt = Math.max(modifiedAt(join(folder, 'package.json')), modifiedAt(join(folder, 'package-lock.json')) ?? 0);
  if (installedAt !== undefined && installedAt >= declaredAt) continue;
  console.log(`${folder}: installing dependencies (npm ci)`);
  execFileSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: folder, stdio: 'inherit' });
}
