import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { describe, expect } from 'vitest';
import type { NotificationView } from '#core/notifications/notification-view.ts';
import {
  apiEvent,
  createTestClient,
  testApiApp,
  testSqsClient,
  uniqueRecipient,
} from '../../support/api.ts';
import { apiTest } from '../../support/fixtures.ts';

/** The file's API test with `post`: POST /v1/notifications as the file's client. */
const it = apiTest.extend(
  'post',
  { scope: 'file' },
  ({ asClient }) =>
    (body: unknown, headers: Record<string, string> = {}) =>
      asClient({ method: 'POST', path: '/v1/notifications', headers, body }),
);

const templateBody = (to = uniqueRecipient()) => ({
  to,
  template: {
    name: 'appointment_reminder',
    language: 'es',
    components: [{ type: 'body', parameters: [{ type: 'text', text: 'Ana' }] }],
  },
});

describe('POST /v1/notifications', () => {
  it('stores a template notification, queues its id on the high queue, and answers 202', async ({
    db,
    post,
  }) => {
    const response = await post(templateBody(), { 'X-Request-ID': 'trace-abc-123' });

    expect(response.statusCode).toBe(202);
    const body = JSON.parse(response.body) as NotificationView;
    expect(body.status).toBe('queued');
    expect(body.priority).toBe('high');
    expect(body.requestId).toBe('trace-abc-123');
    expect(body.to).toMatch(/^\+57\*+\d{4}$/);
    expect(response.headers?.location).toBe(`/v1/notifications/${body.id}`);
    const row = await db
      .selectFrom('notifications')
      .selectAll()
      .where('id', '=', body.id)
      .executeTakeFirstOrThrow();
    expect(row.status).toBe('queued');
    const events = await db
      .selectFrom('notification_events')
      .select(['from_status', 'to_status'])
      .where('notification_id', '=', body.id)
      .orderBy('id')
      .execute();
    expect(events.map((e) => e.to_status)).toEqual(['accepted', 'queued']);
  });

  it('puts bulk notifications on the bulk queue with the request id as an attribute', async ({
    post,
  }) => {
    const response = await post(
      { ...templateBody(), priority: 'bulk' },
      { 'X-Request-ID': 'bulk-trace-1' },
    );
    expect(response.statusCode).toBe(202);
    const { id } = JSON.parse(response.body) as NotificationView;

    const sqs = testSqsClient();
    let found: { body?: string; requestId?: string } | undefined;
    // The suite shares this queue: what we receive stays hidden a few seconds, so each receive
    // looks further down a queue that other files filled, not at the same ten messages again.
    for (let i = 0; i < 50 && !found; i++) {
      const received = await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: process.env.BULK_QUEUE_URL,
          MaxNumberOfMessages: 10,
          MessageAttributeNames: ['All'],
          VisibilityTimeout: 5,
          WaitTimeSeconds: 0,
        }),
      );
      const match = received.Messages?.find((m) => m.Body === id);
      if (match)
        found = { body: match.Body, requestId: match.MessageAttributes?.requestId?.StringValue };
    }
    expect(found).toEqual({ body: id, requestId: 'bulk-trace-1' });
  });

  it('accepts free text and keeps metadata to echo back', async ({ post }) => {
    const response = await post({
      to: uniqueRecipient(),
      text: { body: 'Your code is 123456' },
      metadata: { orderId: 'A-1' },
    });
    expect(response.statusCode).toBe(202);
    const body = JSON.parse(response.body) as NotificationView;
    expect(body.type).toBe('text');
    expect(body.metadata).toEqual({ orderId: 'A-1' });
  });

  it('stores a future sendAt as scheduled without queueing it', async ({ post }) => {
    const sendAt = new Date(Date.now() + 3_600_000).toISOString();
    const response = await post({ ...templateBody(), sendAt });
    expect(response.statusCode).toBe(202);
    const body = JSON.parse(response.body) as NotificationView;
    expect(body.status).toBe('scheduled');
    expect(body.sendAt).toBe(sendAt);
  });

  it('keeps the row accepted and still answers 202 when the queue cannot be reached', async ({
    db,
    key,
  }) => {
    const brokenApp = testApiApp(db, {
      queue: {
        sqs: testSqsClient('http://127.0.0.1:9'),
        queueUrls: { high: 'http://127.0.0.1:9/0/q', bulk: 'http://127.0.0.1:9/0/q' },
      },
    });
    const response = await brokenApp(
      apiEvent({
        method: 'POST',
        path: '/v1/notifications',
        headers: { 'X-API-Key': key },
        body: templateBody(),
      }),
    );
    expect(response.statusCode).toBe(202);
    const body = JSON.parse(response.body) as NotificationView;
    expect(body.status).toBe('accepted');
    const row = await db
      .selectFrom('notifications')
      .select('status')
      .where('id', '=', body.id)
      .executeTakeFirstOrThrow();
    expect(row.status).toBe('accepted');
  });

  const bad: [string, unknown, string | undefined][] = [
    ['a number without the plus', { ...templateBody(), to: '573001234567' }, 'to'],
    ['a number that is not valid', { ...templateBody(), to: '+571234' }, 'to'],
    ['a fixed line', { ...templateBody(), to: '+5716012345' }, 'to'],
    ['a number of the wrong type', { ...templateBody(), to: 573001234567 }, 'to'],
    ['an unknown field', { ...templateBody(), colour: 'blue' }, 'colour'],
    ['both text and template', { ...templateBody(), text: { body: 'hi' } }, 'text'],
    ['neither text nor template', { to: uniqueRecipient() }, 'template'],
    ['a bad priority', { ...templateBody(), priority: 'urgent' }, 'priority'],
    [
      'a sendAt in the past',
      { ...templateBody(), sendAt: new Date(Date.now() - 60_000).toISOString() },
      'sendAt',
    ],
    [
      'a sendAt beyond 30 days',
      { ...templateBody(), sendAt: new Date(Date.now() + 31 * 86_400_000).toISOString() },
      'sendAt',
    ],
    ['a sendAt that is not ISO 8601', { ...templateBody(), sendAt: 'tomorrow' }, 'sendAt'],
    [
      'a template without a language',
      { to: uniqueRecipient(), template: { name: 'x' } },
      'template.language',
    ],
    ['an empty text body', { to: uniqueRecipient(), text: { body: '' } }, 'text.body'],
    ['a JSON array', [1, 2], undefined],
  ];

  it.for(bad)(
    'rejects %s with 400, names the field, and writes nothing',
    async ([_name, body, field], { post, rowCount }) => {
      const before = await rowCount();
      const response = await post(body);
      expect(response.statusCode).toBe(400);
      const error = JSON.parse(response.body).error;
      expect(error.code).toBe('validation_error');
      expect(error.field).toBe(field);
      expect(error.requestId).toEqual(expect.any(String));
      const to = (body as { to?: unknown }).to;
      if (to !== undefined) expect(response.body).not.toContain(String(to).replace('+', ''));
      expect(response.body).not.toMatch(/at .*\.ts/);
      expect(await rowCount()).toBe(before);
    },
  );

  it('rejects a body that is not JSON', async ({ asClient, rowCount }) => {
    const before = await rowCount();
    const response = await asClient({
      method: 'POST',
      path: '/v1/notifications',
      rawBody: '{"to": ',
    });
    expect(response.statusCode).toBe(400);
    expect(JSON.parse(response.body).error.code).toBe('invalid_json');
    expect(await rowCount()).toBe(before);
  });

  it('rejects a body over 64 KB', async ({ post, rowCount }) => {
    const before = await rowCount();
    const response = await post({ ...templateBody(), metadata: { big: 'x'.repeat(70_000) } });
    expect(response.statusCode).toBe(400);
    expect(JSON.parse(response.body).error.code).toBe('body_too_large');
    expect(await rowCount()).toBe(before);
  });
});

