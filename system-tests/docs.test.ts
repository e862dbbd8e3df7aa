import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
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

  // An excerpt introduced by a paragraph that names chart files ("From
  // `templates/prometheus-configmap.yaml`:") must come from those files, or from what
  // they render: a line that is only found elsewhere in the chart is stale.
  it('every YAML excerpt that names its file is taken from that file', async () => {
    const doc = readFileSync(join(REPO_ROOT, 'docs', document), 'utf8');
    const strangers: string[] = [];
    for (const { files, block } of namedExcerpts(doc)) {
      const texts: string[] = [];
      for (const file of files) {
        texts.push(readFileSync(join(CHART_DIR, file), 'utf8'));
        const template = file.startsWith('rules/') ? 'templates/prometheus-rules-configmap.yaml' : file.startsWith('templates/') ? file : undefined;
        if (template === undefined) continue;
        const rendered = await helm(['template', 'wiki', CHART_DIR, '--namespace', 'wiki', '--show-only', template]);
        expect(rendered.ok, rendered.output).toBe(true);
        texts.push(rendered.output);
      }
      const known = new Set(texts.flatMap((text) => text.split('\n').map((line) => line.trim())));
      for (const line of block.split('\n').map((candidate) => candidate.trim())) {
        if (line === '' || line.startsWith('#') || known.has(line) || known.has(line.replace(/\s+#.*$/, ''))) continue;
        strangers.push(`${files.join(', ')}: ${line}`);
      }
    }
    expect(strangers).toEqual([]);
  });
});

/** The YAML excerpts whose introducing paragraph names files of the chart, with those files. */
function namedExcerpts(markdown: string): Array<{ files: string[]; block: string }> {
  const excerpts: Array<{ files: string[]; block: string }> = [];
  for (const match of markdown.matchAll(/```yaml\n([\s\S]*?)```/g)) {
    const before = markdown.slice(0, match.index).trimEnd();
    const paragraph = before.slice(before.lastIndexOf('\n\n') + 1);
    const named = new Set(
      [...paragraph.matchAll(/`(?:wiki-chart\/)?((?:templates|rules|ci|postgresql)\/[\w.-]+|values\.yaml|Chart\.yaml)`/g)]
        .map((name) => name[1]!)
        .filter((file) => existsSync(join(CHART_DIR, file))),
    );
    if (named.size > 0) excerpts.push({ files: [...named].sort(), block: match[1]! });
  }
  return excerpts;
}

describe('excerpts that name their file', () => {
  it('are found (the search can fail)', () => {
    expect(namedExcerpts('From `templates/prometheus-configmap.yaml`:\n\n```yaml\na: 1\n```\n\nNo name:\n\n```yaml\nb: 2\n```')).toEqual([
      { files: ['templates/prometheus-configmap.yaml'], block: 'a: 1\n' },
    ]);
    const all = readdirSync(join(REPO_ROOT, 'docs')).flatMap((name) => namedExcerpts(readFileSync(join(REPO_ROOT, 'docs', name), 'utf8')));
    expect(all.length).toBeGreaterThanOrEqual(8);
  });
});

// An excerpt of one of the chart's scripts is introduced by "From `wiki-chart/<path>`:"
// and every line of it must be a line of that file.

describe("excerpts of the chart's scripts", () => {
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
    const lines = new Set(
      readFileSync(join(REPO_ROOT, path), 'utf8')
        .split('\n')
        .map((line) => line.trim()),
    );
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
  return (
    blocks
      .flatMap((block) => block.replace(/\\\n\s*/g, ' ').split('\n'))
      .map((line) =>
        line
          .replace(/\s+#.*$/, '')
          .replace(/\s+/g, ' ')
          .trim(),
      )
      // This chart's releases, not the operators' a document installs beside it.
      .filter((line) => /^helm (install|upgrade --install) /.test(line) && /(^|\s)(\.\/)?wiki-chart(\s|$)/.test(line))
  );
}

/** The `helm template` arguments for one documented install command. */
function templateArgs(command: string): string[] {
  const words = command
    .split(/\s+/)
    .slice(1)
    .filter((word) => !['install', 'upgrade', '--install', '--create-namespace', '--wait', '--atomic'].includes(word));
  return ['template', ...words, '--kube-version', KUBE_VERSION];
}

const DOCUMENTS = [join(REPO_ROOT, 'README.md'), ...readdirSync(join(REPO_ROOT, 'docs')).map((name) => join(REPO_ROOT, 'docs', name))];
const COMMANDS = DOCUMENTS.flatMap((file) =>
  installCommands(readFileSync(file, 'utf8')).map((command): [string, string] => [file.slice(REPO_ROOT.length + 1), command]),
);

describe('the install commands of the documents', () => {
  it('are found (the search can fail)', () => {
    expect(COMMANDS.length).toBeGreaterThanOrEqual(8);
    expect(installCommands('```bash\nhelm install wiki ./wiki-chart \\\n  --set a=b   # note\n```')).toEqual(['helm install wiki ./wiki-chart --set a=b']);
  });

  it.each(COMMANDS)('%s: `%s` renders, with an API image a cluster can pull', async (_file, command) => {
    const rendered = await helm(
      templateArgs(command).map((word) => word.replace(/^\.\/wiki-chart$|^wiki-chart$/, CHART_DIR).replace(/^wiki-chart\//, `${CHART_DIR}/`)),
    );
    expect(rendered.ok, rendered.output).toBe(true);
    const images = [...rendered.output.matchAll(/image: "?([^"\s]+)"?/g)].map((match) => match[1]!);
    expect(images.some((image) => image.includes('wiki-service'))).toBe(true);
    expect(images.filter((image) => image.startsWith('ghcr.io/example/'))).toEqual([]);
  });
});

// The documents' cluster commands are written for release `wiki` in namespace `wiki`
// (docs/OPERATIONS.md, first lines). A command that names a namespaced object and
// leaves the namespace out runs in the default namespace and finds nothing, or
// creates a second release there. So every `kubectl` or `helm` command that acts on
// something namespaced says `-n`/`--namespace`, in code blocks and in inline code
// alike. A bare `helm upgrade` or `kubectl logs` (no argument) names a command, not a
// command to run. A manifest applied from a URL carries its own namespaces.
const CLUSTER_WIDE =
  /^(helm (lint|template|repo|dependency|version|package|show|search|env|help)|kubectl (config|version|cluster-info|api-resources|explain|drain|cordon|uncordon|(get|describe|create|delete) (nodes?|namespaces?|ns|pv|crd|storageclass|ingressclass)\b|apply (--server-side )?-f https?:\/\/))/;
const NAMESPACED = /(^|\s)(-n\s?\S|--namespace[= ]\S|-A\b|--all-namespaces)/;

export function clusterCommandsWithoutNamespace(markdown: string): string[] {
  const commands: string[] = [];
  // Every fenced block, whatever its language, so that each closing fence is paired
  // with its own opening one; only the shell's are read as commands.
  const fenced = /```(\w*)\n([\s\S]*?)```/g;
  for (const [, language, body] of markdown.matchAll(fenced)) {
    if (!['', 'bash', 'sh', 'shell', 'console'].includes(language!)) continue;
    for (const line of body!.replace(/\\\n\s*/g, ' ').split('\n')) {
      // Each command of a pipeline, list or substitution, without its comment.
      for (const part of line.replace(/\s#.*$/, '').split(/\s*(?:&&|\|\||;|\||\$\()\s*/)) commands.push(part.trim());
    }
  }
  // Inline code outside the fenced blocks; a span may wrap onto the next line, as a
  // paragraph's lines do.
  for (const span of markdown.replace(fenced, '').matchAll(/`([^`]+?)`/g)) {
    if (!span[1]!.includes('\n\n')) commands.push(span[1]!.replace(/\s*\n\s*/g, ' ').trim());
  }
  return commands.filter((command) => /^(kubectl|helm) \S+ \S/.test(command) && !CLUSTER_WIDE.test(command) && !NAMESPACED.test(command));
}

describe('the cluster commands of the documents', () => {
  it('are checked (the check can fail)', () => {
    expect(clusterCommandsWithoutNamespace('```bash\nkubectl get pods -l a=b | head\nhelm upgrade --install wiki wiki-chart -f x.yaml\n```')).toEqual([
      'kubectl get pods -l a=b',
      'helm upgrade --install wiki wiki-chart -f x.yaml',
    ]);
    expect(clusterCommandsWithoutNamespace('Run `kubectl logs <pod> -c api` or `helm rollback wiki`; `helm upgrade` alone names it.')).toEqual([
      'kubectl logs <pod> -c api',
      'helm rollback wiki',
    ]);
    expect(clusterCommandsWithoutNamespace('`kubectl get pods -n wiki`, `helm test wiki --namespace wiki`, `kubectl get pv`, `helm lint wiki-chart`')).toEqual(
      [],
    );
    // Inline code that wraps onto the next line, and a block of another language before a shell one.
    expect(clusterCommandsWithoutNamespace('Run `kubectl logs -l app=api\n--tail=100` first.')).toEqual(['kubectl logs -l app=api --tail=100']);
    expect(
      clusterCommandsWithoutNamespace('```yaml\na: 1\n```\n\nThen `helm template x | kubectl apply -n wiki -f -`.\n\n```bash\nkubectl get pods -n wiki\n```'),
    ).toEqual([]);
  });

  it.each(DOCUMENTS.map((file) => file.slice(REPO_ROOT.length + 1)))('%s: every kubectl and helm command names the namespace', (file) => {
    expect(clusterCommandsWithoutNamespace(readFileSync(join(REPO_ROOT, file), 'utf8'))).toEqual([]);
  });
});
