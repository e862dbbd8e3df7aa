import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { NAMESPACE, RELEASE, REPO_ROOT, renderChart, type K8sObject } from './support/helm.js';
import { allowedConnections, connectionsTable, releasePods, type Endpoint } from './support/network-policy.js';
import { byKind, CI_DIR, componentObject, named, VALUES_SETS } from './support/rendered.js';

// The Ingress and the network policies (phase 9), rendered with ci/ingress-values.yaml:
// every path leads somewhere real, and the policies allow exactly the connections the
// release needs (evaluated, not eyeballed).

// Peers outside the release that every policy test has: the cluster's DNS, the
// Kubernetes API (an address outside the pod network), and a pod of the same namespace
// that the release must keep out.
const DNS: Endpoint = {
  name: 'DNS',
  labels: { 'k8s-app': 'kube-dns' },
  namespaceLabels: { 'kubernetes.io/metadata.name': 'kube-system' },
  ports: [
    { protocol: 'UDP', port: 53 },
    { protocol: 'TCP', port: 53 },
  ],
  inRelease: false,
};
const KUBERNETES_API: Endpoint = {
  name: 'Kubernetes API',
  labels: {},
  namespaceLabels: undefined,
  ports: [
    { protocol: 'TCP', port: 443 },
    { protocol: 'TCP', port: 6443 },
  ],
  inRelease: false,
};
const ANOTHER_POD: Endpoint = {
  name: 'another pod in the namespace',
  labels: { app: 'other' },
  namespaceLabels: { 'kubernetes.io/metadata.name': NAMESPACE },
  ports: [{ protocol: 'TCP', port: 8080 }],
  inRelease: false,
};