describe('Idempotency-Key', () => {
  it('replays the first answer for the same key and body', async ({ post }) => {
    const body = templateBody();
    const first = await post(body, { 'Idempotency-Key': 'order-1-reminder' });
    const second = await post(body, { 'Idempotency-Key': 'order-1-reminder' });

    expect(second.statusCode).toBe(202);
    expect(JSON.parse(second.body)).toEqual(JSON.parse(first.body));
    expect(second.headers?.['idempotent-replayed']).toBe('true');
  });

  it('refuses the same key with a different body with 422 and writes nothing', async ({
    post,
    rowCount,
  }) => {
    await post(templateBody(), { 'Idempotency-Key': 'order-2' });
    const before = await rowCount();
    const response = await post(templateBody(), { 'Idempotency-Key': 'order-2' });
    expect(response.statusCode).toBe(422);
    expect(JSON.parse(response.body).error.code).toBe('idempotency_key_reused');
    expect(await rowCount()).toBe(before);
  });

  it('answers 409 while the first request with the key is still in flight', async ({
    db,
    post,
  }) => {
    // A first request that stored its row but has not answered yet: no stored response.
    const body = templateBody();
    const first = await post(body, { 'Idempotency-Key': 'order-3' });
    const { id } = JSON.parse(first.body) as NotificationView;
    await db.updateTable('notifications').set({ response: null }).where('id', '=', id).execute();

    const response = await post(body, { 'Idempotency-Key': 'order-3' });
    expect(response.statusCode).toBe(409);
    expect(JSON.parse(response.body).error.code).toBe('idempotency_key_in_flight');
  });

  it('stores one row when the same key arrives twice at once', async ({ post }) => {
    const body = templateBody();
    const responses = await Promise.all(
      [1, 2, 3].map(() => post(body, { 'Idempotency-Key': 'order-4' })),
    );
    const ids = new Set(
      responses.filter((r) => r.statusCode === 202).map((r) => JSON.parse(r.body).id),
    );
    expect(ids.size).toBe(1);
    expect(responses.every((r) => r.statusCode === 202 || r.statusCode === 409)).toBe(true);
  });

  it('does not share keys between clients', async ({ db, app, post }) => {
    const other = await createTestClient(db);
    const body = templateBody();
    const mine = await post(body, { 'Idempotency-Key': 'shared-key' });
    const theirs = await app(
      apiEvent({
        method: 'POST',
        path: '/v1/notifications',
        headers: { 'X-API-Key': other.key, 'Idempotency-Key': 'shared-key' },
        body,
      }),
    );
    expect(JSON.parse(theirs.body).id).not.toBe(JSON.parse(mine.body).id);
  });
});

