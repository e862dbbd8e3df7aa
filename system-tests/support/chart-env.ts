import { findPostgresBinaries, PostgresServer } from '../../wiki-service/test/support/postgres.js';
import type { K8sObject } from './helm.js';

/** Resolves a container's env and envFrom against the rendered ConfigMaps and Secrets. */
export function environmentOf(container: any, objects: K8sObject[]): Record<string, string> {
  const find = (kind: string, name: string) => {
    const object = objects.find((candidate) => candidate.kind === kind && candidate.metadata.name === name);
    if (object === undefined) throw new Error(`${kind} ${name} is not rendered`);
    return object;
  };
  const env: Record<string, string> = {};
  for (const source of container.envFrom ?? []) {
    if (source.configMapRef) Object.assign(env, find('ConfigMap', source.configMapRef.name).data);
  }
  for (const variable of container.env ?? []) {
    if (variable.value !== undefined) env[variable.name] = variable.value;
    const secretRef = variable.valueFrom?.secretKeyRef;
    if (secretRef) env[variable.name] = Buffer.from(find('Secret', secretRef.name).data[secretRef.key], 'base64').toString();
  }
  return env;
}

/** The API container's and its init container's environment, as the rendered Deployment gives them. */
export function apiEnvironment(objects: K8sObject[]): { api: Record<string, string>; init: Record<string, string> } {
  const deployment = objects.find((object) => object.kind === 'Deployment' && object.metadata.labels['app.kubernetes.io/component'] === 'api');
  if (deployment === undefined) throw new Error('no API Deployment rendered');
  const pod = deployment.spec.template.spec;
  return { api: environmentOf(pod.containers[0], objects), init: environmentOf(pod.initContainers[0], objects) };
}

/**
 * A throwaway PostgreSQL set up as the chart's PostgreSQL would be (the official image
 * does this from POSTGRES_USER/POSTGRES_PASSWORD/POSTGRES_DB), with a separate superuser
 * so the chart's user is an ordinary database owner.
 */
export async function startChartDatabase(env: Record<string, string>): Promise<PostgresServer> {
  const postgres = await PostgresServer.create({ superuser: 'postgres' });
  await postgres.query(`CREATE ROLE "${env.PGUSER}" LOGIN PASSWORD '${env.PGPASSWORD!.replace(/'/g, "''")}'`);
  await postgres.query(`CREATE DATABASE "${env.PGDATABASE}" OWNER "${env.PGUSER}"`);
  return postgres;
}

/** The same environment with the database host and port pointed at a local server. */
export function pointedAt(postgres: PostgresServer, env: Record<string, string>): Record<string, string> {
  return { ...env, PGHOST: '127.0.0.1', PGPORT: String(postgres.port) };
}

/** Undefined when PostgreSQL's server binaries are installed, else what is missing. */
export function postgresMissing(): string | undefined {
  return findPostgresBinaries() === undefined ? 'PostgreSQL server binaries missing (apt-get install -y postgresql, or set PG_BIN_DIR)' : undefined;
}
