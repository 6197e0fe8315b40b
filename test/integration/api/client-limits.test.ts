/**
 * Per-client limits and key expiry through the real API app on the suite's PostgreSQL (issue 16):
 * a key's rate and daily quota answer 429 with Retry-After and the RateLimit fields, a batch counts
 * each item, a key limited to bulk cannot ask for high, a replay costs nothing, an expired key is a
 * 401 of its own, a key being retired is not rotated again, and the take from the client's row
 * matches a model of the bucket for any sequence of requests (property test); an admin changes a
 * client's limits later (PUT /v1/admin/clients/{id}/limits) and the next request is counted by them.
 */
import fc from 'fast-check';
import { sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { createApiClient, rotateApiKey } from '#core/admin/api-keys.ts';
import type { ClientLimits } from '#core/notifications/client-quota.ts';
import { bucketCapacity, takeClientQuota } from '#core/notifications/client-quota.ts';
import { uuidv7 } from '#core/platform/ids.ts';
import { apiEvent, createTestClient, testApiApp, uniqueRecipient } from '../../support/api.ts';
import { testDatabase } from '../../support/database.ts';

const db = testDatabase();
afterAll(() => db.destroy());

/** An API app whose clock the test sets. */
function appAt(start: Date) {
  const clock = { now: start };
  const app = testApiApp(db, { now: () => clock.now });
  return {
    app,
    /** Moves the clock on by `ms`. */
    advance(ms: number) {
      clock.now = new Date(clock.now.getTime() + ms);
    },
    set(at: Date) {
      clock.now = at;
    },
  };
}

async function limitedClient(limits: Partial<ClientLimits>, expiresAt?: Date) {
  return createApiClient(db, {
    name: `limits-${uuidv7()}`,
    scopes: ['notifications:write', 'notifications:read'],
    limits: { ratePerSecond: null, dailyQuota: null, maxPriority: null, ...limits },
    expiresAt: expiresAt ?? null,
  });
}

const notification = (extra: Record<string, unknown> = {}) => ({
  to: uniqueRecipient(),
  text: { body: 'hello' },
  ...extra,
});

function post(key: string, body: unknown, headers: Record<string, string> = {}) {
  return apiEvent({
    method: 'POST',
    path: '/v1/notifications',
    headers: { 'X-API-Key': key, ...headers },
    body,
  });
}

function postBatch(key: string, items: unknown[]) {
  return apiEvent({
    method: 'POST',
    path: '/v1/notifications/batch',
    headers: { 'X-API-Key': key },
    body: { notifications: items },
  });
}

/** Yesterday 23:00 UTC: an hour before a UTC midnight, and in the past (rows are real rows). */
function yesterdayAt23(): Date {
  const now = new Date();
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() - 1, 23));
}

describe('a key with a rate', () => {
  it('accepts a burst of ten seconds of its rate, then answers 429 with Retry-After and the RateLimit fields until tokens come back', async () => {
    // prepare: 1/s, so a bucket of 10
    const client = await limitedClient({ ratePerSecond: 1 });
    const t = appAt(new Date());

    // act
    const burst = [];
    for (let i = 0; i < 10; i++) burst.push(await t.app(post(client.key, notification())));
    const over = await t.app(post(client.key, notification()));
    t.advance(2_000);
    const later = await t.app(post(client.key, notification()));

    // assess
    expect(burst.map((r) => r.statusCode)).toEqual(Array(10).fill(202));
    expect(burst[0]!.headers).toMatchObject({
      'ratelimit-policy': '"rate";q=10;w=10',
      ratelimit: '"rate";r=9;t=1',
    });
    expect(over.statusCode).toBe(429);
    expect(JSON.parse(over.body).error).toMatchObject({ code: 'rate_limited' });
    expect(over.headers).toMatchObject({
      'retry-after': '1',
      'ratelimit-policy': '"rate";q=10;w=10',
      ratelimit: '"rate";r=0;t=10',
    });
    expect(later.statusCode).toBe(202);
    expect(later.headers?.ratelimit).toBe('"rate";r=1;t=9');
  });

  it('counts each item of a batch: the items over the rate get 429 and the batch 207', async () => {
    const client = await limitedClient({ ratePerSecond: 0.5 });
    const t = appAt(new Date());

    const response = await t.app(
      postBatch(
        client.key,
        Array.from({ length: 8 }, () => notification()),
      ),
    );

    expect(response.statusCode).toBe(207);
    const answer = JSON.parse(response.body);
    expect(answer.results.map((r: { status: number }) => r.status)).toEqual([
      202, 202, 202, 202, 202, 429, 429, 429,
    ]);
    expect(answer.results[5].error.code).toBe('rate_limited');
    // Three more need six seconds of a 0.5/s rate.
    expect(response.headers).toMatchObject({ 'retry-after': '6' });
  });
});

