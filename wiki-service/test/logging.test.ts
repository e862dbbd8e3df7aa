import { describe, expect, it } from 'vitest';
import { backendUnavailable } from './support/backends.js';
import { client } from '@wiki/test-support/http';
import { TEST_DB_PASSWORD } from '@wiki/test-support/postgres';
import { serviceEnvFor } from './support/app.js';
import { startService } from './support/service-process.js';

describe.skipIf(backendUnavailable('postgres'))('structured logs', () => {
  it('one JSON line per request with method, route, status, duration and request id; no secrets anywhere', async () => {
    const service = await startService(await serviceEnvFor('postgres'));
    const api = client(service.baseUrl);
    const created = await api.post('/users', { name: 'logged' }, { headers: { 'x-request-id': 'req-abc-123' } });
    await api.get('/user/2147483647');
    await api.get(`/user/${created.body.id}`);
    await service.stop();

    const lines = service.logLines();
    const requests = lines.filter((line) => line.msg === 'request');
    expect(requests.filter((line) => line.request_id === 'req-abc-123')).toEqual([
      expect.objectContaining({ method: 'POST', route: '/users', status: 200, duration_ms: expect.any(Number), level: 30 }),
    ]);
    expect(requests).toContainEqual(expect.objectContaining({ method: 'GET', route: '/user/:id', status: 404 }));
    for (const line of requests) expect(typeof line.request_id).toBe('string');
    // Exactly one line per request (3 here, plus the start-up probe of /health).
    expect(requests.filter((line) => line.route !== '/health')).toHaveLength(3);

    const database = lines.find((line) => line.msg === 'using database');
    expect(database?.database).toMatch(/^PostgreSQL postgresql:\/\/wiki@127\.0\.0\.1:\d+\/test_/);
    expect(service.output()).not.toContain(TEST_DB_PASSWORD);
  });
});
