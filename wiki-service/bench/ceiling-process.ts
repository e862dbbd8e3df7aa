// The driver ceiling for `npm run bench`, in a process of its own started with the
// service's Node flags (bench/run.ts forks it): the very repository calls the service
// makes (same SQL, same `pg` driver, same pool size), from CONNECTIONS concurrent loops,
// with no HTTP at all. Asked over IPC to run one scenario for some seconds, it answers
// with the throughput and latencies; bench/run.ts accounts for its CPU around the run.

import { performance } from 'node:perf_hooks';
import { pino } from 'pino';
import { openDatabase } from '../src/db/database.js';
import { createPostsRepository } from '../src/repositories/posts.js';
import { createUsersRepository } from '../src/repositories/users.js';
import { percentile, type Timing } from './wrk.js';

export interface CeilingRequest {
  scenario: 'GET /user/{id}' | 'POST /users' | 'POST /posts';
  seconds: number;
  connections: number;
  seededUsers: number;
}

const database = await openDatabase(
  {
    kind: 'postgres',
    connectionString: process.env.DATABASE_URL!,
    poolMax: Number(process.env.DB_POOL_MAX),
    connectTimeoutMs: 3000,
    queryTimeoutMs: 10_000,
    preparedStatements: true,
  },
  pino({ level: 'warn' }),
);
const users = createUsersRepository(database.db);
const posts = createPostsRepository(database.db);

async function run({ scenario, seconds, connections, seededUsers }: CeilingRequest): Promise<Timing> {
  const randomUserId = () => 1 + Math.floor(Math.random() * seededUsers);
  const call = {
    'GET /user/{id}': () => users.get(randomUserId()),
    'POST /users': () => users.create('bench user'),
    'POST /posts': () => posts.create(randomUserId(), 'bench post content'),
  }[scenario];
  const latencies: number[] = [];
  const end = performance.now() + seconds * 1000;
  const worker = async () => {
    while (performance.now() < end) {
      const start = performance.now();
      await call();
      latencies.push(performance.now() - start);
    }
  };
  await Promise.all(Array.from({ length: connections }, worker));
  latencies.sort((a, b) => a - b);
  return { rps: latencies.length / seconds, p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99) };
}

process.on('message', (request: CeilingRequest | 'stop') => {
  if (request === 'stop') {
    void database.close().then(() => process.exit(0));
    return;
  }
  run(request).then(
    (timing) => process.send!(timing),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
});
process.send!('ready');
