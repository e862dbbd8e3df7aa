import { Ajv, type ValidateFunction } from 'ajv';
import type { K8sObject } from './helm.js';

// The custom resources of CloudNativePG 1.30 (postgresql.cnpg.io/v1: Cluster, Pooler,
// ScheduledBackup) and of its Barman Cloud plugin 0.14 (barmancloud.cnpg.io/v1:
// ObjectStore), as JSON schemas written here from their API reference and CRDs
// (cloudnative-pg/cloudnative-pg v1.30.0, config/crd/bases/postgresql.cnpg.io_*.yaml;
// cloudnative-pg/plugin-barman-cloud v0.14.0, config/crd/bases/barmancloud.cnpg.io_objectstores.yaml).
//
// They hold the fields the chart renders, each with the CRD's type, allowed values and
// required fields, and refuse every other field, as the API server's strict field
// validation (kubectl apply --validate=strict, Helm 4's server-side apply) refuses a
// field its CRD does not define. A field the chart starts to use must be added here
// from the CRD, which is what makes a misspelt or misplaced one fail. The Pooler's
// PgBouncer settings are checked against the list the operator's webhook accepts.

export const CLOUDNATIVE_PG_VERSION = '1.30';
export const BARMAN_CLOUD_PLUGIN_VERSION = '0.14';

type Schema = Record<string, unknown>;

