// The database-credentials hook Job's script (templates/credentials-job.yaml):
// makes sure the database Secret holds a password for each of the chart's PostgreSQL
// roles, generating only the ones missing and never changing one that exists. It runs
// in the API's image (Node.js) before every install and upgrade, under Helm and under
// Argo CD alike (a PreSync hook there), through the Kubernetes API.
//
// Why a Job and not the chart's template: a template can keep a generated password only
// by reading it back with `lookup`, and `lookup` sees no cluster under `helm template`,
// which is how Argo CD renders a chart. Every sync then generated new passwords that
// PostgreSQL (which sets them at its start) did not have: new API pods and every backup
// failed to log in.
//
// Environment (from the Job): SECRET_NAME, KEYS (comma-separated), NAMESPACE,
// SECRET_LABELS (JSON), TOKEN_DIR (the service account's token and CA, as mounted),
// KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT (set by Kubernetes in every pod).

import { randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';

const { SECRET_NAME: name, NAMESPACE: namespace, TOKEN_DIR: tokenDir } = process.env;
const keys = (process.env.KEYS ?? '').split(',').filter(Boolean);
if (!name || !namespace || !tokenDir || keys.length === 0) throw new Error('credentials: SECRET_NAME, NAMESPACE, KEYS and TOKEN_DIR are required');
const token = readFileSync(join(tokenDir, 'token'), 'utf8').trim();
const ca = readFileSync(join(tokenDir, 'ca.crt'));
const secrets = `/api/v1/namespaces/${namespace}/secrets`;

/** One call to the Kubernetes API: resolves to { status, body }. */
function call(method, path, body, contentType = 'application/json') {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: process.env.KUBERNETES_SERVICE_HOST,
        port: process.env.KUBERNETES_SERVICE_PORT,
        method,
        path,
        ca,
        headers: { authorization: `Bearer ${token}`, accept: 'application/json', ...(body ? { 'content-type': contentType } : {}) },
        timeout: 10_000,
      },
      (res) => {
        let text = '';
        res.on('data', (chunk) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode, body: text ? JSON.parse(text) : {} }));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer in 10 s`)));
    req.on('error', reject);
    req.end(body ? JSON.stringify(body) : undefined);
  });
}

// 32 letters and digits, as the chart's earlier versions generated: safe in a URL, a
// shell and a connection string without quoting.
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const password = () => Array.from({ length: 32 }, () => ALPHABET[randomInt(ALPHABET.length)]).join('');
const base64 = (text) => Buffer.from(text).toString('base64');

// A few tries: another run (two syncs at once) may create or change the Secret between
// our read and our write; each write is refused then, and we read again.
for (let attempt = 1; attempt <= 5; attempt++) {
  const current = await call('GET', `${secrets}/${name}`);
  if (current.status === 404) {
    const created = await call('POST', secrets, {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: {
        name,
        namespace,
        labels: JSON.parse(process.env.SECRET_LABELS ?? '{}'),
        // Not the release's object: `helm uninstall` leaves it, like the database's volume.
        annotations: { 'wiki-chart/generated-by': 'the database-credentials Job' },
      },
      type: 'Opaque',
      data: Object.fromEntries(keys.map((key) => [key, base64(password())])),
    });
    if (created.status === 201) {
      console.log(`credentials: created Secret ${name} with a generated password for ${keys.join(', ')}`);
      process.exit(0);
    }
    if (created.status !== 409) throw new Error(`credentials: creating Secret ${name} answered ${created.status}: ${JSON.stringify(created.body)}`);
    continue;
  }
  if (current.status !== 200) throw new Error(`credentials: reading Secret ${name} answered ${current.status}: ${JSON.stringify(current.body)}`);
  const missing = keys.filter((key) => !(key in (current.body.data ?? {})));
  if (missing.length === 0) {
    console.log(`credentials: Secret ${name} holds every key (${keys.join(', ')}); nothing changed`);
    process.exit(0);
  }
  // Only the missing keys are added, and only if the Secret is still the one just read.
  const patch = [
    { op: 'test', path: '/metadata/resourceVersion', value: current.body.metadata.resourceVersion },
    ...(current.body.data ? [] : [{ op: 'add', path: '/data', value: {} }]),
    ...missing.map((key) => ({ op: 'add', path: `/data/${key.replaceAll('~', '~0').replaceAll('/', '~1')}`, value: base64(password()) })),
  ];
  const patched = await call('PATCH', `${secrets}/${name}`, patch, 'application/json-patch+json');
  if (patched.status === 200) {
    console.log(`credentials: added a generated password for ${missing.join(', ')} to Secret ${name}; the others are unchanged`);
    process.exit(0);
  }
  if (patched.status !== 409 && patched.status !== 422) throw new Error(`credentials: updating Secret ${name} answered ${patched.status}: ${JSON.stringify(patched.body)}`);
}
throw new Error(`credentials: Secret ${name} kept changing under us; giving up`);
