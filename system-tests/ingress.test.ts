import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, request as httpRequest, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startProcess, type StartedProcess } from '@wiki/test-support/process';
import { freePort } from '@wiki/test-support/postgres';
import { startService, type ServiceProcess } from 'wiki-service/service-process';
import { CHART_DIR, NAMESPACE, renderChart, type K8sObject } from './support/helm.js';
import { podTarget, PROMETHEUS, prometheusMissing, renderedPrometheusYml, withFileDiscovery, writeRenderedPrometheusConfig } from './support/prometheus.js';
import { skipLoudly } from './support/skip.js';
import { until } from '@wiki/test-support/wait';

// The Ingress of phase 9, proven without an ingress controller: nginx from Debian, a
// real reverse proxy, configured by this test from the rendered Ingress rules (host,
// path, pathType, backend Service), in front of a real API process and a real
// Prometheus started with the rendered arguments (route prefix /prometheus). Grafana's
// server cannot be installed here: a small HTTP server stands in for its Service and
// reports the path it was asked for, which is what routing decides.

const NGINX = '/usr/sbin/nginx';
const HOST = 'wiki.example.com';
const skip = skipLoudly(existsSync(NGINX) ? prometheusMissing() : `${NGINX} missing (apt-get install -y nginx)`, 'the Ingress routing test is');

interface Answer {
  status: number;
  body: string;
  location: string | undefined;
}

function get(port: number, path: string, options: { host?: string; method?: string; body?: string } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { host: options.host ?? HOST };
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    const outgoing = httpRequest({ host: '127.0.0.1', port, path, method: options.method ?? 'GET', headers, timeout: 10_000 }, (response) => {
      let body = '';
      response.on('data', (chunk) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body, location: response.headers.location }));
    });
    outgoing.on('error', reject);
    outgoing.end(options.body);
  });
}

/**
 * nginx's configuration for the rendered Ingress. Prefix: the path itself and
 * everything below it, segment by segment (/user matches /user and /user/1, never
 * /users-x); Exact: the path alone. Requests are passed on unchanged (no rewrite);
 * anything that matches no rule, or another host, is a 404.
 */
function nginxConfig(ingress: K8sObject, dir: string, listenPort: number, backends: Record<string, number>): string {
  const servers = (ingress.spec.rules as Array<{ host?: string; http: { paths: any[] } }>).map((rule) => {
    const locations = rule.http.paths.flatMap(({ path, pathType, backend }) => {
      const port = backends[backend.service.name];
      if (port === undefined) throw new Error(`no local backend for Service ${backend.service.name}`);
      const pass = `{ proxy_pass http://127.0.0.1:${port}; proxy_set_header Host $host; }`;
      if (pathType === 'Exact') return [`location = ${path} ${pass}`];
      if (pathType === 'Prefix') return [`location = ${path} ${pass}`, `location ^~ ${path}/ ${pass}`];
      throw new Error(`pathType ${pathType} is not handled`);
    });
    return `server { listen 127.0.0.1:${listenPort}; server_name ${rule.host ?? '_'};\n  ${locations.join('\n  ')}\n  location / { return 404; }\n}`;
  });
  return `user root;
worker_processes 1;
error_log ${dir}/error.log;
pid ${dir}/nginx.pid;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  # Another host matches no rule.
  server { listen 127.0.0.1:${listenPort} default_server; return 404; }
  ${servers.join('\n  ')}
}
`;
}

