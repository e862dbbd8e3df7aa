import { createConnection, createServer, type Server, type Socket } from 'node:net';

// A TCP endpoint that stands for a Kubernetes Service in front of PostgreSQL (a
// CloudNativePG cluster's `-rw` Service): clients connect to one fixed port, and
// the endpoint forwards each connection to whichever server is behind it now.
//
// Moving it does what a Service does when its pod dies or the operator relabels a new
// primary: new connections go to the new target, and every connection already open is
// cut (reset), since the pod it led to is gone. With no target, connections are
// refused as a Service with no ready endpoints refuses them (kube-proxy's REJECT).

export class TcpEndpoint {
  private readonly open = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
    private target: number | undefined,
  ) {}

  /** Listens on a free loopback port, forwarding to `targetPort` (or refusing, when undefined). */
  static async start(targetPort: number | undefined): Promise<TcpEndpoint> {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', resolve);
    });
    const address = server.address();
    if (typeof address !== 'object' || address === null) throw new Error('the endpoint has no port');
    const endpoint = new TcpEndpoint(server, address.port, targetPort);
    server.on('connection', (client) => endpoint.forward(client));
    return endpoint;
  }

  get targetPort(): number | undefined {
    return this.target;
  }

  /** New connections go to `targetPort` (none: refused); every open one is cut. */
  moveTo(targetPort: number | undefined): void {
    this.target = targetPort;
    for (const socket of this.open) socket.resetAndDestroy();
    this.open.clear();
  }

  async close(): Promise<void> {
    this.moveTo(undefined);
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private forward(client: Socket): void {
    if (this.target === undefined) {
      client.resetAndDestroy();
      return;
    }
    const upstream = createConnection({ host: '127.0.0.1', port: this.target });
    for (const [socket, other] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      this.open.add(socket);
      socket.setNoDelay(true);
      socket.pipe(other);
      // Either side failing or closing ends the pair, as a cut TCP path does.
      socket.on('error', () => other.resetAndDestroy());
      socket.on('close', () => {
        this.open.delete(socket);
        if (!other.destroyed) other.destroy();
      });
    }
  }
}