describe('a key with a daily quota', () => {
  it('accepts 40 of a batch of 100, refuses the rest until 00:00 UTC, and accepts again after it', async () => {
    // prepare: the finding's numbers, an hour before midnight
    const client = await limitedClient({ dailyQuota: 40 });
    const t = appAt(yesterdayAt23());

    // act
    const batch = await t.app(
      postBatch(
        client.key,
        Array.from({ length: 100 }, () => notification({ priority: 'bulk' })),
      ),
    );
    t.advance(30 * 60_000);
    const single = await t.app(post(client.key, notification()));
    t.advance(30 * 60_000 + 1_000);
    const nextDay = await t.app(post(client.key, notification()));

    // assess
    expect(batch.statusCode).toBe(207);
    const answer = JSON.parse(batch.body);
    expect({ accepted: answer.accepted, rejected: answer.rejected }).toEqual({
      accepted: 40,
      rejected: 60,
    });
    expect(answer.results[40].error.code).toBe('daily_quota_exceeded');
    expect(batch.headers).toMatchObject({
      'retry-after': '3600',
      'ratelimit-policy': '"daily";q=40;w=86400',
      ratelimit: '"daily";r=0;t=3600',
    });
    expect(single.statusCode).toBe(429);
    expect(single.headers?.['retry-after']).toBe('1800');
    expect(JSON.parse(single.body).error.code).toBe('daily_quota_exceeded');
    expect(nextDay.statusCode).toBe(202);
    expect(nextDay.headers?.ratelimit).toBe('"daily";r=39;t=86399');
    const stored = await db
      .selectFrom('notifications')
      .select((eb) => eb.fn.countAll<string>().as('n'))
      .where('client_id', '=', client.clientId)
      .executeTakeFirstOrThrow();
    expect(Number(stored.n)).toBe(41);
  });

  it('answers a batch entirely over the quota with 429', async () => {
    const client = await limitedClient({ dailyQuota: 0 });
    const response = await appAt(new Date()).app(postBatch(client.key, [notification()]));
    expect(response.statusCode).toBe(429);
    expect(JSON.parse(response.body)).toMatchObject({ accepted: 0, rejected: 1 });
    expect(response.headers?.['retry-after']).toBeDefined();
  });

  it('gives back what a batch item refused after the take (a sendAt too far ahead) took', async () => {
    const client = await limitedClient({ dailyQuota: 2 });
    const t = appAt(new Date());
    const tooFar = new Date(Date.now() + 60 * 86_400_000).toISOString();

    const batch = await t.app(
      postBatch(client.key, [notification(), notification({ sendAt: tooFar })]),
    );
    const second = await t.app(post(client.key, notification()));
    const third = await t.app(post(client.key, notification()));

    expect(JSON.parse(batch.body).results.map((r: { status: number }) => r.status)).toEqual([
      202, 400,
    ]);
    expect([second.statusCode, third.statusCode]).toEqual([202, 429]);
  });

  it('charges nothing for an idempotent replay', async () => {
    const client = await limitedClient({ dailyQuota: 2 });
    const t = appAt(new Date());
    const body = notification();

    const first = await t.app(post(client.key, body, { 'Idempotency-Key': 'same-1' }));
    const replay = await t.app(post(client.key, body, { 'Idempotency-Key': 'same-1' }));
    const second = await t.app(post(client.key, notification()));
    const third = await t.app(post(client.key, notification()));

    expect([first, replay, second, third].map((r) => r.statusCode)).toEqual([202, 202, 202, 429]);
    expect(replay.headers?.['idempotent-replayed']).toBe('true');
  });
});

