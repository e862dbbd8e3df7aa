import { connect } from 'node:net';

// A tiny HTTP client for tests: real requests over the loopback network.

export interface Response {
  status: number;
  headers: Headers;
  text: string;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  body: any;
}

export interface RequestOptions {
  /** Sent as JSON. */
  json?: unknown;
  /** Sent exactly as given (for malformed bodies). */
  raw?: string;
  headers?: Record<string, string>;
}

export async function request(baseUrl: string, method: string, path: string, options: RequestOptions = {}): Promise<Response> {
  const headers: Record<string, string> = { ...options.headers };
  let body: string | undefined;
  if (options.json !== undefined) {
    body = JSON.stringify(options.json);
    headers['content-type'] ??= 'application/json';
  } else if (options.raw !== undefined) {
    body = options.raw;
  }
  const response = await fetch(`${baseUrl}${path}`, { method, headers, body });
  const text = await response.text();
  let parsed: unknown;
  try {
    parsed = text === '' ? undefined : JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  return { status: response.status, headers: response.headers, text, body: parsed };
}

/** A client bound to one base URL. */
export function client(baseUrl: string) {
  return {
    baseUrl,
    get: (path: string, options?: RequestOptions) => request(baseUrl, 'GET', path, options),
    post: (path: string, json?: unknown, options?: RequestOptions) => request(baseUrl, 'POST', path, { json, ...options }),
    patch: (path: string, json?: unknown, options?: RequestOptions) => request(baseUrl, 'PATCH', path, { json, ...options }),
    delete: (path: string, options?: RequestOptions) => request(baseUrl, 'DELETE', path, options),
  };
}
export type Client = ReturnType<typeof client>;

/** The value of one sample in Prometheus text format, e.g. metricValue(text, 'users_created_total'). */
export function metricValue(exposition: string, sample: string): number | undefined {
  const line = exposition.split('\n').find((entry) => entry.startsWith(`${sample} `));
  return line === undefined ? undefined : Number(line.slice(sample.length + 1));
}

/**
 * Sends raw bytes on a new connection and collects everything the server sends back
 * until it closes the connection (or `waitMs` passes). For requests no HTTP client
 * would send: malformed, pipelined, or stalled halfway.
 */
export async function rawExchange(baseUrl: string, bytes: string | Buffer, waitMs = 5000): Promise<{ received: string; closedByServer: boolean }> {
  const { hostname, port } = new URL(baseUrl);
  const socket = connect(Number(port), hostname);
  let received = '';
  socket.on('data', (chunk) => (received += chunk.toString('latin1')));
  socket.write(bytes);
  const closedByServer = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), waitMs);
    socket.on('close', () => (clearTimeout(timer), resolve(true)));
    socket.on('error', () => {});
  });
  socket.destroy();
  return { received, closedByServer };
}
