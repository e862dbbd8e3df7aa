import { appendFile, cp, mkdtemp, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCommand } from '@wiki/test-support/run-command';
import { chartContentHash, chartVersion, compareVersions, releasedVersions } from './support/chart-version.js';
import { CHART_DIR, REPO_ROOT } from './support/helm.js';

// A chart changed without a new version cannot be told apart from the one before it:
// chart 0.13.0 changed after it was first released, and six required values came in
// between. wiki-chart/released-versions.json records each version with the hash of its
// files; the chart as it is must be its version as recorded (`npm run chart:record`
// records a new one).

/** The chart of one commit, unpacked with git into a temporary folder. */
async function chartAt(commit: string): Promise<{ dir: string; remove: () => Promise<void> }> {
  const root = await mkdtemp(join(tmpdir(), 'wiki-chart-at-'));
  await runCommand('sh', ['-c', `git -C '${REPO_ROOT}' archive ${commit} wiki-chart | tar -x -C '${root}'`]);
  return { dir: join(root, 'wiki-chart'), remove: () => rm(root, { recursive: true, force: true }) };
}

describe('the chart version', () => {
  it('the chart as it is now is its version as recorded; in CI it must be recorded', () => {
    const version = chartVersion();
    const recorded = releasedVersions().find((entry) => entry.version === version);
    const newest = releasedVersions().at(-1)!;
    let problem: string | undefined;
    if (recorded === undefined && process.env.CI) problem = `wiki-chart ${version} is not recorded: run npm run chart:record once its changes are done`;
    else if (recorded === undefined && compareVersions(version, newest.version) <= 0)
      problem = `wiki-chart ${version} is not recorded, and not newer than ${newest.version}`;
    else if (recorded !== undefined && recorded.sha256 !== chartContentHash())
      problem = `wiki-chart changed since ${version} was recorded: bump the version in Chart.yaml, add its upgrade note to docs/OPERATIONS.md, and run npm run chart:record`;
    expect(problem).toBeUndefined();
  });

  it('the check sees any change (it can fail): one line more in a template gives another hash', async () => {
    const copy = await mkdtemp(join(tmpdir(), 'wiki-chart-changed-'));
    try {
      await cp(CHART_DIR, copy, { recursive: true });
      expect(chartContentHash(copy)).toBe(chartContentHash());
      await appendFile(join(copy, 'templates', 'api-service.yaml'), '# a change\n');
      expect(chartContentHash(copy)).not.toBe(chartContentHash());
    } finally {
      await rm(copy, { recursive: true, force: true });
    }
  });

  it('each recorded version is newer than the one before, and its last commit holds the chart it records', { timeout: 60_000 }, async () => {
    const versions = releasedVersions();
    for (let i = 1; i < versions.length; i++) expect(compareVersions(versions[i]!.version, versions[i - 1]!.version), versions[i]!.version).toBeGreaterThan(0);
    for (const { version, sha256, commit } of versions.filter((entry) => entry.commit !== undefined)) {
      const chart = await chartAt(commit!);
      try {
        expect(chartVersion(chart.dir), commit).toBe(version);
        expect(chartContentHash(chart.dir), version).toBe(sha256);
      } finally {
        await chart.remove();
      }
    }
  });

  it('docs/OPERATIONS.md has an upgrade note from each version to the next, from 0.10 on', () => {
    const doc = readFileSync(join(REPO_ROOT, 'docs', 'OPERATIONS.md'), 'utf8');
    const versions = [...releasedVersions().map((entry) => entry.version), chartVersion()];
    const from = [...new Set(versions)].filter((version, i, all) => i < all.length - 1 && compareVersions(version, '0.10.0') >= 0);
    expect(from.filter((version) => !doc.includes(`**Upgrading from chart ${version.replace(/\.0$/, '')}.**`))).toEqual([]);
  });
});
