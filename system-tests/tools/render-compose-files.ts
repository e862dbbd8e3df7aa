// Renders the chart's files that compose.yaml mounts, into compose/rendered/ (not kept
// in git: run it again after changing the chart or your values). The chart is the one
// source: its rule files (Helm templates), Grafana's configuration and provisioning,
// and alertmanager.yml, rendered as they would be for a release whose names are
// "wiki-..." (fullnameOverride=wiki), so Grafana's data source URL,
// http://wiki-prometheus:9090, is the Prometheus service's network alias in compose.yaml.
//
//   npm run compose:prepare [-- -f my-values.yaml ...]   (from the repository's root)
//
// Extra arguments are values files (-f) or --set values, as for helm.

import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { configMapData, REPO_ROOT, renderChart, valuesArguments } from '../support/helm.js';
import { renderedAlertmanagerConfig } from '../support/prometheus.js';

export const RENDERED_DIR = join(REPO_ROOT, 'compose', 'rendered');
/** The namespace label compose/prometheus.yml gives the API's series; the rules select it. */
export const COMPOSE_NAMESPACE = 'compose';

export async function renderComposeFiles(outDir: string, valuesFiles: string[] = [], set: string[] = []): Promise<void> {
  // No postgres_exporter runs in compose.yaml: without it, the PostgreSQL rules would
  // only report it missing (PostgresqlDown).
  const objects = await renderChart(valuesFiles, ['fullnameOverride=wiki', 'postgresql.metrics.enabled=false', ...set], COMPOSE_NAMESPACE);
  await rm(outDir, { recursive: true, force: true });
  // The rule files only: compose has its own prometheus.yml (no pod discovery there).
  await mkdir(join(outDir, 'rules'), { recursive: true });
  for (const [name, content] of Object.entries(configMapData(objects, 'prometheus-rules'))) await writeFile(join(outDir, 'rules', name), content);
  await mkdir(join(outDir, 'grafana'), { recursive: true });
  await writeFile(join(outDir, 'grafana', 'grafana.ini'), configMapData(objects, 'grafana-config')['grafana.ini']!);
  const provisioning = configMapData(objects, 'grafana-provisioning');
  await writeFile(join(outDir, 'grafana', 'datasources.yaml'), provisioning['datasources.yaml']!);
  await writeFile(join(outDir, 'grafana', 'dashboards.yaml'), provisioning['dashboards.yaml']!);
  await writeFile(join(outDir, 'alertmanager.yml'), renderedAlertmanagerConfig(objects));
}

if (process.argv[1]?.endsWith('render-compose-files.ts')) {
  const { files, set } = valuesArguments(process.argv.slice(2));
  await renderComposeFiles(RENDERED_DIR, files, set);
  console.log(`rendered the chart's files for compose.yaml into ${RENDERED_DIR}`);
}