describe('GET /v1/notifications/{id}', () => {
  it('shows the notification to its own client', async ({ app, key, post }) => {
    const created = JSON.parse((await post(templateBody())).body) as NotificationView;
    const response = await app(
      apiEvent({
        method: 'GET',
        path: `/v1/notifications/${created.id}`,
        headers: { 'X-API-Key': key },
      }),
    );
    expect(response.statusCode).toBe(200);
    const body = JSON.parse(response.body) as NotificationView;
    expect(body).toMatchObject({
      id: created.id,
      status: 'queued',
      attempts: 0,
      wamid: null,
      error: null,
    });
  });

  it("answers 404 for another client's notification and for an unknown id", async ({
    db,
    app,
    key,
    post,
  }) => {
    const created = JSON.parse((await post(templateBody())).body) as NotificationView;
    const other = await createTestClient(db);
    const theirs = await app(
      apiEvent({
        method: 'GET',
        path: `/v1/notifications/${created.id}`,
        headers: { 'X-API-Key': other.key },
      }),
    );
    const unknown = await app(
      apiEvent({
        method: 'GET',
        path: '/v1/notifications/not-a-uuid',
        headers: { 'X-API-Key': key },
      }),
    );
    expect(theirs.statusCode).toBe(404);
    expect(unknown.statusCode).toBe(404);
  });
});
