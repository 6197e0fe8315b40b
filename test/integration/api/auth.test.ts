import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { revokeApiKey } from '#core/admin/api-keys.ts';
import { DenialLedger } from '#core/notifications/denials.ts';
import { apiEvent, createTestClient, testApiApp, uniqueRecipient } from '../../support/api.ts';
import { testDatabase } from '../../support/database.ts';

const db = testDatabase();
const app = testApiApp(db);
afterAll(() => db.destroy());

/** A documentation-range address of the test's own, to find its audit entries among the suite's. */
const uniqueSourceIp = () =>
  `2001:db8::${randomBytes(4)
    .toString('hex')
    .replace(/(.{4})/, '$1:')}`;

const body = () => ({ to: uniqueRecipient(), text: { body: 'hello' } });

async function auditFor(requestId: string) {
  return db.selectFrom('audit_log').selectAll().where('request_id', '=', requestId).execute();
}

describe('X-API-Key authentication', () => {
  it('answers 401 without a key or with a made-up one, audited as anonymous, never by its prefix', async () => {
    const real = await createTestClient(db);
    const wrong = `${real.key.slice(0, -4)}AAAA`;
    const sourceIp = uniqueSourceIp();
    const own = testApiApp(db, { denials: new DenialLedger() });
    const responses = [];
    const presented: Record<string, string>[] = [
      {},
      { 'X-API-Key': wrong },
      { 'X-API-Key': `wn_0123456789ab_${'F'.repeat(43)}` },
    ];
    for (const headers of presented) {
      const event = apiEvent({
        method: 'POST',
        path: '/v1/notifications',
        headers: { ...headers, 'X-Request-ID': 'chosen-by-the-caller' },
        body: body(),
      });
      event.requestContext.identity.sourceIp = sourceIp;
      responses.push(await own(event));
    }
    expect(responses.map((r) => r.statusCode)).toEqual([401, 401, 401]);
    expect(JSON.parse(responses[0]!.body).error.code).toBe('unauthorized');
    const audit = await db
      .selectFrom('audit_log')
      .selectAll()
      .where('source_ip', '=', sourceIp)
      .execute();
    // One sampled entry for the window, as `anonymous`, with API Gateway's request id.
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({
      actor: 'anonymous',
      action: 'auth.denied',
      outcome: 'denied',
    });
    expect(audit[0]!.request_id).not.toBe('chosen-by-the-caller');
    expect(JSON.stringify(audit)).not.toContain(real.prefix);
    expect(JSON.stringify(audit)).not.toContain(wrong);
  });

  it('answers 401 for a revoked key', async () => {
    const created = await createTestClient(db);
    await revokeApiKey(db, created.prefix, new Date());
    const response = await app(
      apiEvent({
        method: 'POST',
        path: '/v1/notifications',
        headers: { 'X-API-Key': created.key },
        body: body(),
      }),
    );
    expect(response.statusCode).toBe(401);
  });

  it('answers 403 when the key lacks the scope, and audits it', async () => {
    const readOnly = await createTestClient(db, ['notifications:read']);
    const response = await app(
      apiEvent({
        method: 'POST',
        path: '/v1/notifications',
        headers: { 'X-API-Key': readOnly.key, 'X-Request-ID': 'deny-scope-1' },
        body: body(),
      }),
    );
    expect(response.statusCode).toBe(403);
    expect(JSON.parse(response.body).error.code).toBe('forbidden');
    const audit = await auditFor('deny-scope-1');
    expect(audit[0]).toMatchObject({ action: 'auth.forbidden', outcome: 'denied' });
  });

  it('records when a key was last used', async () => {
    const created = await createTestClient(db);
    await app(
      apiEvent({
        method: 'POST',
        path: '/v1/notifications',
        headers: { 'X-API-Key': created.key },
        body: body(),
      }),
    );
    const row = await db
      .selectFrom('api_keys')
      .select('last_used_at')
      .where('prefix', '=', created.prefix)
      .executeTakeFirstOrThrow();
    expect(row.last_used_at).toBeInstanceOf(Date);
  });
});

describe('routing', () => {
  it('answers 404 for an unknown path and 405 for a wrong method, as JSON', async () => {
    const unknown = await app(apiEvent({ method: 'GET', path: '/v2/nothing' }));
    const wrongMethod = await app(apiEvent({ method: 'DELETE', path: '/v1/notifications' }));
    expect(unknown.statusCode).toBe(404);
    expect(wrongMethod.statusCode).toBe(405);
    expect(JSON.parse(wrongMethod.body).error.code).toBe('method_not_allowed');
  });
});