describe('the Ingress and the network policies (ci/ingress-values.yaml)', () => {
  let objects: K8sObject[];
  beforeAll(async () => {
    objects = await renderChart([join(CI_DIR, 'ingress-values.yaml')]);
  });

  it('both are off by default', async () => {
    const defaults = await renderChart();
    expect(byKind(defaults, 'Ingress')).toEqual([]);
    expect(byKind(defaults, 'NetworkPolicy')).toEqual([]);
  });

  it("every path of the Ingress leads to a rendered Service's port; what is not exposed has no path", () => {
    const [ingress] = byKind(objects, 'Ingress');
    expect(ingress!.spec.ingressClassName).toBe('nginx');
    expect(ingress!.spec.tls).toEqual([{ secretName: 'wiki-tls', hosts: ['wiki.example.com'] }]);
    const paths = ingress!.spec.rules[0].http.paths as Array<{
      path: string;
      pathType: string;
      backend: { service: { name: string; port: { name: string } } };
    }>;
    for (const { path, backend } of paths) {
      const service = named(objects, 'Service', backend.service.name);
      expect(service, path).toBeDefined();
      expect(
        service!.spec.ports.map((port: { name: string }) => port.name),
        path,
      ).toContain(backend.service.port.name);
    }
    const component = (name: string) => named(objects, 'Service', name)!.metadata.labels['app.kubernetes.io/component'];
    expect(paths.map(({ path, pathType, backend }) => `${path} ${pathType} ${component(backend.service.name)}`)).toEqual([
      '/users Prefix api',
      '/user Prefix api',
      '/posts Prefix api',
      '/docs Prefix api',
      '/openapi.json Exact api',
      '/grafana Prefix grafana',
      '/prometheus Prefix prometheus',
    ]);
    expect(ingress!.spec.rules[0].host).toBe('wiki.example.com');
  });

  it.each([
    [
      'a host without TLS',
      ['ingress.enabled=true', 'ingress.hosts[0]=wiki.example.org'],
      'root_url = http://wiki.example.org/grafana/',
      'cookie_secure = false',
    ],
    ['no host (the Ingress answers any)', ['ingress.enabled=true'], 'root_url = %(protocol)s://%(domain)s:%(http_port)s/grafana/', 'cookie_secure = false'],
    ['no Ingress', [], 'root_url = %(protocol)s://%(domain)s:%(http_port)s/', 'cookie_secure = false'],
  ])("Grafana's root_url and cookie_secure with %s", async (_, set, rootUrl, cookieSecure) => {
    const ini = (await renderChart([], set)).find((object) => object.kind === 'ConfigMap' && object.metadata.name.endsWith('-grafana-config'))!.data[
      'grafana.ini'
    ];
    expect(ini).toContain(`${rootUrl}\n`);
    expect(ini).toContain(`${cookieSecure}\n`);
  });

  it('Grafana and Prometheus serve under the paths the Ingress gives them', () => {
    const grafanaIni = objects.find((object) => object.kind === 'ConfigMap' && object.metadata.name.endsWith('-grafana-config'))!.data['grafana.ini'];
    // Grafana's links, redirects and cookies follow the Ingress's host and TLS, as Prometheus's external URL does.
    expect(grafanaIni).toContain('domain = wiki.example.com\n');
    expect(grafanaIni).toContain('root_url = https://wiki.example.com/grafana/\n');
    expect(grafanaIni).toContain('cookie_secure = true\n');
    expect(grafanaIni).toContain('serve_from_sub_path = true');
    const prometheus = componentObject(objects, 'Deployment', 'prometheus')!;
    expect(prometheus.spec.template.spec.containers[0].args).toContain('--web.route-prefix=/prometheus');
    // The UI's links and redirects follow the external URL, derived from the Ingress's host and TLS.
    expect(prometheus.spec.template.spec.containers[0].args).toContain('--web.external-url=https://wiki.example.com/prometheus');
    expect(prometheus.spec.template.spec.containers[0].readinessProbe.httpGet.path).toBe('/prometheus/-/ready');
  });

  it('every network policy selects pods the chart really runs', () => {
    const pods = releasePods(objects, {});
    for (const policy of byKind(objects, 'NetworkPolicy')) {
      const selected = pods.filter((pod) => Object.entries(policy.spec.podSelector.matchLabels ?? {}).every(([key, value]) => pod.labels[key] === value));
      expect(selected.length, policy.metadata.name).toBeGreaterThan(0);
    }
  });

  // Who may talk to whom, computed from the rendered policies (support/network-policy.ts)
  // for the chart's pods and the peers outside the release a cluster would have.
  const NAMESPACE_LABELS = { 'kubernetes.io/metadata.name': NAMESPACE };
  const OUTSIDE: Endpoint[] = [
    {
      name: 'ingress controller',
      labels: { 'app.kubernetes.io/name': 'ingress-nginx' },
      namespaceLabels: { 'kubernetes.io/metadata.name': 'ingress-nginx' },
      ports: [],
      inRelease: false,
    },
    DNS,
    KUBERNETES_API,
    ANOTHER_POD,
    // Where Alertmanager's notifications go: a webhook, Slack or a mail server on the internet.
    {
      name: 'a receiver on the internet',
      labels: {},
      namespaceLabels: undefined,
      ports: [
        { protocol: 'TCP', port: 443 },
        { protocol: 'TCP', port: 587 },
        { protocol: 'TCP', port: 25 },
      ],
      inRelease: false,
    },
  ];
  const connections = () => allowedConnections(byKind(objects, 'NetworkPolicy'), NAMESPACE_LABELS, [...releasePods(objects, NAMESPACE_LABELS), ...OUTSIDE]);

  it('allow exactly: the ingress controller to the API, Grafana and (exposed) Prometheus; Prometheus to the API, the exporter, Alertmanager and the Kubernetes API; Grafana to Prometheus; the API and the backup to PostgreSQL; Alertmanager to its receivers; the test pod to the API; every pod to DNS', () => {
    const dns = (from: string) => [`${from} -> DNS:53/TCP`, `${from} -> DNS:53/UDP`];
    expect(connections()).toEqual(
      [
        ...dns('alertmanager'),
        // Receivers are anywhere, so that rule names ports only: 443 reaches the
        // Kubernetes API too (Alertmanager has no token for it), and 25 stays closed.
        'alertmanager -> Kubernetes API:443/TCP',
        'alertmanager -> a receiver on the internet:443/TCP',
        'alertmanager -> a receiver on the internet:587/TCP',
        // Likewise the Kubernetes API's address varies between clusters: Prometheus's
        // rule names its ports only, so any HTTPS address is open to Prometheus.
        'prometheus -> a receiver on the internet:443/TCP',
        'prometheus -> alertmanager:9093/TCP',
        'api -> postgresql:5432/TCP',
        // The backup CronJob (and the restore Job) reach PostgreSQL only.
        'backup -> postgresql:5432/TCP',
        ...dns('backup'),
        ...dns('api'),
        // The database-credentials hook: the Kubernetes API (its address varies, so any
        // HTTPS address is open to it), and nothing reaches it.
        'credentials -> Kubernetes API:443/TCP',
        'credentials -> Kubernetes API:6443/TCP',
        'credentials -> a receiver on the internet:443/TCP',
        ...dns('credentials'),
        ...dns('grafana'),
        'grafana -> prometheus:9090/TCP',
        'ingress controller -> api:8000/TCP',
        'ingress controller -> grafana:3000/TCP',
        'ingress controller -> prometheus:9090/TCP',
        ...dns('postgresql'),
        ...dns('prometheus'),
        'prometheus -> Kubernetes API:443/TCP',
        'prometheus -> Kubernetes API:6443/TCP',
        'prometheus -> api:8000/TCP',
        // PostgreSQL's exporter, in PostgreSQL's pod.
        'prometheus -> postgresql:9187/TCP',
        ...dns('test'),
        'test -> api:8000/TCP',
      ].sort(),
    );
  });

  it('docs/PHASE9_INGRESS.md shows that computed table', () => {
    const doc = readFileSync(join(REPO_ROOT, 'docs', 'PHASE9_INGRESS.md'), 'utf8');
    expect(doc).toContain(connectionsTable(connections()));
  });

  it("a cluster's Prometheus (networkPolicy.externalPrometheus) may scrape the API and the exporter, and the chart's Grafana may query it; nothing else in its namespace may", async () => {
    const monitoring = { 'kubernetes.io/metadata.name': 'monitoring' };
    const clusterPrometheus: Endpoint = {
      name: 'cluster Prometheus',
      labels: { 'app.kubernetes.io/name': 'prometheus' },
      namespaceLabels: monitoring,
      ports: [{ protocol: 'TCP', port: 9090 }],
      inRelease: false,
    };
    const otherMonitoringPod: Endpoint = {
      name: 'another monitoring pod',
      labels: { 'app.kubernetes.io/name': 'grafana' },
      namespaceLabels: monitoring,
      ports: [{ protocol: 'TCP', port: 9090 }],
      inRelease: false,
    };
    const lines = async (set: string[]) => {
      const rendered = await renderChart([join(CI_DIR, 'existing-monitoring-values.yaml')], ['networkPolicy.enabled=true', ...set]);
      return allowedConnections(byKind(rendered, 'NetworkPolicy'), NAMESPACE_LABELS, [
        ...releasePods(rendered, NAMESPACE_LABELS),
        ...OUTSIDE,
        clusterPrometheus,
        otherMonitoringPod,
      ]);
    };
    const withGrafana = ['grafana.enabled=true', 'grafana.prometheusUrl=http://kube-prometheus-stack-prometheus.monitoring:9090'];
    const connected = await lines(withGrafana);
    expect(connected).toEqual(
      expect.arrayContaining(['cluster Prometheus -> api:8000/TCP', 'cluster Prometheus -> postgresql:9187/TCP', 'grafana -> cluster Prometheus:9090/TCP']),
    );
    expect(connected.filter((line) => line.includes('another monitoring pod'))).toEqual([]);
    expect(connected.filter((line) => line.startsWith('grafana -> ') && !line.includes('DNS'))).toEqual(['grafana -> cluster Prometheus:9090/TCP']);
    // Without the peers, the same release keeps the cluster's Prometheus out.
    const closed = await lines([...withGrafana, 'networkPolicy.externalPrometheus.peers=null']);
    expect(closed.filter((line) => line.includes('cluster Prometheus'))).toEqual([]);
  });

  // GKE's container-native load balancing health-checks the pods from Google's ranges,
  // and AWS's load balancer in IP mode sends from the VPC: neither is a pod in the
  // ingress controller's namespace.
  it('addresses in networkPolicy.ingressController.ipBlocks may reach the API, Grafana and an exposed Prometheus, and nothing else; an except is kept out', async () => {
    const outsideAt = (name: string, address: string): Endpoint => ({ name, labels: {}, namespaceLabels: undefined, ports: [], inRelease: false, address });
    const rendered = await renderChart(
      [join(CI_DIR, 'ingress-values.yaml')],
      [
        'networkPolicy.ingressController.ipBlocks[0].cidr=35.191.0.0/16',
        'networkPolicy.ingressController.ipBlocks[1].cidr=10.0.0.0/16',
        'networkPolicy.ingressController.ipBlocks[1].except[0]=10.0.5.0/24',
      ],
    );
    const lines = allowedConnections(byKind(rendered, 'NetworkPolicy'), NAMESPACE_LABELS, [
      ...releasePods(rendered, NAMESPACE_LABELS),
      outsideAt('GKE health check', '35.191.3.4'),
      outsideAt('ALB in the VPC', '10.0.1.20'),
      outsideAt('excepted subnet', '10.0.5.7'),
      outsideAt('elsewhere', '192.0.2.1'),
    ]);
    const fromOutside = lines.filter((line) => /^(GKE|ALB|excepted|elsewhere)/.test(line));
    expect(fromOutside).toEqual(
      ['ALB in the VPC', 'GKE health check']
        .flatMap((from) => [`${from} -> api:8000/TCP`, `${from} -> grafana:3000/TCP`, `${from} -> prometheus:9090/TCP`])
        .sort(),
    );
    // Without them (the default), none of these addresses gets in.
    const closed = allowedConnections(byKind(objects, 'NetworkPolicy'), NAMESPACE_LABELS, [
      ...releasePods(objects, NAMESPACE_LABELS),
      outsideAt('GKE health check', '35.191.3.4'),
    ]);
    expect(closed.filter((line) => line.startsWith('GKE'))).toEqual([]);
  });

  it("with the dumps copied to object storage, the backup pod reaches the store's port too (only in the peers networkPolicy.objectStore names)", async () => {
    const minio: Endpoint = {
      name: 'MinIO',
      labels: { app: 'minio' },
      namespaceLabels: { 'kubernetes.io/metadata.name': 'minio' },
      ports: [{ protocol: 'TCP', port: 9000 }],
      inRelease: false,
    };
    const lines = async (set: string[]) => {
      const rendered = await renderChart(
        [join(CI_DIR, 'production-values.yaml')],
        ['networkPolicy.enabled=true', 'postgresql.backup.objectStore.endpointURL=http://minio.minio:9000', ...set],
      );
      return allowedConnections(byKind(rendered, 'NetworkPolicy'), NAMESPACE_LABELS, [...releasePods(rendered, NAMESPACE_LABELS), ...OUTSIDE, minio]).filter(
        (line) => line.startsWith('backup -> '),
      );
    };
    const inCluster = [
      'networkPolicy.objectStore.ports[0]=9000',
      'networkPolicy.objectStore.peers[0].namespaceSelector.matchLabels.kubernetes\\.io/metadata\\.name=minio',
    ];
    expect(await lines(inCluster)).toEqual(['backup -> DNS:53/TCP', 'backup -> DNS:53/UDP', 'backup -> MinIO:9000/TCP', 'backup -> postgresql:5432/TCP']);
    // Without a copy, no way out.
    expect(await lines([...inCluster, 'postgresql.backup.objectStore.destinationPath='])).not.toContain('backup -> MinIO:9000/TCP');
  });

  it('without the policies, everything would be allowed (the evaluation can tell)', async () => {
    const open = await renderChart([], ['ingress.enabled=true']);
    const lines = allowedConnections(byKind(open, 'NetworkPolicy'), NAMESPACE_LABELS, [...releasePods(open, NAMESPACE_LABELS), ...OUTSIDE]);
    expect(lines).toContain('another pod in the namespace -> postgresql:5432/TCP');
    expect(lines).toContain('api -> another pod in the namespace:8080/TCP');
  });
});

