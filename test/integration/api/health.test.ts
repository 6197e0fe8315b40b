/**
 * Liveness and readiness: anyone learns the status and nothing more; a key of any scope sees the
 * checks, queue depths, circuit and version; only a down database or queue is a 503, never panic
 * mode alone (a monitor polling during panic mode must not feed the 5xx alarm).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { createDatabase } from '#core/db/connect.ts';
import { ensureSender } from '#core/delivery/panic-mode.ts';
import { apiEvent, createTestClient, testApiApp, testSqsClient } from '../../support/api.ts';
import { testDatabase } from '../../support/database.ts';
import { forgetSender, uniqueSenderId } from '../../support/delivery-control.ts';

const db = testDatabase();
afterAll(() => db.destroy());

/**
 * An app whose sender's circuit is this test's own and closed: other files open circuits of their
 * senders (and hand-opened ones stay open until a person closes them), so a shared sender's state
 * is not this file's to assume.
 */
async function appWithOwnSender() {
  const senderId = uniqueSenderId('health');
  await ensureSender(db, senderId);
  return testApiApp(db, { senderId });
}

describe('health', () => {
  it('answers liveness without a key and without the version', async () => {
    const response = await testApiApp(db)(apiEvent({ method: 'GET', path: '/health' }));
    expect(response.statusCode).toBe(200);
    const body = JSON.parse(response.body);
    expect(body).toEqual({ status: 'ok', timestamp: expect.any(String) });
  });

  it('tells an anonymous caller the status only: no checks, depths, circuit or version', async () => {
    const response = await (await appWithOwnSender())(
      apiEvent({ method: 'GET', path: '/v1/health' }),
    );
    expect(response.statusCode).toBe(200);
    expect(JSON.parse(response.body)).toEqual({ status: 'healthy', timestamp: expect.any(String) });
  });

  it('tells a caller with a bad key the status only, without a 401', async () => {
    const response = await testApiApp(db)(
      apiEvent({
        method: 'GET',
        path: '/v1/health',
        headers: { 'X-API-Key': 'wn_000000000000_x' },
      }),
    );
    expect(response.statusCode).toBe(200);
    expect(Object.keys(JSON.parse(response.body)).sort()).toEqual(['status', 'timestamp']);
  });

  it('shows the checks and version to a caller with a key of any scope', async () => {
    const { key } = await createTestClient(db, ['notifications:read']);
    const response = await (await appWithOwnSender())(
      apiEvent({ method: 'GET', path: '/v1/health', headers: { 'X-API-Key': key } }),
    );
    expect(response.statusCode).toBe(200);
    const body = JSON.parse(response.body);
    expect(body.status).toBe('healthy');
    expect(body.version).toBe('test');
    expect(body.checks.database).toMatchObject({ status: 'up', connected: true });
    expect(body.checks.queue).toMatchObject({ status: 'up', reachable: true });
    expect(body.checks.queue.depths).toEqual({
      high: expect.any(Number),
      bulk: expect.any(Number),
    });
  });

  it('answers panic mode alone with a 200 that reads degraded, not a 5xx', async () => {
    const { key } = await createTestClient(db, ['notifications:read']);
    const senderId = uniqueSenderId('health');
    await ensureSender(db, senderId);
    await db
      .updateTable('sender_state')
      .set({ circuit: 'open' })
      .where('sender_id', '=', senderId)
      .execute();
    try {
      const app = testApiApp(db, { senderId });
      const anonymous = await app(apiEvent({ method: 'GET', path: '/v1/health' }));
      const withKey = await app(
        apiEvent({ method: 'GET', path: '/v1/health', headers: { 'X-API-Key': key } }),
      );
      expect(anonymous.statusCode).toBe(200);
      expect(JSON.parse(anonymous.body)).toEqual({
        status: 'degraded',
        timestamp: expect.any(String),
      });
      expect(withKey.statusCode).toBe(200);
      expect(JSON.parse(withKey.body).checks.whatsapp).toMatchObject({
        status: 'down',
        circuit: 'open',
      });
    } finally {
      // Readiness without a sender reads every circuit: leave none open for other files.
      await forgetSender(db, senderId);
    }
  });

  it('answers 503 and names the queue to a key holder when the queue is down', async () => {
    const { key } = await createTestClient(db, ['notifications:read']);
    const sqs = testSqsClient('http://127.0.0.1:9');
    const app = testApiApp(db, {
      sqs,
      queue: { sqs, queueUrls: { high: 'http://127.0.0.1:9/0/h', bulk: 'http://127.0.0.1:9/0/b' } },
    });
    const anonymous = await app(apiEvent({ method: 'GET', path: '/v1/health' }));
    expect(anonymous.statusCode).toBe(503);
    expect(JSON.parse(anonymous.body)).toEqual({
      status: 'degraded',
      timestamp: expect.any(String),
    });
    const response = await app(
      apiEvent({ method: 'GET', path: '/v1/health', headers: { 'X-API-Key': key } }),
    );
    expect(response.statusCode).toBe(503);
    const body = JSON.parse(response.body);
    expect(body.status).toBe('degraded');
    expect(body.checks.queue.status).toBe('down');
    expect(body.checks.database.status).toBe('up');
  });

  it('answers 503 when the database is down', async () => {
    const deadDb = createDatabase({
      DATABASE_URL: 'postgres://postgres:postgres@127.0.0.1:9/none',
      DB_POOL_MAX: 1,
    } as never);
    const response = await testApiApp(deadDb)(apiEvent({ method: 'GET', path: '/v1/health' }));
    await deadDb.destroy();
    expect(response.statusCode).toBe(503);
    expect(JSON.parse(response.body)).toEqual({
      status: 'degraded',
      timestamp: expect.any(String),
    });
  });
});
