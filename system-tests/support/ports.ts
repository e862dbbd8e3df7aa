import { createServer } from 'node:net';

/** Whether nothing listens on 127.0.0.1:`port`: a program that needs a fixed port says so before it starts. */
export async function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}
