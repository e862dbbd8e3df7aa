// Writers that create users and posts in a loop while a test breaks something, and
// remember every write the service acknowledged, so the test can check each one.

import { sleep } from './wait.js';

export interface Acknowledged {
  users: Map<number, string>;
  posts: Map<number, { userId: number; content: string }>;
}

/** `writers` loops that each create a user, then a post by that user, until stopped; every 200 is recorded. */
export function startWriters(baseUrl: string, writers: number, hangLimitMs: number) {
  const acknowledged: Acknowledged = { users: new Map(), posts: new Map() };
  const statuses = new Map<string, number>();
  const unexpected: string[] = [];
  let slowest503Ms = 0;
  let lastAckAt = 0;
  let running = true;

  const send = async (path: string, body: object): Promise<any> => {
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
    for (let n = 0; running; n++) {
      const name = `writer ${w} user ${n}`;
      const user = await send('/users', { name });
      if (user === undefined) continue;
      acknowledged.users.set(user.id, name);
      const content = `post ${n} by writer ${w}`;
      const post = await send('/posts', { user_id: user.id, content });
      if (post !== undefined) acknowledged.posts.set(post.post_id, { userId: user.id, content });
    }
  };
  const done = Promise.all(Array.from({ length: writers }, (_, w) => writer(w)));

  return {
    acknowledged,
    statuses,
    unexpected,
    slowest503Ms: () => slowest503Ms,
    lastAckAt: () => lastAckAt,
    writes: () => acknowledged.users.size + acknowledged.posts.size,
    async stop() {
      running = false;
      await done;
    },
  };
}
