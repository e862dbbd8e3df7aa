import { describe, expect, it } from 'vitest';
import { BACKENDS, backendUnavailable } from './support/backends.js';
import { client } from '@wiki/test-support/http';
import { serviceEnvFor } from './support/app.js';
import { startService } from './support/service-process.js';

// Every acknowledged write survives a restart of the service, on both databases.

describe.each(BACKENDS)('data survives a restart on %s', (backend) => {
  it.skipIf(backendUnavailable(backend))('users and posts created before a restart are all there after it', async () => {
    const env = await serviceEnvFor(backend);

    const first = await startService(env);
    const api = client(first.baseUrl);
    const users = [];
    const posts = [];
    for (let i = 0; i < 5; i++) {
      const user = (await api.post('/users', { name: `persistent ${i} 🚀` })).body;
      users.push(user);
      posts.push((await api.post('/posts', { user_id: user.id, content: `kept ${i}` })).body);
    }
    expect((await first.stop('SIGTERM')).code).toBe(0);

    const second = await startService(env);
    try {
      const again = client(second.baseUrl);
      for (const user of users) expect((await again.get(`/user/${user.id}`)).body).toEqual(user);
      for (const post of posts) expect((await again.get(`/posts/${post.post_id}`)).body).toEqual(post);
      // New ids continue after the old ones.
      const next = (await again.post('/users', { name: 'after restart' })).body;
      expect(next.id).toBeGreaterThan(Math.max(...users.map((user) => user.id)));
      // The second start found the schema in place and applied nothing.
      expect(second.logLines().some((line) => line.msg === 'schema up to date')).toBe(true);
    } finally {
      await second.stop('SIGTERM');
    }
  });
});
