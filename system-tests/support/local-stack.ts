import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { K8sObject } from './helm.js';
import {
  podTarget,
  postgresExporterInvocation,
  renderedAlertmanagerConfig,
  renderedPrometheusYml,
  withFileDiscovery,
  writeRenderedPrometheusConfig,
} from './prometheus.js';
import { writeChartScripts } from './chart-env.js';

// The chart's monitoring run as local processes: what the stack test and
// `npm run observe` both start. Each function maps one rendered pod to this machine
// and changes nothing else: the Deployment's own arguments with the pod's paths
// replaced by local folders, and Kubernetes pod discovery replaced by file discovery
// of local targets labelled as pod discovery would label them (so the chart's
// relabelling runs as in a cluster).

function deploymentArgs(objects: K8sObject[], nameSuffix: string): string[] {
  const deployment = objects.find((object) => object.kind === 'Deployment' && object.metadata.name.endsWith(nameSuffix));
  if (deployment === undefined) throw new Error(`no Deployment *${nameSuffix} rendered`);
  return deployment.spec.template.spec.containers[0].args as string[];
}

/** The Alertmanager Service's address as prometheus.yml names it. */
function alertmanagerServiceAddress(objects: K8sObject[]): string {
  const deployment = objects.find((object) => object.kind === 'Deployment' && object.metadata.name.endsWith('-alertmanager'))!;
  return `${deployment.metadata.name}:9093`;
}

/** Writes the rendered alertmanager.yml into `dir`; returns the Deployment's arguments for a process listening on `port`. */
export async function alertmanagerInvocation(objects: K8sObject[], dir: string, port: number): Promise<string[]> {
  const configDir = join(dir, 'etc-alertmanager');
  await mkdir(configDir, { recursive: true });
  await writeFile(join(configDir, 'alertmanager.yml'), renderedAlertmanagerConfig(objects));
  return [
    ...deploymentArgs(objects, '-alertmanager').map((arg) =>
      arg.replace('=/etc/alertmanager/', `=${configDir}/`).replace('--storage.path=/alertmanager', `--storage.path=${join(dir, 'alertmanager-data')}`),
    ),
    `--web.listen-address=127.0.0.1:${port}`,
  ];
}

export interface LocalTargets {
  /** host:port of each API process, with the pod name it stands for. */
  apiPods: Array<{ address: string; pod: string }>;
  /** host:port of postgres_exporter and of PostgreSQL, and the pod they stand for. */
  postgresql?: { exporter: string; server: string; pod: string };
  alertmanager: string;
  namespace: string;
}

/**
 * Writes prometheus.yml and the rule files into `dir` (discovery swapped for files
 * listing `targets`, the Alertmanager Service's address for the local one); returns
 * the Deployment's arguments for a Prometheus listening on `port`, its data in `dataDir`.
 */
export async function prometheusInvocation(
  objects: K8sObject[],
  dir: string,
  dataDir: string,
  port: number,
  targets: LocalTargets,
  extraApiTargets: object[] = [],
): Promise<string[]> {
  const configDir = join(dir, 'etc-prometheus');
  await mkdir(configDir, { recursive: true });
  const apiTargetsFile = join(dir, 'api-pods.json');
  await writeFile(
    apiTargetsFile,
    JSON.stringify([...targets.apiPods.map(({ address, pod }) => podTarget(address, pod, targets.namespace)), ...extraApiTargets]),
  );
  const targetsFiles: Record<string, string> = { 'wiki-api': apiTargetsFile };
  if (targets.postgresql !== undefined) {
    const { exporter, server, pod } = targets.postgresql;
    targetsFiles.postgresql = join(dir, 'postgresql-pods.json');
    await writeFile(
      targetsFiles.postgresql,
      JSON.stringify([
        podTarget(exporter, pod, targets.namespace, {
          __meta_kubernetes_pod_container_name: 'postgres-exporter',
          __meta_kubernetes_pod_container_port_name: 'metrics',
        }),
        // The same pod's PostgreSQL port: the job keeps only the exporter's.
        podTarget(server, pod, targets.namespace, {
          __meta_kubernetes_pod_container_name: 'postgresql',
          __meta_kubernetes_pod_container_port_name: 'postgresql',
        }),
      ]),
    );
  }
  const service = alertmanagerServiceAddress(objects);
  const rendered = renderedPrometheusYml(objects);
  if (!rendered.includes(service)) throw new Error(`prometheus.yml does not name Alertmanager as ${service}`);
  await writeRenderedPrometheusConfig(objects, configDir, withFileDiscovery(rendered, targetsFiles).replaceAll(service, targets.alertmanager));
  return [
    ...deploymentArgs(objects, '-prometheus').map((arg) =>
      arg.replace('=/etc/prometheus/', `=${configDir}/`).replace('--storage.tsdb.path=/prometheus', `--storage.tsdb.path=${dataDir}`),
    ),
    `--web.listen-address=127.0.0.1:${port}`,
  ];
}

/** postgres_exporter's arguments and environment as the PostgreSQL pod runs it, its query file written under `dir`. */
export async function exporterInvocation(
  objects: K8sObject[],
  dir: string,
  port: number,
  postgresPort: number,
): Promise<{ args: string[]; env: Record<string, string> }> {
  const scriptsDir = join(dir, 'postgresql-scripts');
  await writeChartScripts(objects, scriptsDir);
  return postgresExporterInvocation(objects, port, postgresPort, scriptsDir);
}
