// Compiles src/ into dist/ unless dist/ is already newer than every file the build
// reads, so that starting an unchanged checkout skips the compiler (about 15 s on a
// busy 2-core machine). `npm run build` always compiles.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

// The package this script belongs to, wherever it is started from.
process.chdir(join(dirname(fileURLToPath(import.meta.url)), '..'));

// tsc writes every output file on each build, so server.js dates the last one.
const BUILT = join('dist', 'server.js');

function newestIn(folder) {
  let newest = 0;
  for (const entry of readdirSync(folder, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) newest = Math.max(newest, statSync(join(entry.parentPath, entry.name)).mtimeMs);
  }
  return newest;
}

// The lockfile is the workspace's, at the repository's root.
const inputsChangedAt = Math.max(
  newestIn('src'),
  ...['package.json', join('..', 'package-lock.json'), 'tsconfig.json', 'tsconfig.build.json'].map((file) => statSync(file).mtimeMs),
);
if (existsSync(BUILT) && statSync(BUILT).mtimeMs >= inputsChangedAt) process.exit(0);

console.log('wiki-service: compiling src/ into dist/');
execFileSync('npm', ['run', 'build'], { stdio: 'inherit' });
