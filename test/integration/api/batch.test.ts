/**
 * POST /v1/notifications/batch against the real database and SQS emulator: each item is answered
 * on its own, the good ones are stored and queued, the bad ones write nothing.
 */
import type { Kysely } from 'kysely';
import { describe, expect } from 'vitest';
import type { Database } from '#core/db/schema.ts';
import type { NotificationView } from '#core/notifications/notification-view.ts';
import { apiEvent, createTestClient, uniqueRecipient } from '../../support/api.ts';
import { apiTest } from '../../support/fixtures.ts';

interface BatchAnswer {
  accepted: number;
  rejected: number;
  results: {
    index: number;
    status: number;
    notification?: NotificationView;
    replayed?: boolean;
    error?: { code: string; message: string; field?: string };
  }[];
}

/** The file's API test with `postBatch`: POST /v1/notifications/batch, as the file's client unless another key is given. */
const it = apiTest.extend(
  'postBatch',
  { scope: 'file' },
  ({ app, key }) =>
    (body: unknown, apiKey = key) =>
      app(
        apiEvent({
          method: 'POST',
          path: '/v1/notifications/batch',
          headers: { 'X-API-Key': apiKey, 'X-Request-ID': 'batch-trace-1' },
          body,
        }),
      ),
);

const template = { name: 'hello_world', language: 'en_US' };

async function rowsOf(db: Kysely<Database>, ids: string[]) {
  if (ids.length === 0) return [];
  return db
    .selectFrom('notifications')
    .select(['id', 'status', 'request_id', 'idempotency_key', 'response'])
    .where('id', 'in', ids)
    .execute();
}

describe('POST /v1/notifications/batch', () => {
  it('accepts 100 notifications in one request, stores and queues each, and answers 202', async ({
    db,
    postBatch,
  }) => {
    // act
    const notifications = Array.from({ length: 100 }, () => ({ to: uniqueRecipient(), template }));
    const response = await postBatch({ notifications });

    // assess
    expect(response.statusCode).toBe(202);
    const answer = JSON.parse(response.body) as BatchAnswer;
    expect({ accepted: answer.accepted, rejected: answer.rejected }).toEqual({
      accepted: 100,
      rejected: 0,
    });
    expect(answer.results.map((r) => r.index)).toEqual([...Array(100).keys()]);
    const ids = answer.results.map((r) => r.notification!.id);
    const rows = await rowsOf(db, ids);
    expect(rows).toHaveLength(100);
    for (const row of rows) {
      expect(row).toMatchObject({ status: 'queued', request_id: 'batch-trace-1' });
      expect(row.response).toMatchObject({ id: row.id, status: 'queued' });
    }
    for (const result of answer.results) {
      expect(result.notification).toMatchObject({ status: 'queued', requestId: 'batch-trace-1' });
      expect(result.notification!.to).toMatch(/^\+\d{2}\*+\d{4}$/);
    }
  });

  it('answers each bad item on its own with 207, writes none of them, and accepts the rest', async ({
    rowCount,
    postBatch,
  }) => {
    // prepare
    const before = await rowCount();
    const good = { to: uniqueRecipient(), template };
    const notifications = [
      good,
      { to: '12345', template },
      { to: uniqueRecipient(), template, text: { body: 'both' } },
      { to: uniqueRecipient(), template, sendAt: '2001-01-01T00:00:00Z' },
      { to: uniqueRecipient(), template, '+573001234567': 'x' },
      'not an object',
      { to: uniqueRecipient(), template, idempotencyKey: 'bad key with spaces' },
    ];

    // act
    const response = await postBatch({ notifications });

    // assess
    expect(response.statusCode).toBe(207);
    const answer = JSON.parse(response.body) as BatchAnswer;
    expect({ accepted: answer.accepted, rejected: answer.rejected }).toEqual({
      accepted: 1,
      rejected: 6,
    });
    expect(answer.results.map((r) => [r.status, r.error?.field ?? null])).toEqual([
      [202, null],
      [400, 'notifications.1.to'],
      [400, 'notifications.2.text'],
      [400, 'notifications.3.sendAt'],
      [400, 'notifications.4.+57******4567'],
      [400, 'notifications.5'],
      [400, 'notifications.6.idempotencyKey'],
    ]);
    expect(response.body).not.toContain('3001234567');
    expect(await rowCount()).toBe(before + 1);
  });

  it('replays an item whose idempotencyKey was seen with the same body, and refuses a changed one', async ({
    rowCount,
    postBatch,
  }) => {
    // prepare
    const to = uniqueRecipient();
    const keyA = `batch-a-${crypto.randomUUID()}`;
    const first = JSON.parse(
      (await postBatch({ notifications: [{ to, template, idempotencyKey: keyA }] })).body,
    ) as BatchAnswer;
    const before = await rowCount();

    // act
    const response = await postBatch({
      notifications: [
        { to, template, idempotencyKey: keyA },
        { to, text: { body: 'changed' }, idempotencyKey: keyA.replace('a', 'b') },
        { to: uniqueRecipient(), template, idempotencyKey: keyA.replace('batch-a', 'other') },
        { to, template: { ...template, name: 'other_template' }, idempotencyKey: keyA },
      ],
    });

    // assess
    const answer = JSON.parse(response.body) as BatchAnswer;
    expect(answer.results.map((r) => r.status)).toEqual([202, 202, 202, 400]);
    expect(answer.results[0]).toMatchObject({
      replayed: true,
      notification: { id: first.results[0]!.notification!.id },
    });
    expect(answer.results[3]!.error!.field).toBe('notifications.3.idempotencyKey');
    expect(await rowCount()).toBe(before + 2);

    const changed = await postBatch({
      notifications: [{ to, text: { body: 'another body' }, idempotencyKey: keyA }],
    });
    expect(JSON.parse(changed.body).results[0]).toMatchObject({
      status: 422,
      error: { code: 'idempotency_key_reused' },
    });
  });

  it('refuses a whole batch that is not one: empty, over 100, not JSON, or without the scope', async ({
    db,
    asClient,
    rowCount,
    postBatch,
  }) => {
    const before = await rowCount();
    const tooMany = Array.from({ length: 101 }, () => ({ to: uniqueRecipient(), template }));
    for (const body of [{ notifications: [] }, { notifications: tooMany }, { items: [] }]) {
      const response = await postBatch(body);
      expect(response.statusCode).toBe(400);
      expect(JSON.parse(response.body).error.field).toBeDefined();
    }
    const notJson = await asClient({
      method: 'POST',
      path: '/v1/notifications/batch',
      rawBody: '{"notifications": [',
    });
    expect(notJson.statusCode).toBe(400);
    const readOnly = await createTestClient(db, ['notifications:read']);
    const forbidden = await postBatch(
      { notifications: [{ to: uniqueRecipient(), template }] },
      readOnly.key,
    );
    expect(forbidden.statusCode).toBe(403);
    expect(await rowCount()).toBe(before);
  });
});
