import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { createHash } from 'node:crypto';
import { CHART_DIR } from './helm.js';

// Every change to the chart needs a new chart version: upgrades, rollbacks and `helm
// history` tell releases apart by it, and a user who read the upgrade notes of 0.13.0
// must get what they describe. wiki-chart/released-versions.json keeps each version
// with the hash of the chart's files as that version was recorded, as chart-testing's
// version check compares a changed chart with the target branch's.

export const RELEASED_VERSIONS_FILE = join(CHART_DIR, 'released-versions.json');

export interface ReleasedVersion {
  version: string;
  /** sha256 of the chart's files (chartContentHash). */
  sha256: string;
  /** The last commit of that version, once a later one exists: where its chart can be read back. */
  commit?: string;
}

/** sha256 over every file of a chart folder (its path and content), but the record of versions itself. */
export function chartContentHash(dir: string = CHART_DIR): string {
  const files: string[] = [];
  const walk = (folder: string) => {
    for (const name of readdirSync(folder).sort()) {
      const path = join(folder, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (relative(dir, path) !== 'released-versions.json') files.push(path);
    }
  };
  walk(dir);
  const hash = createHash('sha256');
  for (const file of files.sort()) hash.update(relative(dir, file)).update('\0').update(readFileSync(file)).update('\0');
  return hash.digest('hex');
}

/** The version in a chart folder's Chart.yaml. */
export function chartVersion(dir: string = CHART_DIR): string {
  const match = /^version:\s*(\S+)\s*$/m.exec(readFileSync(join(dir, 'Chart.yaml'), 'utf8'));
  if (match === null) throw new Error(`no version in ${join(dir, 'Chart.yaml')}`);
  return match[1]!;
}

export function releasedVersions(): ReleasedVersion[] {
  return JSON.parse(readFileSync(RELEASED_VERSIONS_FILE, 'utf8')) as ReleasedVersion[];
}

/** Compares two semantic versions (major.minor.patch, no pre-release). */
export function compareVersions(a: string, b: string): number {
  const [x, y] = [a, b].map((version) => version.split('.').map(Number));
  for (let i = 0; i < 3; i++) if (x![i] !== y![i]) return x![i]! - y![i]!;
  return 0;
}