describe('a key limited to bulk', () => {
  it('refuses high priority (also by default) with 403 and accepts bulk', async () => {
    const client = await limitedClient({ maxPriority: 'bulk' });
    const t = appAt(new Date());

    const high = await t.app(post(client.key, notification({ priority: 'high' })));
    const byDefault = await t.app(post(client.key, notification()));
    const bulk = await t.app(post(client.key, notification({ priority: 'bulk' })));
    const batch = await t.app(
      postBatch(client.key, [notification({ priority: 'bulk' }), notification()]),
    );

    expect(high.statusCode).toBe(403);
    expect(JSON.parse(high.body).error).toMatchObject({
      code: 'priority_not_allowed',
      field: 'priority',
    });
    expect(byDefault.statusCode).toBe(403);
    expect(bulk.statusCode).toBe(202);
    expect(batch.statusCode).toBe(207);
    const results = JSON.parse(batch.body).results;
    expect(results.map((r: { status: number }) => r.status)).toEqual([202, 403]);
    expect(results[1].error.field).toBe('notifications.1.priority');
  });

  it('leaves a key without limits unmarked: no RateLimit fields', async () => {
    const { key } = await createTestClient(db);
    const response = await appAt(new Date()).app(post(key, notification()));
    expect(response.statusCode).toBe(202);
    expect(response.headers?.ratelimit).toBeUndefined();
    expect(response.headers?.['ratelimit-policy']).toBeUndefined();
  });
});

describe('key expiry', () => {
  it('answers 401 api_key_expired once the expiry has passed, and works until then', async () => {
    const now = new Date();
    const client = await limitedClient({}, new Date(now.getTime() + 3_600_000));
    const t = appAt(now);

    const before = await t.app(post(client.key, notification()));
    t.advance(3_600_000);
    const after = await t.app(post(client.key, notification()));

    expect(before.statusCode).toBe(202);
    expect(after.statusCode).toBe(401);
    expect(JSON.parse(after.body).error.code).toBe('api_key_expired');
  });

  it('refuses to rotate a key already in a grace period, so a rotation cannot extend it', async () => {
    const client = await limitedClient({});
    const now = new Date();
    const first = await rotateApiKey(db, client.prefix, 3_600, now);
    const again = await rotateApiKey(db, client.prefix, 30 * 86_400, now);

    expect(first.kind).toBe('rotated');
    expect(again).toEqual({ kind: 'expiring', endsAt: new Date(now.getTime() + 3_600_000) });
    const row = await db
      .selectFrom('api_keys')
      .select('revoked_at')
      .where('prefix', '=', client.prefix)
      .executeTakeFirstOrThrow();
    expect(row.revoked_at).toEqual(new Date(now.getTime() + 3_600_000));
  });

  it('gives the new key the old key’s lifetime and never lets the grace outlive the old expiry', async () => {
    const now = new Date();
    const client = await createApiClient(db, {
      name: `lifetime-${uuidv7()}`,
      scopes: ['notifications:write'],
      expiresAt: new Date(now.getTime() + 3_600_000),
    });
    const created = await db
      .selectFrom('api_keys')
      .select(['created_at', 'expires_at'])
      .where('prefix', '=', client.prefix)
      .executeTakeFirstOrThrow();
    const lifetime = created.expires_at!.getTime() - created.created_at.getTime();

    const rotated = await rotateApiKey(db, client.prefix, 86_400, now);

    expect(rotated).toMatchObject({
      kind: 'rotated',
      oldKeyExpiresAt: created.expires_at,
      expiresAt: new Date(now.getTime() + lifetime),
    });
  });
});

