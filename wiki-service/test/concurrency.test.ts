import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './support/app.js';
import { BACKENDS, backendUnavailable } from './support/backends.js';
import { everything, type User } from '@wiki/test-support/api';
import { metricValue } from '@wiki/test-support/http';

// Acknowledged writes are never lost, even when they all arrive at once. On PGlite
// this is what the dialect's lock is for: without it, concurrent transactions
// interleave on the single session.

const CONCURRENT = 200;

describe.each(BACKENDS)('concurrent writes on %s', (backend) => {
  let api: TestApp;
  beforeAll(async () => {
    if (backendUnavailable(backend)) return;
    api = await startTestApp(backend);
  });
  afterAll(async () => {
    await api?.close();
  });

  it.skipIf(backendUnavailable(backend))(
    `${CONCURRENT} concurrent creates give ${CONCURRENT} distinct ids and a counter grown by exactly ${CONCURRENT}`,
    async () => {
      // What this test itself creates, whatever ran before it on the same app.
      const countedBefore = metricValue((await api.get('/metrics')).text, 'users_created_total') ?? 0;
      const responses = await Promise.all(Array.from({ length: CONCURRENT }, (_, i) => api.post('/users', { name: `concurrent-${i}` })));
      expect(responses.map((response) => response.status)).toEqual(Array(CONCURRENT).fill(200));
      const ids = responses.map((response) => response.body.id as number);
      expect(new Set(ids).size).toBe(CONCURRENT);

      expect(metricValue((await api.get('/metrics')).text, 'users_created_total')).toBe(countedBefore + CONCURRENT);

      // Every acknowledged row is really there, with the name it was given.
      const stored = new Map((await everything<User>(api, '/users')).map((user) => [user.id, user.name]));
      for (const response of responses) expect(stored.get(response.body.id)).toBe(response.body.name);
    },
  );

  it.skipIf(backendUnavailable(backend))('concurrent posts, renames and deletes all land', async () => {
    const author = (await api.post('/users', { name: 'author' })).body;
    const posts = await Promise.all(Array.from({ length: 100 }, (_, i) => api.post('/posts', { user_id: author.id, content: `post ${i}` })));
    expect(posts.every((response) => response.status === 200)).toBe(true);
    const edits = await Promise.all(
      posts.map((response, i) =>
        i % 2 === 0 ? api.patch(`/posts/${response.body.post_id}`, { content: `edited ${i}` }) : api.delete(`/posts/${response.body.post_id}`),
      ),
    );
    expect(edits.map((response) => response.status).sort()).toEqual([...Array(50).fill(200), ...Array(50).fill(204)]);
    const remaining = await api.get(`/users/${author.id}/posts?limit=100`);
    expect(remaining.body.items).toHaveLength(50);
    for (const post of remaining.body.items) expect(post.content).toMatch(/^edited \d+$/);
  });
});
