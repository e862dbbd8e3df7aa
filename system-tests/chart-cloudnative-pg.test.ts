import { readFileSync } from 'node:fs';
import { chmod, chown, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client } from '@wiki/test-support/http';
import { PostgresServer, postgresUserIfRoot, TEST_DB_PASSWORD, TEST_DB_USER } from '@wiki/test-support/postgres';
import { runCommand } from '@wiki/test-support/run-command';
import { startService, type ServiceProcess } from 'wiki-service/service-process';
import { until } from '@wiki/test-support/wait';
import { apiEnvironment, postgresMissing } from './support/chart-env.js';
import { skipLoudly } from './support/skip.js';
import { parse as parseYaml } from 'yaml';
import { BARMAN_CLOUD_PLUGIN_VERSION, CLOUDNATIVE_PG_VERSION, validateCloudnativePgResource } from './support/cloudnative-pg.js';
import { configMapData, helm, NAMESPACE, RELEASE, renderChart, REPO_ROOT, type K8sObject } from './support/helm.js';
import { byKind, CI_DIR, componentObject, named, valuesOf } from './support/rendered.js';

// The cloudnative-pg database mode (phase 12, docs/PHASE12_HIGH_AVAILABILITY.md): the
// CloudNativePG resources the chart renders, the API's connection to them, what the
// chart refuses, and the operator's API as the schemas of support/cloudnative-pg.ts
// hold it. No operator runs here (no Kubernetes API server): what it does with these
// objects is proven around it (point-in-time-recovery.test.ts, the failover tests).

const VALUES_FILE = join(CI_DIR, 'cloudnative-pg-values.yaml');
const skipTls = skipLoudly(postgresMissing(), 'the TLS tests of the cloudnative-pg mode are');
const CLUSTER = `${RELEASE}-wiki-chart-postgresql`;
const POOLER = `${CLUSTER}-pooler-rw`;

/** helm template with ci/cloudnative-pg-values.yaml and these values; postgresql.conf parameters are strings (--set-string). */
async function templateWith(...set: string[]) {
  const args = ['template', RELEASE, join(REPO_ROOT, 'wiki-chart'), '--namespace', NAMESPACE, '--values', VALUES_FILE];
  for (const value of set) args.push(value.startsWith('cloudnativePg.parameters.') ? '--set-string' : '--set', value);
  return helm(args);
}