/** An object with exactly these fields; `required` lists those it must have. */
function strict(properties: Record<string, Schema>, required: string[] = []): Schema {
  return { type: 'object', additionalProperties: false, properties, required };
}
const nonEmpty: Schema = { type: 'string', minLength: 1 };
const boolean: Schema = { type: 'boolean' };
const stringMap: Schema = { type: 'object', additionalProperties: { type: 'string' } };
const integer = (minimum?: number): Schema => (minimum === undefined ? { type: 'integer' } : { type: 'integer', minimum });
const oneOf = (...values: string[]): Schema => ({ type: 'string', enum: values });
// A Kubernetes quantity (int-or-string in the CRDs).
const quantity: Schema = { anyOf: [{ type: 'integer' }, { type: 'string', pattern: '^[+-]?[0-9.]+([eE][+-]?[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$' }] };
const resources = strict({ requests: strict({ cpu: quantity, memory: quantity }), limits: strict({ cpu: quantity, memory: quantity }) });
const localReference = strict({ name: nonEmpty }, ['name']);
const secretKeySelector = strict({ name: nonEmpty, key: nonEmpty }, ['name', 'key']);
const pluginParameters = strict({ barmanObjectName: nonEmpty, serverName: nonEmpty }, ['barmanObjectName']);
const labelSelector = strict({ matchLabels: stringMap });
const dnsName: Schema = { type: 'string', pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$', maxLength: 63 };

const metadata = strict(
  {
    name: dnsName,
    namespace: nonEmpty,
    labels: stringMap,
    annotations: stringMap,
  },
  ['name'],
);
// The PgBouncer settings the operator accepts in a Pooler (its webhook refuses others):
// docs/src/connection_pooling.md of CloudNativePG 1.30, "PgBouncer configuration options".
const PGBOUNCER_PARAMETERS = [
  'application_name_add_host',
  'autodb_idle_timeout',
  'cancel_wait_timeout',
  'client_idle_timeout',
  'client_login_timeout',
  'client_tls_ciphers',
  'client_tls_sslmode',
  'client_tls13_ciphers',
  'default_pool_size',
  'disable_pqexec',
  'dns_max_ttl',
  'dns_nxdomain_ttl',
  'idle_transaction_timeout',
  'ignore_startup_parameters',
  'listen_backlog',
  'log_connections',
  'log_disconnections',
  'log_pooler_errors',
  'log_stats',
  'max_client_conn',
  'max_db_connections',
  'max_packet_size',
  'max_prepared_statements',
  'max_user_connections',
  'min_pool_size',
  'pkt_buf',
  'query_timeout',
  'query_wait_timeout',
  'reserve_pool_size',
  'reserve_pool_timeout',
  'sbuf_loopcnt',
  'server_check_delay',
  'server_check_query',
  'server_connect_timeout',
  'server_fast_close',
  'server_idle_timeout',
  'server_lifetime',
  'server_login_retry',
  'server_reset_query',
  'server_reset_query_always',
  'server_round_robin',
  'server_tls_ciphers',
  'server_tls13_ciphers',
  'server_tls_protocols',
  'server_tls_sslmode',
  'stats_period',
  'suspend_timeout',
  'tcp_defer_accept',
  'tcp_keepalive',
  'tcp_keepcnt',
  'tcp_keepidle',
  'tcp_keepintvl',
];

const resource = (apiVersion: string, kind: string, spec: Schema): Schema =>
  strict({ apiVersion: { const: apiVersion }, kind: { const: kind }, metadata, spec }, ['apiVersion', 'kind', 'metadata', 'spec']);

const storage = strict({ size: quantity, storageClass: nonEmpty, resizeInUseVolumes: boolean });

/** CRD postgresql.cnpg.io_clusters.yaml, spec: the fields the chart renders. */
const cluster = resource(
  'postgresql.cnpg.io/v1',
  'Cluster',
  strict(
    {
      instances: integer(1),
      imageName: nonEmpty,
      imagePullPolicy: oneOf('Always', 'IfNotPresent', 'Never'),
      imagePullSecrets: { type: 'array', items: localReference },
      postgresql: strict({
        // ClusterSpec.postgresql.parameters: map[string]string.
        parameters: stringMap,
        synchronous: strict(
          {
            method: oneOf('any', 'first'),
            number: integer(),
            dataDurability: oneOf('required', 'preferred'),
          },
          ['method', 'number'],
        ),
      }),
      affinity: strict({
        enablePodAntiAffinity: boolean,
        // "preferred" or "required" (AffinityConfiguration.podAntiAffinityType).
        podAntiAffinityType: oneOf('preferred', 'required'),
        topologyKey: nonEmpty,
      }),
      storage,
      walStorage: storage,
      resources,
      certificates: strict({ serverAltDNSNames: { type: 'array', items: nonEmpty } }),
      bootstrap: {
        ...strict({
          initdb: strict({ database: nonEmpty, owner: nonEmpty, secret: localReference, dataChecksums: boolean }),
          recovery: strict({
            source: nonEmpty,
            database: nonEmpty,
            owner: nonEmpty,
            secret: localReference,
            recoveryTarget: strict({ targetTime: nonEmpty }),
          }),
        }),
        // One way to bootstrap (BootstrapConfiguration: initdb, recovery or pg_basebackup).
        maxProperties: 1,
      },
      externalClusters: {
        type: 'array',
        items: strict({ name: nonEmpty, plugin: strict({ name: nonEmpty, parameters: pluginParameters }, ['name']) }, ['name']),
      },
      plugins: {
        type: 'array',
        items: strict({ name: nonEmpty, enabled: boolean, isWALArchiver: boolean, parameters: pluginParameters }, ['name']),
      },
    },
    ['instances'],
  ),
);

/** CRD postgresql.cnpg.io_poolers.yaml. */
const pooler = resource(
  'postgresql.cnpg.io/v1',
  'Pooler',
  strict(
    {
      cluster: localReference,
      type: oneOf('rw', 'ro', 'r'),
      instances: integer(),
      pgbouncer: strict({
        image: nonEmpty,
        poolMode: oneOf('session', 'transaction'),
        parameters: { ...stringMap, propertyNames: { enum: PGBOUNCER_PARAMETERS } },
      }),
      template: strict({
        spec: strict(
          {
            containers: {
              type: 'array',
              items: strict({ name: nonEmpty, imagePullPolicy: oneOf('Always', 'IfNotPresent', 'Never'), resources }, ['name']),
            },
            topologySpreadConstraints: {
              type: 'array',
              items: strict({ maxSkew: integer(1), topologyKey: nonEmpty, whenUnsatisfiable: oneOf('DoNotSchedule', 'ScheduleAnyway'), labelSelector }, [
                'maxSkew',
                'topologyKey',
                'whenUnsatisfiable',
              ]),
            },
          },
          ['containers'],
        ),
      }),
    },
    ['cluster', 'pgbouncer'],
  ),
);

/** CRD postgresql.cnpg.io_scheduledbackups.yaml. */
const scheduledBackup = resource(
  'postgresql.cnpg.io/v1',
  'ScheduledBackup',
  strict(
    {
      // Six fields, seconds first (robfig/cron with seconds), not Kubernetes's five.
      schedule: { type: 'string', pattern: '^\\S+( \\S+){5}$' },
      immediate: boolean,
      cluster: localReference,
      target: oneOf('primary', 'prefer-standby'),
      backupOwnerReference: oneOf('none', 'self', 'cluster'),
      method: oneOf('barmanObjectStore', 'volumeSnapshot', 'plugin'),
      pluginConfiguration: strict({ name: nonEmpty, parameters: stringMap }, ['name']),
    },
    ['schedule', 'cluster'],
  ),
);

/** CRD barmancloud.cnpg.io_objectstores.yaml (the plugin's): configuration follows barman-cloud's BarmanObjectStoreConfiguration. */
const objectStore = resource(
  'barmancloud.cnpg.io/v1',
  'ObjectStore',
  strict(
    {
      retentionPolicy: { type: 'string', pattern: '^[1-9][0-9]*[dwm]$' },
      configuration: strict(
        {
          destinationPath: nonEmpty,
          endpointURL: nonEmpty,
          s3Credentials: strict({ accessKeyId: secretKeySelector, secretAccessKey: secretKeySelector, region: secretKeySelector, inheritFromIAMRole: boolean }),
          wal: strict({ compression: oneOf('bzip2', 'gzip', 'lz4', 'snappy', 'xz', 'zstd'), maxParallel: integer(1) }),
          data: strict({ compression: oneOf('bzip2', 'gzip', 'lz4', 'snappy'), jobs: integer(1) }),
        },
        ['destinationPath'],
      ),
      instanceSidecarConfiguration: strict({ resources }),
    },
    ['configuration'],
  ),
);

const ajv = new Ajv({ allErrors: true, strict: true });
const SCHEMAS: Record<string, ValidateFunction> = {
  'postgresql.cnpg.io/v1 Cluster': ajv.compile(cluster),
  'postgresql.cnpg.io/v1 Pooler': ajv.compile(pooler),
  'postgresql.cnpg.io/v1 ScheduledBackup': ajv.compile(scheduledBackup),
  'barmancloud.cnpg.io/v1 ObjectStore': ajv.compile(objectStore),
};

/** Whether a schema here covers the object's apiVersion and kind. */
export function isCloudnativePgResource(object: K8sObject): boolean {
  return SCHEMAS[`${object.apiVersion} ${object.kind}`] !== undefined;
}

/** Throws, naming each field at fault, when the object is not one the API server would accept. */
export function validateCloudnativePgResource(object: K8sObject): void {
  const validate = SCHEMAS[`${object.apiVersion} ${object.kind}`];
  if (validate === undefined) throw new Error(`no CloudNativePG schema for ${object.apiVersion} ${object.kind}`);
  const name = `${object.kind}/${object.metadata?.name}`;
  if (validate(object)) return;
  const problems = (validate.errors ?? []).map((error) =>
    error.keyword === 'additionalProperties'
      ? `${error.instancePath}: unknown field "${String(error.params.additionalProperty)}"`
      : `${error.instancePath || '/'}: ${error.message}`,
  );
  throw new Error(`${name}: ${problems.join('; ')}`);
}
