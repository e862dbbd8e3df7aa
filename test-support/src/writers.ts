// Writers that create users and posts in a loop while a test breaks something, and
// remember every write the service acknowledged, so the test can check each one. An
// id acknowledged twice is a failure: it means a committed row was lost and its id
// handed out again (a sequence wound back), which a map of acknowledgements would
// otherwise overwrite and never check.

import type { QueryResultRow } from 'pg';
import { sleep } from './wait.js';

export interface Acknowledged {
  users: Map<number, string>;
  posts: Map<number, { userId: number; content: string }>;
}

/**
 * Adds one run's acknowledgements to those of earlier runs (a test that restarts the
 * service between runs), and returns every id acknowledged in both: a failure, as
 * within a run, since it means a committed row was lost and its id handed out again
 * after the restart.
 */
export function mergeAcknowledged(into: Acknowledged, from: Acknowledged): string[] {
  const twice: string[] = [];
  for (const [id, name] of from.users) {
    if (into.users.has(id)) twice.push(`user id ${id} acknowledged twice: ${JSON.stringify(into.users.get(id))}, then ${JSON.stringify(name)}`);
    into.users.set(id, name);
  }
  for (const [id, post] of from.posts) {
    if (into.posts.has(id)) twice.push(`post id ${id} acknowledged twice`);
    into.posts.set(id, post);
  }
  return twice;
}

/** When the request that created a row was sent, and when its acknowledgement arrived (Date.now()). */
export interface WriteTiming {
  sentAt: number;
  acknowledgedAt: number;
}

/**
 * `writers` loops that each create a user, then a post by that user, until stopped;
 * every 200 is recorded. Writer w sends to `baseUrls[w % baseUrls.length]`: several
 * service processes behind one database, as a Deployment's replicas are.
 */
export function startWriters(baseUrls: string | string[], writers: number, hangLimitMs: number) {
  const urls = typeof baseUrls === 'string' ? [baseUrls] : baseUrls;
  const acknowledged: Acknowledged = { users: new Map(), posts: new Map() };
  const timings = { users: new Map<number, WriteTiming>(), posts: new Map<number, WriteTiming>() };
  // When each acknowledgement arrived (Date.now()), in order.
  const acknowledgedAt: number[] = [];
  const statuses = new Map<string, number>();
  const unexpected: string[] = [];
  let slowest503Ms = 0;
  let lastAckAt = 0;
  let running = true;

  const send = async (baseUrl: string, path: string, body: object): Promise<any> => {
    const started = performance.now();
    let status: number;
    let json: any;
    try {
      const response = await fetch(`${baseUrl}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(hangLimitMs),
      });
      status = response.status;
      json = await response.json();
    } catch (error) {
      // A refused connection (the process died), a reset, or a hang past the limit.
      unexpected.push(`${path}: ${(error as Error).message}`);
      await sleep(100);
      return undefined;
    }
    const elapsed = performance.now() - started;
    statuses.set(String(status), (statuses.get(String(status)) ?? 0) + 1);
    if (status === 200) {
      lastAckAt = Date.now();
      acknowledgedAt.push(lastAckAt);
      return json;
    }
    if (status === 503) {
      slowest503Ms = Math.max(slowest503Ms, elapsed);
      if (json?.detail !== 'Database unavailable, try again shortly') unexpected.push(`503 body ${JSON.stringify(json)}`);
      await sleep(20); // as a client honouring Retry-After would, only sooner
      return undefined;
    }
    unexpected.push(`${path}: ${status} ${JSON.stringify(json)}`);
    return undefined;
  };

  const writer = async (w: number) => {
    const baseUrl = urls[w % urls.length]!;
    for (let n = 0; running; n++) {
      const name = `writer ${w} user ${n}`;
      const userSentAt = Date.now();
      const user = await send(baseUrl, '/users', { name });
      if (user === undefined) continue;
      if (acknowledged.users.has(user.id))
        unexpected.push(`user id ${user.id} acknowledged twice: ${JSON.stringify(acknowledged.users.get(user.id))}, then ${JSON.stringify(name)}`);
      acknowledged.users.set(user.id, name);
      timings.users.set(user.id, { sentAt: userSentAt, acknowledgedAt: Date.now() });
      const content = `post ${n} by writer ${w}`;
      const postSentAt = Date.now();
      const post = await send(baseUrl, '/posts', { user_id: user.id, content });
      if (post === undefined) continue;
      if (acknowledged.posts.has(post.post_id)) unexpected.push(`post id ${post.post_id} acknowledged twice`);
      acknowledged.posts.set(post.post_id, { userId: user.id, content });
      timings.posts.set(post.post_id, { sentAt: postSentAt, acknowledgedAt: Date.now() });
    }
  };
  const done = Promise.all(Array.from({ length: writers }, (_, w) => writer(w)));

  return {
    acknowledged,
    timings,
    /** The acknowledged writes whose acknowledgement arrived before `time`: committed before it. */
    acknowledgedBefore(time: number): Acknowledged {
      const before = (timing: WriteTiming | undefined) => timing !== undefined && timing.acknowledgedAt < time;
      return {
        users: new Map([...acknowledged.users].filter(([id]) => before(timings.users.get(id)))),
        posts: new Map([...acknowledged.posts].filter(([id]) => before(timings.posts.get(id)))),
      };
    },
    statuses,
    unexpected,
    slowest503Ms: () => slowest503Ms,
    lastAckAt: () => lastAckAt,
    /** When the first write after `time` (Date.now()) was acknowledged, or undefined. */
    firstAckAfter: (time: number) => acknowledgedAt.find((at) => at > time),
    writes: () => acknowledged.users.size + acknowledged.posts.size,
    async stop() {
      running = false;
      await done;
    },
  };
}

/**
 * The acknowledged writes that are not in the database exactly as acknowledged.
 * `query` runs SQL on the database the service wrote to.
 */
export async function missingWrites(
  acknowledged: Acknowledged,
  query: (sql: string) => Promise<QueryResultRow[]>,
): Promise<{ users: number[]; posts: number[] }> {
  const users = new Map((await query('SELECT id, name FROM users')).map((row) => [row.id as number, row.name as string]));
  const posts = new Map((await query('SELECT id, user_id, content FROM posts')).map((row) => [row.id as number, `${row.user_id}:${row.content}`]));
  return {
    users: [...acknowledged.users].filter(([id, name]) => users.get(id) !== name).map(([id]) => id),
    posts: [...acknowledged.posts].filter(([id, post]) => posts.get(id) !== `${post.userId}:${post.content}`).map(([id]) => id),
  };
}