describe('database.mode cloudnative-pg (ci/cloudnative-pg-values.yaml)', () => {
  let objects: K8sObject[];
  let cluster: K8sObject;
  const values = valuesOf([VALUES_FILE]);
  beforeAll(async () => {
    objects = await renderChart([VALUES_FILE]);
    cluster = byKind(objects, 'Cluster')[0]!;
  });

  it('renders a Cluster, an ObjectStore, a ScheduledBackup and a Pooler, and nothing of the built-in PostgreSQL', () => {
    expect(objects.filter((object) => object.apiVersion.includes('cnpg.io')).map((object) => `${object.kind}/${object.metadata.name}`)).toEqual([
      `Cluster/${CLUSTER}`,
      `ObjectStore/${RELEASE}-wiki-chart-backups`,
      `Pooler/${POOLER}`,
      `ScheduledBackup/${CLUSTER}-nightly`,
    ]);
    expect(byKind(objects, 'StatefulSet')).toEqual([]);
    expect(byKind(objects, 'CronJob')).toEqual([]);
    // No password the chart invents: the operator makes the API's (<cluster>-app).
    expect(byKind(objects, 'Job')).toEqual([]);
    expect(byKind(objects, 'Secret').map((secret) => secret.metadata.labels['app.kubernetes.io/component'])).not.toContain('database');
  });

  it('the Cluster: 3 instances, a synchronous quorum of one standby with durability required, one instance per node, sizes, resources and settings from values', () => {
    const spec = cluster.spec;
    expect(spec.instances).toBe(3);
    expect(spec.postgresql.synchronous).toEqual({ method: 'any', number: 1, dataDurability: 'required' });
    expect(spec.affinity).toEqual({ enablePodAntiAffinity: true, podAntiAffinityType: 'required', topologyKey: 'kubernetes.io/hostname' });
    expect(spec.storage).toEqual({ size: '20Gi', storageClass: 'fast-ssd' });
    expect(spec.walStorage).toEqual({ size: '2Gi' });
    expect(spec.resources).toEqual(values.cloudnativePg.resources);
    expect(spec.postgresql.parameters).toEqual(values.cloudnativePg.parameters);
    expect(spec.imageName).toBe('ghcr.io/cloudnative-pg/postgresql:15.18-minimal-trixie');
    // The API's database and its owner at bootstrap; the operator makes <cluster>-app for it.
    expect(spec.bootstrap).toEqual({ initdb: { database: 'wiki', owner: 'wiki', dataChecksums: true } });
    // Helm never deletes the database, not even at uninstall.
    expect(cluster.metadata.annotations['helm.sh/resource-policy']).toBe('keep');
  });

  it('continuous backups through the Barman Cloud plugin: WAL archiving, an ObjectStore with its credentials Secret and retention, a nightly base backup', () => {
    expect(cluster.spec.plugins).toEqual([
      {
        name: 'barman-cloud.cloudnative-pg.io',
        isWALArchiver: true,
        parameters: { barmanObjectName: `${RELEASE}-wiki-chart-backups`, serverName: CLUSTER },
      },
    ]);
    const store = byKind(objects, 'ObjectStore')[0]!;
    expect(store.spec.retentionPolicy).toBe('30d');
    expect(store.spec.configuration).toEqual({
      destinationPath: 's3://wiki-backups/production',
      endpointURL: 'http://minio.minio:9000',
      s3Credentials: {
        accessKeyId: { name: 'wiki-backups-s3', key: 'ACCESS_KEY_ID' },
        secretAccessKey: { name: 'wiki-backups-s3', key: 'ACCESS_SECRET_KEY' },
      },
      wal: { compression: 'gzip' },
      data: { compression: 'gzip' },
    });
    const backup = byKind(objects, 'ScheduledBackup')[0]!;
    expect(backup.spec).toEqual({
      schedule: '0 30 2 * * *',
      immediate: true,
      cluster: { name: CLUSTER },
      target: 'prefer-standby',
      backupOwnerReference: 'self',
      method: 'plugin',
      pluginConfiguration: { name: 'barman-cloud.cloudnative-pg.io' },
    });
  });

  it("the API connects to the Pooler (PgBouncer, transaction mode, with prepared statements) with the operator's <cluster>-app password, and checks the server's certificate against the Cluster's CA", () => {
    const pooler = byKind(objects, 'Pooler')[0]!;
    expect(pooler.spec.cluster).toEqual({ name: CLUSTER });
    expect(pooler.spec.type).toBe('rw');
    expect(pooler.spec.pgbouncer.poolMode).toBe('transaction');
    expect(Number(pooler.spec.pgbouncer.parameters.max_prepared_statements)).toBeGreaterThan(0);
    // The instances' certificate must name the Pooler's Service, which the API checks.
    expect(cluster.spec.certificates.serverAltDNSNames).toEqual([POOLER, `${POOLER}.${NAMESPACE}`, `${POOLER}.${NAMESPACE}.svc`]);

    const config = componentObject(objects, 'ConfigMap', 'api')!.data;
    expect(config).toMatchObject({ PGHOST: POOLER, PGPORT: '5432', PGDATABASE: 'wiki', PGUSER: 'wiki', PGSSLMODE: 'verify-full' });
    const pod = componentObject(objects, 'Deployment', 'api')!.spec.template.spec;
    for (const container of [...pod.initContainers, ...pod.containers]) {
      const password = container.env.find((variable: { name: string }) => variable.name === 'PGPASSWORD');
      expect(password.valueFrom.secretKeyRef, container.name).toEqual({ name: `${CLUSTER}-app`, key: 'password' });
      expect(
        container.volumeMounts.find((mount: { name: string }) => mount.name === 'database-ca'),
        container.name,
      ).toEqual({
        name: 'database-ca',
        mountPath: '/etc/wiki/database-ca',
        readOnly: true,
      });
    }
    expect(config.NODE_EXTRA_CA_CERTS).toBe('/etc/wiki/database-ca/ca.crt');
    // Only the CA's certificate reaches the pod, never its key.
    expect(pod.volumes.find((volume: { name: string }) => volume.name === 'database-ca').secret).toEqual({
      secretName: `${CLUSTER}-ca`,
      items: [{ key: 'ca.crt', path: 'ca.crt' }],
    });
  });

  it('without the Pooler, the API connects to <cluster>-rw; a named appSecret replaces <cluster>-app in the bootstrap and for the API', async () => {
    const direct = await renderChart([VALUES_FILE], ['cloudnativePg.pooler.enabled=false', 'cloudnativePg.appSecret=wiki-db-owner']);
    expect(byKind(direct, 'Pooler')).toEqual([]);
    expect(componentObject(direct, 'ConfigMap', 'api')!.data.PGHOST).toBe(`${CLUSTER}-rw`);
    expect(byKind(direct, 'Cluster')[0]!.spec.certificates).toBeUndefined();
    expect(byKind(direct, 'Cluster')[0]!.spec.bootstrap.initdb.secret).toEqual({ name: 'wiki-db-owner' });
    const container = componentObject(direct, 'Deployment', 'api')!.spec.template.spec.containers[0];
    expect(container.env.find((variable: { name: string }) => variable.name === 'PGPASSWORD').valueFrom.secretKeyRef).toEqual({
      name: 'wiki-db-owner',
      key: 'password',
    });
  });

  it("recovery is one values change: a new Cluster bootstrapped from the old one's backups, to a target time, archiving under its own name", async () => {
    const restored = await renderChart(
      [VALUES_FILE],
      ['cloudnativePg.clusterName=wiki-db-restored', `cloudnativePg.recovery.fromCluster=${CLUSTER}`, 'cloudnativePg.recovery.targetTime=2026-12-05T14:01:59Z'],
    );
    const spec = byKind(restored, 'Cluster')[0]!.spec;
    expect(spec.bootstrap).toEqual({
      recovery: { source: CLUSTER, database: 'wiki', owner: 'wiki', recoveryTarget: { targetTime: '2026-12-05T14:01:59Z' } },
    });
    expect(spec.externalClusters).toEqual([
      {
        name: CLUSTER,
        plugin: { name: 'barman-cloud.cloudnative-pg.io', parameters: { barmanObjectName: `${RELEASE}-wiki-chart-backups`, serverName: CLUSTER } },
      },
    ]);
    // The new Cluster archives into a folder of its own, never into the one it restores from.
    expect(spec.plugins[0].parameters.serverName).toBe('wiki-db-restored');
    expect(componentObject(restored, 'ConfigMap', 'api')!.data.PGHOST).toBe('wiki-db-restored-pooler-rw');
    expect(byKind(restored, 'ScheduledBackup')[0]!.spec.cluster).toEqual({ name: 'wiki-db-restored' });
    for (const object of restored.filter((candidate) => candidate.apiVersion.includes('cnpg.io'))) validateCloudnativePgResource(object);
  });

  it("Prometheus scrapes every instance's metrics port and every PgBouncer's, found by the operator's labels, as jobs postgresql and pgbouncer", () => {
    const scrapeConfigs = (parseYaml(configMapData(objects, 'prometheus-config')['prometheus.yml']!) as { scrape_configs: any[] }).scrape_configs;
    const job = (name: string) => scrapeConfigs.find((config) => config.job_name === name);
    expect(job('postgresql').kubernetes_sd_configs[0].selectors).toEqual([{ role: 'pod', label: `cnpg.io/cluster=${CLUSTER},cnpg.io/podRole=instance` }]);
    expect(job('postgresql').relabel_configs[0]).toEqual({
      source_labels: ['__meta_kubernetes_pod_container_name', '__meta_kubernetes_pod_container_port_name'],
      regex: 'postgres;metrics',
      action: 'keep',
    });
    expect(job('pgbouncer').kubernetes_sd_configs[0].selectors).toEqual([{ role: 'pod', label: `cnpg.io/podRole=pooler,cnpg.io/poolerName=${POOLER}` }]);
    expect(job('pgbouncer').relabel_configs[0].regex).toBe('pgbouncer;metrics');
  });

  it('with the PodMonitor option, the same two jobs for the Prometheus Operator', async () => {
    const monitors = byKind(await renderChart([VALUES_FILE], ['api.metrics.podMonitor.enabled=true']), 'PodMonitor');
    const byName = (name: string) => monitors.find((monitor) => monitor.metadata.name === name)!;
    expect(byName(CLUSTER).spec.selector.matchLabels).toEqual({ 'cnpg.io/cluster': CLUSTER, 'cnpg.io/podRole': 'instance' });
    expect(byName(CLUSTER).spec.podMetricsEndpoints[0].relabelings).toEqual([{ targetLabel: 'job', replacement: 'postgresql' }]);
    expect(byName(POOLER).spec.podMetricsEndpoints[0].relabelings).toEqual([{ targetLabel: 'job', replacement: 'pgbouncer' }]);
  });
});

