/**
 * What the adapter does for every route before the handler runs: hostile paths are a 4xx, never a
 * 500; a body declared as something other than JSON is a 415 that writes nothing; a body with no
 * declared type is still read as JSON; every answer carries the request id.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { apiEvent, createTestClient, testApiApp, uniqueRecipient } from '../../support/api.ts';
import { testDatabase } from '../../support/database.ts';

const db = testDatabase(2);
const app = testApiApp(db);
afterAll(() => db.destroy());

async function rowsFor(recipient: string) {
  const rows = await db
    .selectFrom('notifications')
    .select('id')
    .where('client_id', 'is not', null)
    .where('metadata', '@>', JSON.stringify({ probe: recipient }) as never)
    .execute();
  return rows.length;
}

describe('the route adapter', () => {
  it.each([
    ['GET', '/v1/notifications/%E0%A4%A'],
    ['GET', '/v1/notifications/%'],
    ['GET', '/v1/admin/notifications/%ZZ'],
    ['POST', '/v1/admin/keys/%C0%AF/revoke'],
    ['GET', '/v1/notifications/..%2F..%2Fadmin%2Fstatus'],
    ['GET', `/v1/notifications/${'a'.repeat(10_000)}`],
    ['GET', '/v1/notifications/%00'],
    ['GET', '//v1/health/../health'],
    ['DELETE', '/v1/notifications'],
    ['GET', '/v1/notifications/a/b'],
  ])('answers %s %s with a 4xx in the error shape, never a 500', async (method, path) => {
    const { key } = await createTestClient(db, ['admin']);
    const response = await app(apiEvent({ method, path, headers: { 'X-API-Key': key } }));
    expect(response.statusCode, response.body).toBeGreaterThanOrEqual(400);
    expect(response.statusCode, response.body).toBeLessThan(500);
    expect(JSON.parse(response.body).error).toMatchObject({ code: expect.any(String) });
    expect(response.headers?.['x-request-id']).toBeTruthy();
  });

  it('names the path parameter whose percent-encoding is broken', async () => {
    const response = await app(apiEvent({ method: 'GET', path: '/v1/notifications/%E0%A4%A' }));
    expect(response.statusCode).toBe(400);
    expect(JSON.parse(response.body).error).toMatchObject({
      code: 'validation_error',
      field: 'id',
    });
  });

  it('refuses a body declared as another media type with a 415 and writes nothing', async () => {
    const { key } = await createTestClient(db);
    const recipient = uniqueRecipient();
    const response = await app(
      apiEvent({
        method: 'POST',
        path: '/v1/notifications',
        headers: { 'X-API-Key': key, 'content-type': 'text/plain' },
        body: { to: recipient, text: { body: 'hi' }, metadata: { probe: recipient } },
      }),
    );
    expect(response.statusCode).toBe(415);
    expect(JSON.parse(response.body).error.code).toBe('unsupported_media_type');
    expect(await rowsFor(recipient)).toBe(0);
  });

  it('reads a body with no declared type, or a JSON type with parameters, as JSON', async () => {
    const { key } = await createTestClient(db);
    for (const type of ['', 'application/json; charset=utf-8', 'application/merge-patch+json']) {
      const recipient = uniqueRecipient();
      const event = apiEvent({
        method: 'POST',
        path: '/v1/notifications',
        headers: { 'X-API-Key': key },
        body: { to: recipient, text: { body: 'hi' }, metadata: { probe: recipient } },
      });
      if (type === '') delete event.headers['content-type'];
      else event.headers['content-type'] = type;
      const response = await app(event);
      expect(response.statusCode, `${type}: ${response.body}`).toBe(202);
      expect(await rowsFor(recipient)).toBe(1);
    }
  });
});
