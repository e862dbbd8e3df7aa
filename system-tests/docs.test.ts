import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CHART_DIR, helm, KUBE_VERSION, REPO_ROOT } from './support/helm.js';

// Every document's YAML excerpts are taken from the real chart: every line of every
// ```yaml block must be a line of a template, a rule file, values.yaml, Chart.yaml, a
// ci/ values file, or the chart as rendered (release "wiki", namespace "wiki"), so a
// document cannot drift from the chart unnoticed. Lines that are only a comment
// explain or mark what an excerpt leaves out ("# ... labels"); a comment after a line
// annotates it.

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}

function yamlBlocks(markdown: string): string[] {
  return [...markdown.matchAll(/```yaml\n([\s\S]*?)```/g)].map((match) => match[1]!);
}

describe.each(readdirSync(join(REPO_ROOT, 'docs')).filter((name) => name.endsWith('.md')))('docs/%s', (document) => {
  it('every YAML excerpt is taken from the chart', async () => {
    const rendered = await helm(['template', 'wiki', CHART_DIR, '--namespace', 'wiki']);
    expect(rendered.ok).toBe(true);
    const sources = [
      ...filesUnder(join(CHART_DIR, 'templates')),
      ...filesUnder(join(CHART_DIR, 'rules')),
      ...filesUnder(join(CHART_DIR, 'ci')),
      ...filesUnder(join(CHART_DIR, 'postgresql')),
      join(CHART_DIR, 'values.yaml'),
      join(CHART_DIR, 'Chart.yaml'),
    ].map((file) => readFileSync(file, 'utf8'));
    const known = new Set([...sources, rendered.output].flatMap((text) => text.split('\n').map((line) => line.trim())));

    const doc = readFileSync(join(REPO_ROOT, 'docs', document), 'utf8');
    const blocks = yamlBlocks(doc);
    // A line of a comment only ("# ... labels") explains or marks what was left out;
    // a comment after a line annotates it. The rest must be the chart's own.
    const strangers = blocks.flatMap((block) =>
      block
        .split('\n')
        .map((line) => line.trim())
        .filter((line) => line !== '' && !line.startsWith('#'))
        .filter((line) => !known.has(line) && !known.has(line.replace(/\s+#.*$/, ''))),
    );
    expect(strangers).toEqual([]);
  });
});

// An excerpt of one of the chart's scripts is introduced by "From `wiki-chart/<path>`:"
// and every line of it must be a line of that file.

describe('excerpts of the chart\'s scripts', () => {
  const excerpts = readdirSync(join(REPO_ROOT, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .flatMap((name) =>
      [...readFileSync(join(REPO_ROOT, 'docs', name), 'utf8').matchAll(/From `(wiki-chart\/[^`]+)`:\n\n```\w+\n([\s\S]*?)```/g)].map(
        (match): [string, string, string] => [name, match[1]!, match[2]!],
      ),
    );

  it('are found (the search can fail)', () => {
    expect(excerpts.length).toBeGreaterThanOrEqual(1);
  });

  it.each(excerpts)('docs/%s: the excerpt of %s is its own lines', (_document, path, excerpt) => {
    const lines = new Set(readFileSync(join(REPO_ROOT, path), 'utf8').split('\n').map((line) => line.trim()));
    const strangers = excerpt
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line !== '' && !line.startsWith('#') && !lines.has(line));
    expect(strangers).toEqual([]);
  });
});

// Every command in README.md and docs/ that creates a release (`helm install`, `helm
// upgrade --install`) is rendered with its own flags, from the repository's root: it
// must render, and it must name an API image (the chart's default is a placeholder no
// cluster can pull; PHASE7's recipe once installed it, and the API never came up).

function installCommands(markdown: string): string[] {
  const blocks = [...markdown.matchAll(/```bash\n([\s\S]*?)```/g)].map((match) => match[1]!);
  return blocks
    .flatMap((block) => block.replace(/\\\n\s*/g, ' ').split('\n'))
    .map((line) => line.replace(/\s+#.*$/, '').replace(/\s+/g, ' ').trim())
    .filter((line) => /^helm (install|upgrade --install) /.test(line));
}

/** The `helm template` arguments for one documented install command. */
function templateArgs(command: string): string[] {
  const words = command.split(/\s+/).slice(1).filter((word) => !['install', 'upgrade', '--install', '--create-namespace', '--wait', '--atomic'].includes(word));
  return ['template', ...words, '--kube-version', KUBE_VERSION];
}

const DOCUMENTS = [join(REPO_ROOT, 'README.md'), ...readdirSync(join(REPO_ROOT, 'docs')).map((name) => join(REPO_ROOT, 'docs', name))];
const COMMANDS = DOCUMENTS.flatMap((file) => installCommands(readFileSync(file, 'utf8')).map((command): [string, string] => [file.slice(REPO_ROOT.length + 1), command]));

describe('the install commands of the documents', () => {
  it('are found (the search can fail)', () => {
    expect(COMMANDS.length).toBeGreaterThanOrEqual(8);
    expect(installCommands('```bash\nhelm install wiki ./wiki-chart \\\n  --set a=b   # note\n```')).toEqual(['helm install wiki ./wiki-chart --set a=b']);
  });

  it.each(COMMANDS)('%s: `%s` renders, with an API image a cluster can pull', async (_file, command) => {
    const rendered = await helm(templateArgs(command).map((word) => word.replace(/^\.\/wiki-chart$|^wiki-chart$/, CHART_DIR).replace(/^wiki-chart\//, `${CHART_DIR}/`)));
    expect(rendered.ok, rendered.output).toBe(true);
    const images = [...rendered.output.matchAll(/image: "?([^"\s]+)"?/g)].map((match) => match[1]!);
    expect(images.some((image) => image.includes('wiki-service'))).toBe(true);
    expect(images.filter((image) => image.startsWith('ghcr.io/example/'))).toEqual([]);
  });
});