describe('what the cloudnative-pg mode refuses, saying what to change', () => {
  it.each([
    [
      'a recovery from the Cluster itself',
      [`cloudnativePg.recovery.fromCluster=${CLUSTER}`],
      'a recovery creates a new Cluster, so give cloudnativePg.clusterName a new name',
    ],
    [
      'a target time with nothing to recover from',
      ['cloudnativePg.recovery.targetTime=2026-12-05T14:01:59Z'],
      'targetTime is set without cloudnativePg.recovery.fromCluster',
    ],
    [
      'a quorum no standby set can meet',
      ['cloudnativePg.instances=2', 'cloudnativePg.synchronous.number=2'],
      'cloudnativePg.synchronous.number is 2, but 2 instances have only 1 standbys',
    ],
    [
      'more API connections than max_connections',
      ['cloudnativePg.pooler.enabled=false', 'cloudnativePg.parameters.max_connections=20'],
      'cloudnativePg.parameters.max_connections is 20, but up to 33 connections may be needed',
    ],
    [
      'more PgBouncer connections than max_connections',
      ['cloudnativePg.parameters.max_connections=40'],
      'up to 45 connections may be needed: 2 PgBouncer pods',
    ],
    ['backups without a destination', ['cloudnativePg.backup.objectStore.destinationPath='], "at '/cloudnativePg/backup/objectStore/destinationPath'"],
    ['backups without credentials', ['cloudnativePg.backup.objectStore.credentialsSecret='], "at '/cloudnativePg/backup/objectStore/credentialsSecret'"],
    ["a base backup schedule in Kubernetes's five fields", ['cloudnativePg.backup.schedule=30 2 * * *'], "at '/cloudnativePg/backup/schedule'"],
    [
      'a target time without its offset',
      [`cloudnativePg.recovery.fromCluster=old`, 'cloudnativePg.recovery.targetTime=2026-12-05 14:01:59'],
      "at '/cloudnativePg/recovery/targetTime'",
    ],
    ['an external host beside it (two databases named)', ['externalDatabase.host=db.example'], "at '/externalDatabase/host': value must be ''"],
    ['a durability the operator does not know', ['cloudnativePg.synchronous.dataDurability=strict'], "at '/cloudnativePg/synchronous/dataDurability'"],
  ])('%s', async (_name, set, message) => {
    const result = await templateWith(...set);
    expect(result.ok).toBe(false);
    expect(result.output).toContain(message);
  });

  it("a postgresql.conf setting given as a number (the operator's API takes strings only)", async () => {
    const result = await helm([
      'template',
      RELEASE,
      join(REPO_ROOT, 'wiki-chart'),
      '--values',
      VALUES_FILE,
      '--set',
      'cloudnativePg.parameters.max_connections=200',
    ]);
    expect(result.ok).toBe(false);
    expect(result.output).toContain("at '/cloudnativePg/parameters/max_connections': got number, want string");
  });

  it('the chart before 0.15 chose the database with postgresql.enabled: refused, naming what replaced it', async () => {
    const result = await helm(['template', RELEASE, join(REPO_ROOT, 'wiki-chart'), '--set', 'postgresql.enabled=false']);
    expect(result.ok).toBe(false);
    expect(result.output).toContain('postgresql.enabled was replaced by database.mode in chart 0.15');
  });
});