// Cilium (GKE Dataplane V2) resolves a named port of an egress rule on the destination
// pods, and drops the rule when the name means several numbers among them: "web" is
// Prometheus's 9090 and Alertmanager's 9093, "http" the API's 8000 and Grafana's 3000
// (cilium/cilium#24779, #30003). Monitoring then stops with nothing in the chart's logs.
describe('every egress rule names its ports by number', () => {
  const namedEgressPorts = (objects: K8sObject[]) =>
    byKind(objects, 'NetworkPolicy').flatMap((policy) =>
      (policy.spec.egress ?? []).flatMap((rule: { ports?: Array<{ port?: number | string }> }) =>
        (rule.ports ?? []).filter((port) => typeof port.port !== 'number').map((port) => `${policy.metadata.name}: ${String(port.port)}`),
      ),
    );

  it.each(VALUES_SETS)('%s, with the network policies on', async (_name, files) => {
    const objects = await renderChart(files, ['networkPolicy.enabled=true', 'ingress.enabled=true', 'ingress.prometheus.enabled=true']);
    expect(byKind(objects, 'NetworkPolicy').length).toBeGreaterThan(0);
    expect(namedEgressPorts(objects)).toEqual([]);
  });

  it('the check finds a named one (it can fail)', () => {
    const policy = {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: 'p' },
      spec: { egress: [{ ports: [{ port: 'web' }, { port: 53 }] }] },
    };
    expect(namedEgressPorts([policy])).toEqual(['p: web']);
  });
});

