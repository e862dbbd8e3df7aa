import type { QueryResultRow } from 'pg';
import { expect } from 'vitest';
import { client, metricValue } from '@wiki/test-support/http';
import type { ServiceProcess } from './service-process.js';
import { missingWrites, type startWriters } from '@wiki/test-support/writers';

// What must hold after a fault under load, checked the same way wherever the
// writers ran through several service processes (failover.test.ts, pgbouncer.test.ts).

type Writers = ReturnType<typeof startWriters>;

/**
 * Every answer was 200 or 503 (and no id acknowledged twice), the fault was felt (some
 * 503s), every service is up and ready, and every acknowledged write is in the
 * database `query` reads, exactly as acknowledged.
 */
export async function expectNothingLost(services: ServiceProcess[], load: Writers, query: (sql: string) => Promise<QueryResultRow[]>, felt: string) {
  expect(load.unexpected, 'every request answered 200 or 503, and no id was acknowledged twice').toEqual([]);
  expect(load.statuses.get('503') ?? 0, felt).toBeGreaterThan(0);
  for (const service of services) {
    expect(service.exit(), service.output()).toBeUndefined();
    expect((await client(service.baseUrl).get('/ready')).status).toBe(200);
  }
  expect(await missingWrites(load.acknowledged, query)).toEqual({ users: [], posts: [] });
}

/** A counter summed over the services' /metrics (NaN if one lacks it). */
export async function summedCounter(services: ServiceProcess[], name: string): Promise<number> {
  let sum = 0;
  for (const service of services) sum += metricValue((await client(service.baseUrl).get('/metrics')).text, name) ?? Number.NaN;
  return sum;
}
