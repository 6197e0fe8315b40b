import { afterAll, describe, expect, it } from 'vitest';
import { createDatabase } from '#core/db/connect.ts';
import { apiEvent, testApiApp, testSqsClient } from '../../support/api.ts';
import { testDatabase } from '../../support/database.ts';

const db = testDatabase();
afterAll(() => db.destroy());

describe('health', () => {
  it('answers liveness without a key', async () => {
    const response = await testApiApp(db)(apiEvent({ method: 'GET', path: '/health' }));
    expect(response.statusCode).toBe(200);
    expect(JSON.parse(response.body)).toMatchObject({ status: 'ok', version: 'test' });
  });

  it('reports healthy with the database connected and the queue reachable', async () => {
    const response = await testApiApp(db)(apiEvent({ method: 'GET', path: '/v1/health' }));
    expect(response.statusCode).toBe(200);
    const body = JSON.parse(response.body);
    expect(body.status).toBe('healthy');
    expect(body.checks.database).toMatchObject({ status: 'up', connected: true });
    expect(body.checks.queue).toMatchObject({ status: 'up', reachable: true });
    expect(body.timestamp).toEqual(expect.any(String));
  });

  it('reports degraded with 503 and names the queue when it is down', async () => {
    const sqs = testSqsClient('http://127.0.0.1:9');
    const app = testApiApp(db, {
      sqs,
      queue: { sqs, queueUrls: { high: 'http://127.0.0.1:9/0/h', bulk: 'http://127.0.0.1:9/0/b' } },
    });
    const response = await app(apiEvent({ method: 'GET', path: '/v1/health' }));
    expect(response.statusCode).toBe(503);
    const body = JSON.parse(response.body);
    expect(body.status).toBe('degraded');
    expect(body.checks.queue.status).toBe('down');
    expect(body.checks.database.status).toBe('up');
  });

  it('reports degraded with 503 and database.connected false when the database is down', async () => {
    const deadDb = createDatabase({
      DATABASE_URL: 'postgres://postgres:postgres@127.0.0.1:9/none',
      DB_POOL_MAX: 1,
    } as never);
    const response = await testApiApp(deadDb)(apiEvent({ method: 'GET', path: '/v1/health' }));
    await deadDb.destroy();
    expect(response.statusCode).toBe(503);
    const body = JSON.parse(response.body);
    expect(body.status).toBe('degraded');
    expect(body.checks.database).toMatchObject({ status: 'down', connected: false });
  });
});
