import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import S3rver from 's3rver';

// An S3-compatible object store for backups: npm's s3rver, the S3 REST API in front of
// a local folder. Barman Cloud (what CloudNativePG's backup plugin runs) talks to it
// with boto3 as to any S3 endpoint.
//
// One limit to know: s3rver checks that the access key id exists, but does not verify
// SigV4 signatures, so a wrong secret key with the right key id is accepted.

export const OBJECT_STORE_ACCESS_KEY_ID = 'S3RVER';
export const OBJECT_STORE_SECRET_ACCESS_KEY = 'S3RVER';

export class ObjectStore {
  private server: S3rver | undefined;

  private constructor(
    private readonly directory: string,
    readonly bucket: string,
    private port: number,
  ) {}

  /** Starts a store with one empty bucket, on a free loopback port. */
  static async start(bucket = 'wiki-backups'): Promise<ObjectStore> {
    const store = new ObjectStore(await mkdtemp(join(tmpdir(), 'wiki-s3-')), bucket, 0);
    await store.start();
    return store;
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** An `s3://` URL of a folder in the bucket. */
  url(folder: string): string {
    return `s3://${this.bucket}/${folder}`;
  }

  /** Starts it again after `stop()`, on the same port, with the same objects. */
  async start(): Promise<void> {
    const server = new S3rver({
      address: '127.0.0.1',
      port: this.port,
      directory: this.directory,
      silent: true,
      configureBuckets: [{ name: this.bucket, configs: [] }],
    });
    const address = await server.run();
    this.port = address.port;
    this.server = server;
  }

  /** Stops answering: connections are refused until `start()`. */
  async stop(): Promise<void> {
    await this.server?.close();
    this.server = undefined;
  }

  async destroy(): Promise<void> {
    await this.stop();
    await rm(this.directory, { recursive: true, force: true });
  }
}