// The cloudnative-pg mode (ci/cloudnative-pg-values.yaml, the Pooler and the network
// policies on): the operator's pods are not rendered by the chart, so they are added
// here with the labels CloudNativePG 1.30 gives them (pkg/specs/pods.go, jobs.go,
// pgbouncer/deployments.go), beside the operator itself and the object store.
describe('the network policies of the cloudnative-pg mode', () => {
  const NAMESPACE_LABELS = { 'kubernetes.io/metadata.name': NAMESPACE };
  const cluster = `${RELEASE}-wiki-chart-postgresql`;
  const operatorLabels = (extra: Record<string, string>) => ({
    'app.kubernetes.io/name': 'postgresql',
    'app.kubernetes.io/instance': cluster,
    'app.kubernetes.io/managed-by': 'cloudnative-pg',
    'cnpg.io/cluster': cluster,
    ...extra,
  });
  const inNamespace = (name: string, labels: Record<string, string>, ports: Endpoint['ports']): Endpoint => ({
    name,
    labels,
    namespaceLabels: NAMESPACE_LABELS,
    ports,
    // Selected by the release's policies when their selectors match: evaluated as the chart's own.
    inRelease: true,
  });
  // Two instances (a primary and a standby: "instance -> instance" is replication).
  const instance = (serial: number) =>
    inNamespace(
      'instance',
      operatorLabels({ 'app.kubernetes.io/component': 'database', 'cnpg.io/podRole': 'instance', 'cnpg.io/instanceName': `${cluster}-${serial}` }),
      [
        { protocol: 'TCP', port: 5432, name: 'postgresql' },
        { protocol: 'TCP', port: 9187, name: 'metrics' },
        { protocol: 'TCP', port: 8000, name: 'status' },
      ],
    );
  const OPERATOR_PODS: Endpoint[] = [
    instance(1),
    instance(2),
    // The job that clones a new instance from the primary (pg_basebackup).
    inNamespace(
      'join job',
      operatorLabels({ 'app.kubernetes.io/component': 'database', 'cnpg.io/jobRole': 'join', 'cnpg.io/instanceName': `${cluster}-4` }),
      [],
    ),
    inNamespace(
      'pgbouncer',
      operatorLabels({ 'app.kubernetes.io/component': 'pooler', 'cnpg.io/podRole': 'pooler', 'cnpg.io/poolerName': `${cluster}-pooler-rw` }),
      [
        { protocol: 'TCP', port: 5432, name: 'pgbouncer' },
        { protocol: 'TCP', port: 9127, name: 'metrics' },
      ],
    ),
  ];
  const OUTSIDE_PEERS: Endpoint[] = [
    {
      name: 'operator',
      labels: { 'app.kubernetes.io/name': 'cloudnative-pg' },
      namespaceLabels: { 'kubernetes.io/metadata.name': 'cnpg-system' },
      ports: [],
      inRelease: false,
    },
    {
      name: 'another pod in cnpg-system',
      labels: { 'app.kubernetes.io/name': 'barman-cloud' },
      namespaceLabels: { 'kubernetes.io/metadata.name': 'cnpg-system' },
      ports: [],
      inRelease: false,
    },
    {
      name: 'MinIO',
      labels: { app: 'minio' },
      namespaceLabels: { 'kubernetes.io/metadata.name': 'minio' },
      ports: [{ protocol: 'TCP', port: 9000 }],
      inRelease: false,
    },
    DNS,
    KUBERNETES_API,
    { ...ANOTHER_POD, ports: [{ protocol: 'TCP', port: 5432 }] },
  ];
  const connections = async (files: string[], set: string[] = [], operatorPods = OPERATOR_PODS) => {
    const rendered = await renderChart(files, set);
    const lines = allowedConnections(byKind(rendered, 'NetworkPolicy'), NAMESPACE_LABELS, [
      ...releasePods(rendered, NAMESPACE_LABELS),
      ...operatorPods,
      ...OUTSIDE_PEERS,
    ]);
    // What the chart's own pods do apart from the database is the other tests' concern.
    const database = ['instance', 'join job', 'pgbouncer'];
    return lines.filter((line) => database.some((name) => line.startsWith(`${name} -> `) || line.includes(` -> ${name}:`)));
  };

  it('allow exactly: the operator to the instances; instances and their jobs to each other; the API to PgBouncer and PgBouncer to the instances; Prometheus to both metrics ports; the instances to the Kubernetes API, DNS and the object store', async () => {
    const dns = (from: string) => [`${from} -> DNS:53/TCP`, `${from} -> DNS:53/UDP`];
    expect(await connections([join(CI_DIR, 'cloudnative-pg-values.yaml')])).toEqual(
      [
        'operator -> instance:5432/TCP',
        'operator -> instance:8000/TCP',
        'join job -> instance:5432/TCP',
        'join job -> instance:8000/TCP',
        ...dns('join job'),
        'join job -> Kubernetes API:443/TCP',
        'join job -> Kubernetes API:6443/TCP',
        'join job -> MinIO:9000/TCP',
        'instance -> instance:5432/TCP',
        'instance -> instance:8000/TCP',
        ...dns('instance'),
        'instance -> Kubernetes API:443/TCP',
        'instance -> Kubernetes API:6443/TCP',
        'instance -> MinIO:9000/TCP',
        'pgbouncer -> instance:5432/TCP',
        ...dns('pgbouncer'),
        'pgbouncer -> Kubernetes API:443/TCP',
        'pgbouncer -> Kubernetes API:6443/TCP',
        'api -> pgbouncer:5432/TCP',
        'prometheus -> instance:9187/TCP',
        'prometheus -> pgbouncer:9127/TCP',
      ].sort(),
    );
  });

  it('without the Pooler, the API reaches the instances directly; the other pods of the namespace reach neither', async () => {
    const withoutPooler = OPERATOR_PODS.filter((pod) => pod.name !== 'pgbouncer');
    const lines = await connections([join(CI_DIR, 'cloudnative-pg-values.yaml')], ['cloudnativePg.pooler.enabled=false'], withoutPooler);
    expect(lines).toContain('api -> instance:5432/TCP');
    expect(lines.filter((line) => line.includes('pgbouncer'))).toEqual([]);
    expect(lines.filter((line) => line.startsWith('another pod'))).toEqual([]);
  });
});
