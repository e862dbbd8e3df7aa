import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { CHART_DIR, type K8sObject } from './helm.js';

// The chart tests' view of what `helm template` rendered, and of the values behind it.

export const CI_DIR = join(CHART_DIR, 'ci');
/** The default values and every ci/*-values.yaml: the sets every invariant is checked on. */
export const VALUES_SETS: Array<[string, string[]]> = [
  ['default values', []],
  ...readdirSync(CI_DIR)
    .filter((file) => file.endsWith('-values.yaml'))
    .sort()
    .map((file): [string, string[]] => [file, [join(CI_DIR, file)]]),
];

/** values.yaml with the given files merged over it, as Helm merges them. */
export function valuesOf(files: string[]): Record<string, any> {
  const defaults = parseYaml(readFileSync(join(CHART_DIR, 'values.yaml'), 'utf8')) as Record<string, any>;
  const overrides = files.map((file) => parseYaml(readFileSync(file, 'utf8')) as Record<string, any>);
  return overrides.reduce(deepMerge, defaults);
}

function deepMerge(base: Record<string, any>, override: Record<string, any>): Record<string, any> {
  const result = { ...base };
  for (const [key, value] of Object.entries(override ?? {})) {
    result[key] = value && typeof value === 'object' && !Array.isArray(value) && typeof base[key] === 'object' ? deepMerge(base[key], value) : value;
  }
  return result;
}

export const byKind = (objects: K8sObject[], kind: string) => objects.filter((object) => object.kind === kind);
/** The objects of one kind that belong to one component (app.kubernetes.io/component). */
export const componentObjects = (objects: K8sObject[], kind: string, component: string) =>
  byKind(objects, kind).filter((object) => object.metadata.labels['app.kubernetes.io/component'] === component);
export const componentObject = (objects: K8sObject[], kind: string, component: string) => componentObjects(objects, kind, component)[0];
export const named = (objects: K8sObject[], kind: string, name: string) => objects.find((object) => object.kind === kind && object.metadata.name === name);
