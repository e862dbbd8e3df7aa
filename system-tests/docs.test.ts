import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CHART_DIR, helm, REPO_ROOT } from './support/helm.js';

// docs/PHASE7_PROMETHEUS.md, PHASE8_GRAFANA.md and PHASE10_ALERTING.md promise that
// their YAML excerpts are taken from the real chart. Every line of every ```yaml block
// must be a line of a template, a rule file, values.yaml, a ci/ values file, or the
// chart as rendered (release "wiki", namespace "wiki"), so the document cannot drift
// from the chart unnoticed.

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}

function yamlBlocks(markdown: string): string[] {
  return [...markdown.matchAll(/```yaml\n([\s\S]*?)```/g)].map((match) => match[1]!);
}

describe.each(['PHASE7_PROMETHEUS.md', 'PHASE8_GRAFANA.md', 'PHASE10_ALERTING.md'])('docs/%s', (document) => {
  it('every YAML excerpt is taken from the chart', async () => {
    const rendered = await helm(['template', 'wiki', CHART_DIR, '--namespace', 'wiki']);
    expect(rendered.ok).toBe(true);
    const sources = [
      ...filesUnder(join(CHART_DIR, 'templates')),
      ...filesUnder(join(CHART_DIR, 'rules')),
      ...filesUnder(join(CHART_DIR, 'ci')),
      join(CHART_DIR, 'values.yaml'),
    ].map((file) => readFileSync(file, 'utf8'));
    const known = new Set([...sources, rendered.output].flatMap((text) => text.split('\n').map((line) => line.trim())));

    const doc = readFileSync(join(REPO_ROOT, 'docs', document), 'utf8');
    const blocks = yamlBlocks(doc);
    expect(blocks.length).toBeGreaterThan(5);
    const strangers = blocks.flatMap((block) => block.split('\n').map((line) => line.trim()).filter((line) => line !== '' && !known.has(line)));
    expect(strangers).toEqual([]);
  });
});
