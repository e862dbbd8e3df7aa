import { copyFile, cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCommand } from '@wiki/test-support/run-command';
import { chartVersion, compareVersions, releasedVersions } from './support/chart-version.js';
import { CHART_DIR, helm, KUBE_VERSION, REPO_ROOT } from './support/helm.js';

// Every `helm upgrade` command of the documents, applied to releases of the previous
// chart version as Helm merges their values, rendered with the new chart. No cluster
// runs here, so Helm's merge is done as Helm documents and implements it (pkg/action,
// Upgrade.reuseValues): --reset-then-reuse-values takes the new chart's defaults, then
// the release's user-supplied values, then the command's; --reuse-values takes the old
// chart's defaults with the release's values, then the command's; with neither, a
// command that gives values starts again from the new chart's defaults.

interface UpgradeCommand {
  file: string;
  command: string;
  mode: 'reset-then-reuse' | 'reuse' | 'reset';
  valuesFiles: string[];
  set: string[];
}

/** The documents' `helm upgrade <release> <chart>` commands (not `upgrade --install`, which installs). */
function upgradeCommands(): UpgradeCommand[] {
  const documents = [join(REPO_ROOT, 'README.md'), ...readdirSync(join(REPO_ROOT, 'docs')).map((name) => join(REPO_ROOT, 'docs', name))];
  return documents.flatMap((file) =>
    [...readFileSync(file, 'utf8').matchAll(/```bash\n([\s\S]*?)```/g)]
      .flatMap((block) => block[1]!.replace(/\\\n\s*/g, ' ').split('\n'))
      .map((line) => line.replace(/\s+#.*$/, '').trim())
      .filter((line) => /^helm upgrade (?!--install)/.test(line))
      .map((command) => {
        const words = command.split(/\s+/).map((word) => word.replace(/^'(.*)'$/, '$1'));
        const valuesFiles: string[] = [];
        const set: string[] = [];
        for (let i = 0; i < words.length; i++) {
          if (words[i] === '-f' || words[i] === '--values') valuesFiles.push(join(REPO_ROOT, words[++i]!));
          if (words[i] === '--set') set.push(words[++i]!);
        }
        const mode = words.includes('--reset-then-reuse-values') ? 'reset-then-reuse' : words.includes('--reuse-values') ? 'reuse' : 'reset';
        return { file: file.slice(REPO_ROOT.length + 1), command, mode, valuesFiles, set };
      }),
  );
}

describe('the documented upgrade commands, on releases of the previous chart version', () => {
  let previous: { version: string; dir: string };
  let work: string;
  /** The values a release of the previous version was given: the documented install's image, and each of its ci/ values files. */
  let releases: Array<[string, string[]]>;

  /** `helm template` of the new chart as Helm merges an upgrade's values; resolves to helm's result. */
  async function upgrade(command: UpgradeCommand, releaseValues: string[]) {
    let chart = CHART_DIR;
    if (command.mode === 'reuse') {
      // The old chart's defaults in place of the new chart's.
      chart = join(work, `reuse-${Math.random().toString(36).slice(2)}`);
      await cp(CHART_DIR, chart, { recursive: true });
      await copyFile(join(previous.dir, 'values.yaml'), join(chart, 'values.yaml'));
    }
    const kept = command.mode === 'reset' && (command.valuesFiles.length > 0 || command.set.length > 0) ? [] : releaseValues;
    return helm([
      'template',
      'wiki',
      chart,
      '--namespace',
      'wiki',
      '--kube-version',
      KUBE_VERSION,
      ...[...kept, ...command.valuesFiles].flatMap((file) => ['--values', file]),
      ...command.set.flatMap((value) => ['--set', value]),
    ]);
  }

  beforeAll(async () => {
    const older = releasedVersions().filter((entry) => entry.commit !== undefined && compareVersions(entry.version, chartVersion()) < 0);
    const { version, commit } = older.at(-1)!;
    work = await mkdtemp(join(tmpdir(), 'wiki-chart-upgrade-'));
    await runCommand('sh', ['-c', `git -C '${REPO_ROOT}' archive ${commit} wiki-chart | tar -x -C '${work}'`]);
    previous = { version, dir: join(work, 'wiki-chart') };
    const install = join(work, 'install-values.yaml');
    await writeFile(install, 'api:\n  image:\n    repository: registry.example.com/wiki-service\n    tag: "1.0.0"\n');
    releases = [
      ['installed as the documents install it', [install]],
      ...readdirSync(join(previous.dir, 'ci'))
        .filter((name) => name.endsWith('-values.yaml'))
        .sort()
        .map((name): [string, string[]] => [name, [install, join(previous.dir, 'ci', name)]]),
    ];
  });
  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('are found, and none uses --reuse-values', () => {
    const commands = upgradeCommands();
    expect(commands.length).toBeGreaterThanOrEqual(5);
    expect(commands.filter((command) => command.mode === 'reuse').map((command) => `${command.file}: ${command.command}`)).toEqual([]);
  });

  // The previous version's external database was postgresql.enabled false: the new chart
  // refuses that value, saying what replaced it (its upgrade note).
  const REFUSED: Record<string, string> = {
    'external-database-values.yaml': 'postgresql.enabled was replaced by database.mode in chart 0.15',
  };

  it.each(upgradeCommands().map((command): [string, string, UpgradeCommand] => [command.file, command.command, command]))(
    '%s: `%s` upgrades every release of the previous version',
    async (_file, _command, command) => {
      const outcomes: Record<string, string> = {};
      for (const [name, values] of releases) {
        const result = await upgrade(command, values);
        const expected = REFUSED[name];
        outcomes[name] = result.ok
          ? 'renders'
          : expected !== undefined && result.output.includes(expected)
            ? 'refused as documented'
            : result.output.split('\n')[0]!;
      }
      expect(Object.values(outcomes).filter((outcome) => outcome !== 'renders' && outcome !== 'refused as documented')).toEqual([]);
      expect(outcomes['installed as the documents install it']).toBe('renders');
    },
  );

  it(`--reuse-values would fail on a release of the previous version (the check can fail): the new chart's required values are missing`, async () => {
    const result = await upgrade({ file: '', command: '', mode: 'reuse', valuesFiles: [], set: ['api.logLevel=debug'] }, releases[0]![1]);
    expect(result.ok).toBe(false);
    expect(result.output).toMatch(/at '': missing properties 'database', 'cloudnativePg'/);
  });
});
