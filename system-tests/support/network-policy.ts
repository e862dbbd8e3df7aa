import type { K8sObject } from './helm.js';
import { podSpecOf, podTemplateOf, WORKLOAD_KINDS } from './kubernetes.js';

// Which connections the rendered NetworkPolicies allow, computed as Kubernetes
// decides: a connection from A to B on a port is allowed when A may send it (no
// policy selects A for Egress, or one of those that do has a matching egress rule)
// and B may receive it (likewise for Ingress). Policies only add permissions.
//
// The endpoints are the chart's pods (from the rendered workloads and the helm test
// pod, with their labels and container ports) and the peers outside the release that
// the system talks to, described by the labels and ports a cluster would give them.

export interface Endpoint {
  /** A short name for the table: the component, or the outside peer. */
  name: string;
  /** Pod labels ({} for an address outside the pod network). */
  labels: Record<string, string>;
  /** Labels of the pod's namespace; undefined for an address outside the cluster's pods. */
  namespaceLabels: Record<string, string> | undefined;
  /** Ports it listens on: [protocol, number, name?]. */
  ports: Array<{ protocol: string; port: number; name?: string }>;
  /** True for the chart's own pods (whose policies apply). */
  inRelease: boolean;
  /** Its IPv4 address, for a peer outside the pod network that ipBlocks may name. */
  address?: string;
}

interface Selector {
  matchLabels?: Record<string, string>;
  matchExpressions?: Array<{ key: string; operator: string; values?: string[] }>;
}

function matches(selector: Selector | undefined, labels: Record<string, string>): boolean {
  if (selector === undefined) return true;
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) if (labels[key] !== value) return false;
  for (const { key, operator, values = [] } of selector.matchExpressions ?? []) {
    const has = key in labels;
    if (operator === 'In' && !(has && values.includes(labels[key]!))) return false;
    if (operator === 'NotIn' && has && values.includes(labels[key]!)) return false;
    if (operator === 'Exists' && !has) return false;
    if (operator === 'DoesNotExist' && has) return false;
  }
  return true;
}

/** The chart's pods, from the rendered workloads and test pods. */
export function releasePods(objects: K8sObject[], namespaceLabels: Record<string, string>): Endpoint[] {
  return objects
    .filter((object) => object.kind === 'Pod' || WORKLOAD_KINDS.includes(object.kind))
    .map((object) => {
      const labels = podTemplateOf(object).metadata.labels;
      const ports = podSpecOf(object).containers.flatMap((container: any) =>
        (container.ports ?? []).map((port: any) => ({ protocol: port.protocol ?? 'TCP', port: port.containerPort, name: port.name })),
      );
      return { name: labels['app.kubernetes.io/component'], labels, namespaceLabels, ports, inRelease: true };
    });
}

type Peer = { podSelector?: Selector; namespaceSelector?: Selector; ipBlock?: { cidr: string; except?: string[] } };

/** Whether an IPv4 address is inside a CIDR block (a.b.c.d/n). */
function inCidr(address: string, cidr: string): boolean {
  const toNumber = (ip: string) => ip.split('.').reduce((value, octet) => value * 256 + Number(octet), 0);
  const [base, bits] = cidr.split('/') as [string, string];
  const size = 2 ** (32 - Number(bits));
  return Math.floor(toNumber(address) / size) === Math.floor(toNumber(base) / size);
}
type Rule = { ports?: Array<{ protocol?: string; port?: number | string }>; from?: Peer[]; to?: Peer[] };

function peerMatches(peer: Peer, other: Endpoint, policyNamespaceLabels: Record<string, string>): boolean {
  if (peer.ipBlock !== undefined) {
    // Here an ipBlock names addresses outside the pod network (pods have no address in this model).
    const { cidr, except = [] } = peer.ipBlock;
    return other.address !== undefined && inCidr(other.address, cidr) && !except.some((excluded) => inCidr(other.address!, excluded));
  }
  if (other.namespaceLabels === undefined) return false; // not a pod: only a rule without peers reaches it
  // A podSelector alone means the policy's own namespace.
  const namespaceOk =
    peer.namespaceSelector === undefined
      ? JSON.stringify(other.namespaceLabels) === JSON.stringify(policyNamespaceLabels)
      : matches(peer.namespaceSelector, other.namespaceLabels);
  return namespaceOk && (peer.podSelector === undefined || matches(peer.podSelector, other.labels));
}

function portMatches(rule: Rule, target: Endpoint, port: Endpoint['ports'][number]): boolean {
  if (rule.ports === undefined || rule.ports.length === 0) return true;
  return rule.ports.some((candidate) => {
    if ((candidate.protocol ?? 'TCP') !== port.protocol) return false;
    if (candidate.port === undefined) return true;
    if (typeof candidate.port === 'number') return candidate.port === port.port;
    // A named port is looked up among the destination pod's container ports.
    return target.ports.some((own) => own.name === candidate.port && own.port === port.port);
  });
}

function allowed(policies: K8sObject[], namespaceLabels: Record<string, string>, from: Endpoint, to: Endpoint, port: Endpoint['ports'][number]): boolean {
  const side = (endpoint: Endpoint, direction: 'Ingress' | 'Egress', peer: Endpoint) => {
    if (!endpoint.inRelease) return true; // outside the release, these policies do not apply
    const selecting = policies.filter(
      (policy) => matches(policy.spec.podSelector, endpoint.labels) && (policy.spec.policyTypes ?? ['Ingress']).includes(direction),
    );
    if (selecting.length === 0) return true;
    const key = direction === 'Ingress' ? 'ingress' : 'egress';
    const peersKey = direction === 'Ingress' ? 'from' : 'to';
    return selecting.some((policy) =>
      ((policy.spec[key] ?? []) as Rule[]).some((rule) => {
        const peers = rule[peersKey];
        const peerOk = peers === undefined || peers.length === 0 || peers.some((candidate) => peerMatches(candidate, peer, namespaceLabels));
        return peerOk && portMatches(rule, to, port);
      }),
    );
  };
  return side(from, 'Egress', to) && side(to, 'Ingress', from);
}

/** Every allowed connection between the endpoints, as "from -> to:port/protocol" lines, sorted. */
export function allowedConnections(policies: K8sObject[], namespaceLabels: Record<string, string>, endpoints: Endpoint[]): string[] {
  const lines = new Set<string>();
  for (const from of endpoints) {
    for (const to of endpoints) {
      // Between two peers outside the release, these policies decide nothing.
      if (from === to || (!from.inRelease && !to.inRelease)) continue;
      for (const port of to.ports) {
        if (allowed(policies, namespaceLabels, from, to, port)) lines.add(`${from.name} -> ${to.name}:${port.port}/${port.protocol}`);
      }
    }
  }
  return [...lines].sort();
}

/** The connections as a Markdown table (docs/PHASE9_INGRESS.md shows exactly this). */
export function connectionsTable(lines: string[]): string {
  const rows = lines.map((line) => {
    const [, from, to, port] = /^(.+) -> (.+):(\d+\/\w+)$/.exec(line)!;
    return `| ${from} | ${to} | ${port} |`;
  });
  return ['| from | to | port |', '|---|---|---|', ...rows].join('\n');
}