describe(`the CloudNativePG ${CLOUDNATIVE_PG_VERSION} and Barman Cloud plugin ${BARMAN_CLOUD_PLUGIN_VERSION} schemas refuse what the API server would`, () => {
  let objects: K8sObject[];
  beforeAll(async () => {
    objects = await renderChart([VALUES_FILE]);
  });
  const kind = (name: string) => structuredClone(objects.find((object) => object.kind === name)!);

  it('every rendered object passes', () => {
    const resources = objects.filter((object) => object.apiVersion.includes('cnpg.io'));
    expect(resources).toHaveLength(4);
    for (const object of resources) expect(() => validateCloudnativePgResource(object), object.kind).not.toThrow();
  });

  it.each([
    [
      'a misspelt field',
      'Cluster',
      (cluster: K8sObject) => ((cluster.spec.instance = 3), delete cluster.spec.instances),
      /unknown field "instance"|must have required property 'instances'/,
    ],
    [
      'a misplaced field (synchronous belongs under postgresql)',
      'Cluster',
      (cluster: K8sObject) => (cluster.spec.synchronous = cluster.spec.postgresql.synchronous),
      /\/spec: unknown field "synchronous"/,
    ],
    [
      'a value outside the enumeration',
      'Cluster',
      (cluster: K8sObject) => (cluster.spec.postgresql.synchronous.dataDurability = 'strict'),
      /dataDurability: must be equal to one of the allowed values/,
    ],
    ['a number as a string', 'Cluster', (cluster: K8sObject) => (cluster.spec.instances = '3'), /\/spec\/instances: must be integer/],
    [
      'two ways to bootstrap',
      'Cluster',
      (cluster: K8sObject) => (cluster.spec.bootstrap.recovery = { source: 'old' }),
      /\/spec\/bootstrap: must NOT have more than 1 properties/,
    ],
    [
      "Kubernetes's five-field schedule",
      'ScheduledBackup',
      (backup: K8sObject) => (backup.spec.schedule = '30 2 * * *'),
      /\/spec\/schedule: must match pattern/,
    ],
    [
      'a credentials reference without its key',
      'ObjectStore',
      (store: K8sObject) => delete store.spec.configuration.s3Credentials.accessKeyId.key,
      /must have required property 'key'/,
    ],
    [
      'a compression barman cannot use for base backups',
      'ObjectStore',
      (store: K8sObject) => (store.spec.configuration.data.compression = 'zstd'),
      /\/data\/compression/,
    ],
    [
      'a PgBouncer pool mode that does not exist',
      'Pooler',
      (pooler: K8sObject) => (pooler.spec.pgbouncer.poolMode = 'statement'),
      /poolMode: must be equal to one of the allowed values/,
    ],
    [
      'a PgBouncer setting the operator does not pass on',
      'Pooler',
      (pooler: K8sObject) => (pooler.spec.pgbouncer.parameters.auth_file = '/etc/passwd'),
      /parameters: property name must be valid/,
    ],
  ])('%s', (_name, kindName, breakIt, complaint) => {
    const object = kind(kindName);
    breakIt(object);
    expect(() => validateCloudnativePgResource(object)).toThrow(complaint);
  });

  it('docs/PHASE12_HIGH_AVAILABILITY.md names the operator and plugin versions the chart was written for', () => {
    const doc = readFileSync(join(REPO_ROOT, 'docs', 'PHASE12_HIGH_AVAILABILITY.md'), 'utf8');
    expect(doc).toContain(`CloudNativePG ${CLOUDNATIVE_PG_VERSION}`);
    expect(doc).toContain(`Barman Cloud plugin ${BARMAN_CLOUD_PLUGIN_VERSION}`);
    const values = readFileSync(join(REPO_ROOT, 'wiki-chart', 'values.yaml'), 'utf8');
    expect(values).toContain(`written for CloudNativePG\n# ${CLOUDNATIVE_PG_VERSION} and the plugin ${BARMAN_CLOUD_PLUGIN_VERSION}`);
    expect(named(objects, 'Cluster', CLUSTER)).toBeDefined();
  });
});

