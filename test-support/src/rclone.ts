import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

// rclone, which the chart's backup pod runs to copy each nightly dump to object storage
// (wiki-chart/postgresql/backup.sh), fetched by tools/fetch-rclone.sh.

/** The rclone to run: $RCLONE_BIN, else tools/fetch-rclone.sh's, else `rclone` on PATH. */
export function findRclone(): string | undefined {
  if (process.env.RCLONE_BIN) return process.env.RCLONE_BIN;
  const fetched = fileURLToPath(new URL('../../.cache/rclone/bin/rclone', import.meta.url));
  if (existsSync(fetched)) return fetched;
  try {
    return execFileSync('sh', ['-c', 'command -v rclone'], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

/** Why the copy tests cannot run here, or undefined when they can. */
export function rcloneMissing(): string | undefined {
  return findRclone() === undefined ? 'rclone is missing: run tools/fetch-rclone.sh' : undefined;
}
