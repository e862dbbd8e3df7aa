// Records the chart's current version with the hash of its files in
// wiki-chart/released-versions.json: run it once the chart's changes for a new version
// are done (npm run chart:record, from the repository's root). A version is recorded
// once: a chart changed after its version was recorded needs a new version.

import { writeFileSync } from 'node:fs';
import { chartContentHash, chartVersion, compareVersions, RELEASED_VERSIONS_FILE, releasedVersions } from '../support/chart-version.js';

const version = chartVersion();
const sha256 = chartContentHash();
const versions = releasedVersions();
const recorded = versions.find((entry) => entry.version === version);
if (recorded !== undefined) {
  if (recorded.sha256 === sha256) {
    console.log(`wiki-chart ${version} is recorded, and the chart is as recorded`);
    process.exit(0);
  }
  console.error(
    `wiki-chart ${version} was recorded with other files: the chart changed since. Bump the version in wiki-chart/Chart.yaml, add its upgrade note to docs/OPERATIONS.md, and run this again.`,
  );
  process.exit(1);
}
const newest = versions.at(-1);
if (newest !== undefined && compareVersions(version, newest.version) <= 0) {
  console.error(`wiki-chart ${version} is not newer than ${newest.version}, the last version recorded`);
  process.exit(1);
}
writeFileSync(RELEASED_VERSIONS_FILE, `${JSON.stringify([...versions, { version, sha256 }], null, 2)}\n`);
console.log(`recorded wiki-chart ${version} (${sha256})`);