// The API's connection as the cloudnative-pg mode configures it (PGSSLMODE verify-full,
// NODE_EXTRA_CA_CERTS pointing at the Cluster's CA certificate), against a real
// PostgreSQL serving TLS with a certificate of a CA made here, as the operator makes
// one per Cluster: the API connects only when the CA signed it for the name dialled.
describe.skipIf(skipTls)("the API against a PostgreSQL serving the operator's kind of certificate", () => {
  const DATABASE = 'wiki_over_tls';
  let dir: string;
  let server: PostgresServer;
  const services: ServiceProcess[] = [];

  /** A CA, and a server certificate it signs for `names`; another CA that signed nothing here. */
  async function makeCertificates(names: string[]) {
    const openssl = (...args: string[]) => runCommand('openssl', args);
    for (const ca of ['ca', 'other-ca']) {
      await openssl(
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-days',
        '2',
        '-subj',
        `/CN=${ca}`,
        '-keyout',
        join(dir, `${ca}.key`),
        '-out',
        join(dir, `${ca}.crt`),
      );
    }
    await openssl(
      'req',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-subj',
      `/CN=${names[0]}`,
      '-keyout',
      join(dir, 'server.key'),
      '-out',
      join(dir, 'server.csr'),
    );
    await writeFile(join(dir, 'san.ext'), `subjectAltName=${names.map((name) => `DNS:${name}`).join(',')}\n`);
    await openssl(
      'x509',
      '-req',
      '-in',
      join(dir, 'server.csr'),
      '-CA',
      join(dir, 'ca.crt'),
      '-CAkey',
      join(dir, 'ca.key'),
      '-CAcreateserial',
      '-days',
      '2',
      '-extfile',
      join(dir, 'san.ext'),
      '-out',
      join(dir, 'server.crt'),
    );
  }

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'wiki-cnpg-tls-'));
    await makeCertificates(['localhost']);
    await chmod(dir, 0o755);
    // PostgreSQL reads its key as its own user, and only a key no one else may read.
    await chmod(join(dir, 'server.key'), 0o600);
    const runAs = postgresUserIfRoot();
    if (runAs !== undefined) for (const file of ['server.key', 'server.crt']) await chown(join(dir, file), runAs.uid, runAs.gid);
    server = await PostgresServer.create({
      settings: ['max_connections=200', 'ssl=on', `ssl_cert_file=${join(dir, 'server.crt')}`, `ssl_key_file=${join(dir, 'server.key')}`],
    });
    await server.query(`CREATE DATABASE ${DATABASE} OWNER ${TEST_DB_USER}`);
  }, 60_000);
  afterAll(async () => {
    await Promise.all(services.map((service) => service.stop('SIGKILL')));
    await server?.destroy();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** The API started with its pod's environment in the cloudnative-pg mode, pointed at `host` (a name the certificate may or may not hold) and this server. */
  async function apiPointedAt(host: string, caFile: string): Promise<ServiceProcess> {
    const rendered = await renderChart([VALUES_FILE]);
    // The Secret the operator makes for the Cluster's owner, as it makes it.
    const base64 = (text: string) => Buffer.from(text).toString('base64');
    rendered.push({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: `${CLUSTER}-app` },
      data: { username: base64(TEST_DB_USER), password: base64(TEST_DB_PASSWORD) },
    });
    const { api } = apiEnvironment(rendered);
    expect(api).toMatchObject({ PGSSLMODE: 'verify-full', NODE_EXTRA_CA_CERTS: '/etc/wiki/database-ca/ca.crt', PGPASSWORD: TEST_DB_PASSWORD });
    const service = await startService({
      ...api,
      PGHOST: host,
      PGPORT: String(server.port),
      PGDATABASE: DATABASE,
      PGUSER: TEST_DB_USER,
      // The CA certificate the pod mounts from <cluster>-ca, here.
      NODE_EXTRA_CA_CERTS: caFile,
      SHUTDOWN_DELAY_SECONDS: '0',
    });
    services.push(service);
    return service;
  }
  it("with the Cluster's CA and the certificate's name, the API is ready and writes over TLS", async () => {
    const service = await apiPointedAt('localhost', join(dir, 'ca.crt'));
    await until('the API to be ready', 30_000, async () => ((await fetch(`${service.baseUrl}/ready`)).status === 200 ? true : undefined));
    expect((await client(service.baseUrl).post('/users', { name: 'over TLS' })).status).toBe(200);
    const [ssl] = await server.query<{ encrypted: boolean }>(
      "SELECT bool_and(ssl) AS encrypted FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) WHERE usename = 'wiki' AND pid <> pg_backend_pid() AND client_port IS NOT NULL AND backend_type = 'client backend' AND application_name <> 'psql'",
    );
    expect(ssl!.encrypted).toBe(true);
  });

  // The service checks its database before it listens (the pod's wait-for-database init
  // container, with the same environment, would wait and then fail the same way).
  it('with another CA, or a name the certificate does not hold, it never connects, and says why', async () => {
    await expect(apiPointedAt('localhost', join(dir, 'other-ca.crt'))).rejects.toThrow(/unable to verify the first certificate/);
    await expect(apiPointedAt('127.0.0.1', join(dir, 'ca.crt'))).rejects.toThrow(/Hostname\/IP does not match certificate's altnames/);
  });
});
