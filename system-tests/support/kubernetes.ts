import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PodMonitor, PrometheusRule } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
import { isCloudnativePgResource, validateCloudnativePgResource } from './cloudnative-pg.js';
import type { K8sObject } from './helm.js';

// Validation of rendered objects against the Kubernetes API's own OpenAPI schemas,
// through the `kubernetes-models` package (one model class per apiVersion/kind), and
// of the Prometheus Operator's custom resources against their CRDs' schemas
// (`@kubernetes-models/prometheus-operator`), and of CloudNativePG's against the
// schemas of support/cloudnative-pg.ts.

const require = createRequire(import.meta.url);
// kubernetes-models 5 exports only ES modules, one index per API group, so a model is
// loaded from its file: Node 24 requires an ES module synchronously.
const KUBERNETES_MODELS = dirname(fileURLToPath(import.meta.resolve('kubernetes-models')));

export const WORKLOAD_KINDS = ['Deployment', 'StatefulSet', 'DaemonSet', 'Job', 'CronJob'];
/** Workloads whose pods run until stopped (and so need probes and a selector). */
export const LONG_RUNNING_KINDS = ['Deployment', 'StatefulSet', 'DaemonSet'];

const CUSTOM_RESOURCES: Record<string, new (data: any) => { validate(): void }> = {
  'monitoring.coreos.com/v1 PodMonitor': PodMonitor,
  'monitoring.coreos.com/v1 PrometheusRule': PrometheusRule,
};

/** Throws with the schema's complaint when the object is not a valid one of its kind. */
export function validateAgainstKubernetesSchema(object: K8sObject): void {
  if (isCloudnativePgResource(object)) {
    validateCloudnativePgResource(object);
    return;
  }
  const CustomResource = CUSTOM_RESOURCES[`${object.apiVersion} ${object.kind}`];
  if (CustomResource !== undefined) {
    new CustomResource(object).validate();
    return;
  }
  const [group, version] = object.apiVersion.includes('/') ? object.apiVersion.split('/') : [undefined, object.apiVersion];
  const path = join(KUBERNETES_MODELS, ...(group === undefined ? [] : [group]), version, `${object.kind}.js`);
  let Model: new (data: unknown) => { validate(): void };
  try {
    Model = (require(path) as Record<string, new (data: unknown) => { validate(): void }>)[object.kind]!;
  } catch {
    throw new Error(`no Kubernetes schema for ${object.apiVersion} ${object.kind}`);
  }
  new Model(object).validate();
}

/** The pod template ({metadata, spec}) of a workload, a CronJob's included; a Pod is its own. */
export function podTemplateOf(object: K8sObject): any {
  if (object.kind === 'Pod') return object;
  return object.kind === 'CronJob' ? object.spec.jobTemplate.spec.template : object.spec.template;
}

export function podSpecOf(object: K8sObject): any {
  return podTemplateOf(object).spec;
}

export function containersOf(object: K8sObject): any[] {
  const pod = podSpecOf(object);
  return [...(pod.initContainers ?? []), ...pod.containers];
}