describe.skipIf(skip)('the Ingress, through a real reverse proxy (nginx)', () => {
  let workDir: string;
  let api: ServiceProcess;
  let grafanaStandIn: Server;
  const children: StartedProcess[] = [];
  let proxyPort: number;

  beforeAll(async () => {
    const objects = await renderChart([join(CHART_DIR, 'ci', 'ingress-values.yaml')]);
    workDir = await mkdtemp(join(tmpdir(), 'wiki-ingress-'));
    const serviceNamed = (component: string) =>
      objects.find(
        (object) =>
          object.kind === 'Service' && object.metadata.labels['app.kubernetes.io/component'] === component && !object.metadata.name.endsWith('-headless'),
      )!.metadata.name;

    api = await startService({ DATA_DIR: join(workDir, 'api-data'), SHUTDOWN_DELAY_SECONDS: '0', LOG_LEVEL: 'warn' }, { discardStdout: true });

    // Prometheus with the rendered configuration and arguments (discovery swapped for
    // a file listing the API process, as in the stack test).
    const prometheusPort = await freePort();
    const configDir = join(workDir, 'etc-prometheus');
    const targetsFile = join(workDir, 'targets.json');
    await writeFile(targetsFile, JSON.stringify([podTarget(new URL(api.baseUrl).host, 'wiki-wiki-chart-api-0', NAMESPACE)]));
    // No PostgreSQL here (the API runs on its embedded database): its exporter's job has no targets.
    const noTargets = join(workDir, 'no-targets.json');
    await writeFile(noTargets, '[]');
    await writeRenderedPrometheusConfig(
      objects,
      configDir,
      withFileDiscovery(renderedPrometheusYml(objects), { 'wiki-api': targetsFile, postgresql: noTargets }),
    );
    const deployment = objects.find((object) => object.kind === 'Deployment' && object.metadata.labels['app.kubernetes.io/component'] === 'prometheus')!;
    const args = (deployment.spec.template.spec.containers[0].args as string[]).map((arg) =>
      arg.replace('=/etc/prometheus/', `=${configDir}/`).replace('--storage.tsdb.path=/prometheus', `--storage.tsdb.path=${join(workDir, 'tsdb')}`),
    );
    children.push(startProcess(PROMETHEUS, [...args, `--web.listen-address=127.0.0.1:${prometheusPort}`], { discardStdout: true }));

    const grafanaPort = await freePort();
    grafanaStandIn = createServer((request, response) => {
      response.setHeader('content-type', 'application/json');
      response.end(JSON.stringify({ stand_in: 'grafana', path: request.url }));
    });
    await new Promise<void>((resolve) => grafanaStandIn.listen(grafanaPort, '127.0.0.1', resolve));

    proxyPort = await freePort();
    for (const temp of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) await mkdir(join(workDir, temp));
    const [ingress] = objects.filter((object) => object.kind === 'Ingress');
    const config = nginxConfig(ingress!, workDir, proxyPort, {
      [serviceNamed('api')]: Number(new URL(api.baseUrl).port),
      [serviceNamed('grafana')]: grafanaPort,
      [serviceNamed('prometheus')]: prometheusPort,
    });
    await writeFile(join(workDir, 'nginx.conf'), config);
    children.push(startProcess(NGINX, ['-p', workDir, '-c', join(workDir, 'nginx.conf'), '-g', 'daemon off;'], { discardStdout: true }));

    await until('nginx', 60_000, async () => ((await get(proxyPort, '/nowhere')).status === 404 ? true : undefined));
    await until('Prometheus behind nginx', 60_000, async () => ((await get(proxyPort, '/prometheus/-/ready')).status === 200 ? true : undefined));
  });

  afterAll(async () => {
    // SIGTERM, and wait: nginx's master then stops its worker, which a SIGKILL of the
    // master would leave running (and listening) after the test.
    await Promise.all(children.map((child) => child.stop('SIGTERM')));
    grafanaStandIn?.close();
    await api?.stop();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  it("the API's paths reach the API", async () => {
    const created = await get(proxyPort, '/users', { method: 'POST', body: JSON.stringify({ name: 'through the ingress' }) });
    expect(created.status).toBe(200);
    const user = JSON.parse(created.body);
    expect(JSON.parse((await get(proxyPort, `/user/${user.id}`)).body)).toEqual(user);
    expect(JSON.parse((await get(proxyPort, `/users/${user.id}`)).body)).toEqual(user);
    const post = await get(proxyPort, '/posts', { method: 'POST', body: JSON.stringify({ user_id: user.id, content: 'hello' }) });
    expect(post.status).toBe(200);
    expect((await get(proxyPort, '/posts')).status).toBe(200);
    expect(JSON.parse((await get(proxyPort, '/openapi.json')).body).openapi).toMatch(/^3\./);
    expect((await get(proxyPort, '/docs')).status).toBeLessThan(400);
    expect((await get(proxyPort, '/docs/')).body).toContain('Swagger UI');
  });

  it("/grafana reaches Grafana's Service with the path unchanged (Grafana serves from its sub-path)", async () => {
    for (const path of ['/grafana', '/grafana/', '/grafana/api/health', '/grafana/d/creation-dashboard-678/creation']) {
      const answer = await get(proxyPort, path);
      expect(answer.status, path).toBe(200);
      expect(JSON.parse(answer.body), path).toEqual({ stand_in: 'grafana', path });
    }
  });

  it('Prometheus works under its prefix: probes, UI route and the query API', async () => {
    expect((await get(proxyPort, '/prometheus/-/healthy')).status).toBe(200);
    const query = JSON.parse((await get(proxyPort, '/prometheus/api/v1/query?query=1%2B1')).body);
    expect(query).toMatchObject({ status: 'success', data: { resultType: 'scalar' } });
    expect(query.data.result[1]).toBe('2');
    const flags = JSON.parse((await get(proxyPort, '/prometheus/api/v1/status/flags')).body);
    expect(flags.data['web.route-prefix']).toBe('/prometheus');
    // The UI's redirect stays under the prefix.
    const root = await get(proxyPort, '/prometheus/');
    expect(root.status).toBe(302);
    expect(root.location).toMatch(/^\/prometheus\/query/);
  });

  it("everything else answers 404: the API's /metrics, /ready and /health, the root, look-alike paths, another host", async () => {
    for (const path of ['/', '/metrics', '/ready', '/health', '/usersx', '/user-admin', '/openapi.json/x', '/grafanax', '/prometheus-admin']) {
      expect((await get(proxyPort, path)).status, path).toBe(404);
    }
    expect((await get(proxyPort, '/users', { host: 'other.example.com' })).status).toBe(404);
  });
});