describe('keys on the admin API', () => {
  async function adminApp(now = new Date()) {
    const admin = await createTestClient(db, ['admin']);
    return { ...appAt(now), key: admin.key };
  }

  it('creates a key with limits and an expiry, and lists them', async () => {
    const t = await adminApp();
    const created = await t.app(
      apiEvent({
        method: 'POST',
        path: '/v1/admin/keys',
        headers: { 'X-API-Key': t.key },
        body: {
          name: 'newsletter',
          ratePerSecond: 5,
          dailyQuota: 20_000,
          maxPriority: 'bulk',
          expires: '90d',
        },
      }),
    );
    expect(created.statusCode).toBe(201);
    const body = JSON.parse(created.body);
    expect(body.limits).toEqual({ ratePerSecond: 5, dailyQuota: 20_000, maxPriority: 'bulk' });
    const days = (Date.parse(body.expiresAt) - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(89.9);
    expect(days).toBeLessThanOrEqual(90);

    const list = await t.app(
      apiEvent({ method: 'GET', path: '/v1/admin/keys', headers: { 'X-API-Key': t.key } }),
    );
    const listed = JSON.parse(list.body).keys.find(
      (k: { prefix: string }) => k.prefix === body.prefix,
    );
    expect(listed).toMatchObject({
      state: 'active',
      expiresAt: body.expiresAt,
      limits: body.limits,
    });
  });

  it.each([
    ['yesterday', '2020-01-01'],
    ['nonsense', 'soon'],
    ['too far', '800d'],
    ['a date-time without a zone', '2030-01-01T00:00'],
  ])('refuses an expiry that is %s with 400 naming expires', async (_what, expires) => {
    const t = await adminApp();
    const response = await t.app(
      apiEvent({
        method: 'POST',
        path: '/v1/admin/keys',
        headers: { 'X-API-Key': t.key },
        body: { name: 'bad-expiry', expires },
      }),
    );
    expect(response.statusCode).toBe(400);
    expect(JSON.parse(response.body).error.field).toBe('expires');
  });

  it('answers 409 key_expiring for a rotation of a key in its grace period', async () => {
    const t = await adminApp();
    const target = await createTestClient(db);
    const rotate = () =>
      t.app(
        apiEvent({
          method: 'POST',
          path: `/v1/admin/keys/${target.prefix}/rotate`,
          headers: { 'X-API-Key': t.key },
          body: { graceSeconds: 600 },
        }),
      );
    expect((await rotate()).statusCode).toBe(201);
    const second = await rotate();
    expect(second.statusCode).toBe(409);
    expect(JSON.parse(second.body).error.code).toBe('key_expiring');
  });

  it('warns in /v1/admin/status of a key that expires within 14 days, and not of one in 20', async () => {
    const now = new Date();
    const soon = await limitedClient({}, new Date(now.getTime() + 3 * 86_400_000));
    const later = await limitedClient({}, new Date(now.getTime() + 20 * 86_400_000));
    const t = await adminApp(now);

    const response = await t.app(
      apiEvent({ method: 'GET', path: '/v1/admin/status', headers: { 'X-API-Key': t.key } }),
    );

    expect(response.statusCode).toBe(200);
    const { keys } = JSON.parse(response.body);
    expect(keys.warningDays).toBe(14);
    const prefixes = keys.expiringSoon.map((k: { prefix: string }) => k.prefix);
    expect(prefixes).toContain(soon.prefix);
    expect(prefixes).not.toContain(later.prefix);
  });
});

describe("changing a client's limits on the admin API", () => {
  async function limitsApp() {
    const admin = await createTestClient(db, ['admin']);
    const t = appAt(new Date());
    const put = (clientId: string, body: unknown, key = admin.key) =>
      t.app(
        apiEvent({
          method: 'PUT',
          path: `/v1/admin/clients/${clientId}/limits`,
          headers: { 'X-API-Key': key },
          body,
        }),
      );
    return { ...t, put };
  }

  async function auditedChanges(clientId: string) {
    const rows = await db
      .selectFrom('audit_log')
      .select(['actor', 'detail'])
      .where('action', '=', 'client.limits')
      .where(sql<boolean>`detail->>'clientId' = ${clientId}`)
      .orderBy('id')
      .execute();
    return rows;
  }

  it('sets a daily quota and bulk only on a client without limits, counted from the next request, and audits from and to', async () => {
    const client = await limitedClient({});
    const t = await limitsApp();
    const before = await t.app(post(client.key, notification({ priority: 'high' })));

    const changed = await t.put(client.clientId, { dailyQuota: 2, maxPriority: 'bulk' });
    const high = await t.app(post(client.key, notification({ priority: 'high' })));
    const bulk = [];
    for (let i = 0; i < 3; i++) {
      bulk.push(await t.app(post(client.key, notification({ priority: 'bulk' }))));
    }

    expect(before.statusCode).toBe(202);
    expect(changed.statusCode).toBe(200);
    expect(JSON.parse(changed.body)).toEqual({
      clientId: client.clientId,
      name: expect.any(String),
      limits: { ratePerSecond: null, dailyQuota: 2, maxPriority: 'bulk' },
      previousLimits: { ratePerSecond: null, dailyQuota: null, maxPriority: null },
    });
    expect(high.statusCode).toBe(403);
    expect(bulk.map((r) => r.statusCode)).toEqual([202, 202, 429]);
    const audited = await auditedChanges(client.clientId);
    expect(audited).toHaveLength(1);
    expect(audited[0]!.actor).toMatch(/^key:/);
    expect(audited[0]!.detail).toEqual({
      clientId: client.clientId,
      from: { ratePerSecond: null, dailyQuota: null, maxPriority: null },
      to: { ratePerSecond: null, dailyQuota: 2, maxPriority: 'bulk' },
    });
  });

  it('removes a limit given as null and keeps the ones left out', async () => {
    const client = await limitedClient({ ratePerSecond: 0.1, dailyQuota: 1, maxPriority: 'bulk' });
    const t = await limitsApp();
    const first = await t.app(post(client.key, notification({ priority: 'bulk' })));
    const over = await t.app(post(client.key, notification({ priority: 'bulk' })));

    const changed = await t.put(client.clientId, { ratePerSecond: null, dailyQuota: null });
    const after = [];
    for (let i = 0; i < 3; i++) {
      after.push(await t.app(post(client.key, notification({ priority: 'bulk' }))));
    }
    const high = await t.app(post(client.key, notification({ priority: 'high' })));

    expect([first.statusCode, over.statusCode]).toEqual([202, 429]);
    expect(JSON.parse(changed.body).limits).toEqual({
      ratePerSecond: null,
      dailyQuota: null,
      maxPriority: 'bulk',
    });
    expect(after.map((r) => r.statusCode)).toEqual([202, 202, 202]);
    expect(after[0]!.headers?.ratelimit).toBeUndefined();
    expect(high.statusCode).toBe(403);
  });

  it('lowers a rate so the next requests are counted against the new bucket', async () => {
    const client = await limitedClient({ ratePerSecond: 100 });
    const t = await limitsApp();
    const fast = await t.app(post(client.key, notification()));

    // 0.1/s: a bucket of one notification, whatever the old bucket held.
    const changed = await t.put(client.clientId, { ratePerSecond: 0.1 });
    const next = await t.app(post(client.key, notification()));
    const over = await t.app(post(client.key, notification()));

    expect([fast.statusCode, changed.statusCode, next.statusCode]).toEqual([202, 200, 202]);
    expect(over.statusCode).toBe(429);
    expect(over.headers?.['retry-after']).toBeDefined();
  });

  it('answers 404 for an unknown client and for a client id that is not a UUID, writing nothing', async () => {
    const t = await limitsApp();
    const unknown = uuidv7();

    const missing = await t.put(unknown, { dailyQuota: 5 });
    const malformed = await t.put('not-a-client', { dailyQuota: 5 });

    expect([missing.statusCode, malformed.statusCode]).toEqual([404, 404]);
    expect(await auditedChanges(unknown)).toEqual([]);
  });

  it.each([
    ['a rate of 0', { ratePerSecond: 0 }, 'ratePerSecond'],
    ['a rate above 10000', { ratePerSecond: 10_001 }, 'ratePerSecond'],
    ['a rate as text', { ratePerSecond: '5/s' }, 'ratePerSecond'],
    ['a fractional quota', { dailyQuota: 1.5 }, 'dailyQuota'],
    ['a negative quota', { dailyQuota: -1 }, 'dailyQuota'],
    ['an unknown priority', { maxPriority: 'normal' }, 'maxPriority'],
    ['an unknown field', { dailyQuota: 5, burst: 3 }, 'burst'],
  ])('refuses %s with 400 naming the field and changes nothing', async (_what, body, field) => {
    const client = await limitedClient({ dailyQuota: 10 });
    const t = await limitsApp();

    const response = await t.put(client.clientId, body);

    expect(response.statusCode).toBe(400);
    expect(JSON.parse(response.body).error.field).toBe(field);
    expect(await auditedChanges(client.clientId)).toEqual([]);
  });

  it('refuses a body that changes nothing with 400', async () => {
    const client = await limitedClient({});
    const t = await limitsApp();
    const response = await t.put(client.clientId, {});
    expect(response.statusCode).toBe(400);
    expect(await auditedChanges(client.clientId)).toEqual([]);
  });

  it('refuses a key without the admin scope with 403', async () => {
    const client = await limitedClient({ dailyQuota: 1 });
    const t = await limitsApp();
    const response = await t.put(client.clientId, { dailyQuota: null }, client.key);
    expect(response.statusCode).toBe(403);
    expect(await auditedChanges(client.clientId)).toEqual([]);
  });
});

describe('the take from the client row (property)', () => {
  /** The bucket and the day's count as the statement should keep them, in plain arithmetic. */
  function model(rate: number | null, quota: number | null) {
    const capacity = rate === null ? null : bucketCapacity(rate);
    let tokens = capacity;
    let used = 0;
    return (elapsedSeconds: number, wanted: number): number => {
      if (rate !== null && capacity !== null && tokens !== null) {
        tokens = Math.min(capacity, tokens + elapsedSeconds * rate);
      }
      const n = Math.max(
        0,
        Math.min(
          wanted,
          tokens === null ? wanted : Math.floor(tokens),
          quota === null ? wanted : quota - used,
        ),
      );
      if (tokens !== null) tokens -= n;
      used += n;
      return n;
    };
  }

  it('grants what the model grants, never more than the bucket and the quota allow, for any sequence of requests', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.option(fc.constantFrom(0.5, 1, 2, 5, 20), { nil: null }),
        fc.option(fc.integer({ min: 0, max: 60 }), { nil: null }),
        fc.array(
          fc.record({
            tenths: fc.integer({ min: 0, max: 40 }),
            wanted: fc.integer({ min: 1, max: 100 }),
          }),
          { minLength: 1, maxLength: 12 },
        ),
        async (rate, quota, requests) => {
          const client = await limitedClient({ ratePerSecond: rate, dailyQuota: quota });
          const expected = model(rate, quota);
          // Noon UTC: the sequence (at most 48 s) stays within one UTC day.
          let at = Date.UTC(2026, 10, 28, 12);
          let total = 0;
          for (const { tenths, wanted } of requests) {
            at += tenths * 100;
            const take = await takeClientQuota(db, client.clientId, wanted, new Date(at));
            expect(take.granted).toBe(expected(tenths / 10, wanted));
            total += take.granted;
            expect(take.granted).toBeLessThanOrEqual(wanted);
            if (quota !== null) expect(take.dayUsed).toBeLessThanOrEqual(quota);
          }
          if (rate !== null) {
            const seconds = (at - Date.UTC(2026, 10, 28, 12)) / 1000;
            expect(total).toBeLessThanOrEqual(bucketCapacity(rate) + rate * seconds);
          }
        },
      ),
      { numRuns: 30 },
    );
  });
});
