/**
 * The Meta webhook on the real database, item by item: a body with a bad item applies every good
 * one and keeps the bad one in webhook_rejects; template, number and account events and
 * value-level errors land in whatsapp_events without phone numbers; a change for another sender
 * is acknowledged and ignored; a database failure is a 500 so that Meta sends the body again.
 */
import { randomUUID } from 'node:crypto';
import { type Kysely, sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import type { Database } from '#core/db/schema.ts';
import { Metric } from '#core/platform/metric-names.ts';
import { buildStatusesWebhook } from '#core/whatsapp/webhook-payload.ts';
import { pruneWebhookRecords } from '#core/whatsapp/webhook-records.ts';
import { createWebhookApp } from '../../../lambdas/webhook/app.ts';
import { testDatabase } from '../../support/database.ts';
import {
  postSignedWebhook,
  SANDBOX_APP_SECRET,
  SANDBOX_PHONE_NUMBER_ID,
  WEBHOOK_VERIFY_TOKEN,
} from '../../support/delivery.ts';
import { recordingLogger, recordingMetrics } from '../../support/observability.ts';

const db = testDatabase();
afterAll(() => db.destroy());

const RECIPIENT_DIGITS = '573001239876';
const WABA_ID = '102290129340398';

function appWith(overrides: { db?: Kysely<Database>; phoneNumberIds?: string[] } = {}) {
  const { logger, lines } = recordingLogger();
  const { metrics, values } = recordingMetrics();
  const app = createWebhookApp({
    db: overrides.db ?? db,
    appSecret: SANDBOX_APP_SECRET,
    verifyToken: WEBHOOK_VERIFY_TOKEN,
    logger,
    metrics,
    phoneNumberIds: overrides.phoneNumberIds ?? [SANDBOX_PHONE_NUMBER_ID],
  });
  return { app, lines, values };
}

/** A notification already sent, with its wamid, as the worker leaves it. */
async function sentRow(): Promise<{ id: string; wamid: string }> {
  const clientId = randomUUID();
  await db.insertInto('api_clients').values({ id: clientId, name: 'webhook-items' }).execute();
  const id = randomUUID();
  const wamid = `wamid.ITEMS${randomUUID().replaceAll('-', '')}`;
  await db
    .insertInto('notifications')
    .values({
      id,
      client_id: clientId,
      request_id: 'r',
      recipient: `+${RECIPIENT_DIGITS}`,
      priority: 'high',
      message_type: 'text',
      message: JSON.stringify({ body: 'hi' }),
      status: 'accepted',
    })
    .execute();
  for (const status of ['queued', 'sending', 'sent'] as const) {
    await db
      .updateTable('notifications')
      .set({ status, ...(status === 'sent' ? { wamid, sent_at: new Date() } : {}) })
      .where('id', '=', id)
      .execute();
  }
  return { id, wamid };
}

async function statusOf(id: string) {
  const row = await db
    .selectFrom('notifications')
    .select('status')
    .where('id', '=', id)
    .executeTakeFirstOrThrow();
  return row.status;
}

/** A Meta envelope with one change of `field`. */
function change(field: string, value: unknown, wabaId = WABA_ID) {
  return {
    object: 'whatsapp_business_account',
    entry: [{ id: wabaId, time: 1_750_000_000, changes: [{ field, value }] }],
  };
}

function messagesValue(extra: Record<string, unknown>, phoneNumberId = SANDBOX_PHONE_NUMBER_ID) {
  return {
    messaging_product: 'whatsapp',
    metadata: { display_phone_number: '15550783881', phone_number_id: phoneNumberId },
    ...extra,
  };
}

async function rejectsWith(marker: string) {
  return db
    .selectFrom('webhook_rejects')
    .selectAll()
    .where(sql`raw::text`, 'like', `%${marker}%`)
    .execute();
}

async function eventsOf(wabaId: string) {
  return db
    .selectFrom('whatsapp_events')
    .select(['field', 'event', 'waba_id', 'payload'])
    .where('waba_id', '=', wabaId)
    .orderBy('id')
    .execute();
}

describe('webhook: statuses item by item', () => {
  it('applies the valid status beside a malformed one, keeps the bad one raw, and answers 200', async () => {
    // prepare
    const good = await sentRow();
    const marker = `wamid.BAD${randomUUID()}`;
    const { app, lines, values } = appWith();
    const body = change(
      'messages',
      messagesValue({
        statuses: [
          // A status with no id cannot be matched to anything: refused alone.
          { status: 'delivered', timestamp: '1750263773', recipient_id: RECIPIENT_DIGITS, marker },
          {
            id: good.wamid,
            status: 'delivered',
            timestamp: '1750263773',
            // A username user: Meta withholds the phone number; the wamid is enough.
            recipient_id: '',
            recipient_user_id: 'US.13491208655302741918',
          },
        ],
      }),
    );

    // act
    const response = await postSignedWebhook(app, body);

    // assess
    expect(response.statusCode).toBe(200);
    expect(JSON.parse(response.body)).toMatchObject({ statuses: 1, rejected: 1 });
    expect(await statusOf(good.id)).toBe('delivered');
    const rejects = await rejectsWith(marker);
    expect(rejects).toHaveLength(1);
    expect(rejects[0]).toMatchObject({ field: 'messages', kind: 'status' });
    expect(rejects[0]!.reason).toContain('statuses.0.id');
    // The raw item keeps the number for the operator; the logs never carry it.
    expect(JSON.stringify(rejects[0]!.raw)).toContain(RECIPIENT_DIGITS);
    expect(JSON.stringify(lines)).not.toContain(RECIPIENT_DIGITS);
    expect(values).toContainEqual({ name: Metric.WebhookItemsRejected, value: 1 });
  });

  it('refuses an unknown status value alone', async () => {
    const good = await sentRow();
    const other = await sentRow();
    const { app } = appWith();
    const body = change(
      'messages',
      messagesValue({
        statuses: [
          { id: other.wamid, status: 'teleported', timestamp: '1750263773' },
          { id: good.wamid, status: 'read', timestamp: '1750263773' },
        ],
      }),
    );

    const response = await postSignedWebhook(app, body);

    expect(response.statusCode).toBe(200);
    expect(await statusOf(good.id)).toBe('read');
    expect(await statusOf(other.id)).toBe('sent');
    expect(await rejectsWith(other.wamid)).toHaveLength(1);
  });

  it('answers 500 when the database fails, so Meta delivers the body again', async () => {
    const good = await sentRow();
    // Every statement fails, as when the proxy or the instance is gone.
    const broken = db.withPlugin({
      transformQuery: () => {
        throw new Error('connection terminated');
      },
      transformResult: async (args) => args.result,
    });
    const { app } = appWith({ db: broken });
    const body = buildStatusesWebhook([
      {
        phoneNumberId: SANDBOX_PHONE_NUMBER_ID,
        wamid: good.wamid,
        status: 'delivered',
        recipientId: RECIPIENT_DIGITS,
      },
    ]);

    const response = await postSignedWebhook(app, body);

    expect(response.statusCode).toBe(500);
    expect(response.body).not.toContain(RECIPIENT_DIGITS);
    expect(await statusOf(good.id)).toBe('sent');
  });
});

describe('webhook: sender check', () => {
  it('acknowledges and ignores a change for a phone number id that is not ours', async () => {
    const row = await sentRow();
    const { app, values } = appWith();
    const body = buildStatusesWebhook([
      { phoneNumberId: '999000111222333', wamid: row.wamid, status: 'read', recipientId: '1' },
    ]);

    const response = await postSignedWebhook(app, body);

    expect(response.statusCode).toBe(200);
    expect(await statusOf(row.id)).toBe('sent');
    expect(values).toContainEqual({ name: Metric.WebhookForeignSender, value: 1 });
  });
});

describe('webhook: template, number and account events', () => {
  // Shapes from the event catalogue (whatsapp-events.md §1.3, §4, §5).
  const cases: { field: string; value: Record<string, unknown>; event: string }[] = [
    {
      field: 'message_template_status_update',
      value: {
        event: 'REJECTED',
        message_template_id: 1_234_567_890,
        message_template_name: 'order_update',
        message_template_language: 'en-US',
        reason: 'INVALID_FORMAT',
        rejection_info: { reason: 'x', recommendation: 'y' },
      },
      event: 'REJECTED',
    },
    {
      field: 'message_template_quality_update',
      value: {
        previous_quality_score: 'GREEN',
        new_quality_score: 'YELLOW',
        message_template_id: 1_234_567_890,
        message_template_name: 'order_update',
        message_template_language: 'en-US',
      },
      event: 'YELLOW',
    },
    {
      field: 'template_category_update',
      value: {
        message_template_id: 1_234_567_890,
        message_template_name: 'order_update',
        message_template_language: 'en-US',
        new_category: 'UTILITY',
        correct_category: 'MARKETING',
        category_update_timestamp: 1_750_000_000,
      },
      event: 'IMPENDING',
    },
    {
      field: 'template_category_update',
      value: {
        message_template_id: 1_234_567_890,
        message_template_name: 'order_update',
        message_template_language: 'en-US',
        previous_category: 'UTILITY',
        new_category: 'MARKETING',
      },
      event: 'COMPLETED',
    },
    {
      field: 'phone_number_quality_update',
      value: {
        display_phone_number: '15550783881',
        event: 'THROUGHPUT_UPGRADE',
        max_daily_conversations_per_business: 'TIER_10K',
      },
      event: 'THROUGHPUT_UPGRADE',
    },
    {
      field: 'account_update',
      value: {
        event: 'ACCOUNT_RESTRICTION',
        restriction_info: [
          { restriction_type: 'RESTRICTED_BIZ_INITIATED_MESSAGING', expiration: 1_750_086_400 },
        ],
      },
      event: 'ACCOUNT_RESTRICTION',
    },
    {
      field: 'account_update',
      value: {
        event: 'DISABLED_UPDATE',
        ban_info: { waba_ban_state: 'SCHEDULE_FOR_DISABLE', waba_ban_date: '2026-12-01' },
      },
      event: 'DISABLED_UPDATE',
    },
  ];

  it.each(cases)('records $field ($event), counted, without phone numbers', async (c) => {
    const wabaId = `9${Date.now()}${Math.floor(Math.random() * 1000)}`;
    const { app, values } = appWith();

    const response = await postSignedWebhook(app, change(c.field, c.value, wabaId));

    expect(response.statusCode).toBe(200);
    const events = await eventsOf(wabaId);
    expect(events).toEqual([
      { field: c.field, event: c.event, waba_id: wabaId, payload: expect.any(Object) },
    ]);
    expect(JSON.stringify(events[0]!.payload)).not.toContain('15550783881');
    expect(values).toContainEqual({ name: Metric.WhatsAppEvents, value: 1 });
  });

  it('records value-level errors of the messages field', async () => {
    const wabaId = `8${Date.now()}`;
    const { app } = appWith();
    const body = change(
      'messages',
      messagesValue({
        errors: [
          {
            code: 130429,
            title: 'Rate limit hit',
            message: 'Rate limit hit',
            error_data: { details: 'Cloud API message throughput has been reached.' },
          },
        ],
      }),
      wabaId,
    );

    const response = await postSignedWebhook(app, body);

    expect(response.statusCode).toBe(200);
    expect(JSON.parse(response.body)).toMatchObject({ events: 1 });
    const rows = await db
      .selectFrom('whatsapp_events')
      .select(['field', 'event', 'payload'])
      .where('event', '=', 'error_130429')
      .execute();
    expect(rows.at(-1)).toMatchObject({ field: 'messages', payload: { code: 130429 } });
  });

  it('counts an unknown field and logs it once per process, never an error', async () => {
    const { app, lines, values } = appWith();
    const field = `future_field_${randomUUID().slice(0, 8)}`;

    const first = await postSignedWebhook(app, change(field, { anything: 1 }));
    const second = await postSignedWebhook(app, change(field, { anything: 2 }));

    expect([first.statusCode, second.statusCode]).toEqual([200, 200]);
    expect(values.filter((v) => v.name === Metric.WebhookUnknownFields)).toHaveLength(2);
    expect(lines.filter((l) => l.message.includes('not read'))).toHaveLength(1);
    expect(lines.filter((l) => l.level === 'error')).toEqual([]);
  });

  it('stores an event type the catalogue does not list and warns once per process', async () => {
    const { app, lines } = appWith();
    const event = `NEW_EVENT_${randomUUID().slice(0, 8).toUpperCase()}`;
    const wabaId = `7${Date.now()}`;

    await postSignedWebhook(app, change('account_update', { event }, wabaId));
    await postSignedWebhook(app, change('account_update', { event }, wabaId));

    expect((await eventsOf(wabaId)).map((e) => e.event)).toEqual([event, event]);
    expect(lines.filter((l) => l.message.includes('not in the catalogue'))).toHaveLength(1);
  });

  it('keeps an event value that is not an object as a refused item', async () => {
    const marker = `weird-${randomUUID()}`;
    const { app } = appWith();

    const response = await postSignedWebhook(app, change('account_update', [marker]));

    expect(response.statusCode).toBe(200);
    expect(await rejectsWith(marker)).toMatchObject([{ field: 'account_update', kind: 'value' }]);
  });
});

describe('webhook records: retention', () => {
  it('deletes refused items after 7 days and events after 30', async () => {
    const marker = `old-${randomUUID()}`;
    const day = 24 * 3_600_000;
    const now = Date.now();
    await db
      .insertInto('webhook_rejects')
      .values([
        {
          field: 'messages',
          kind: 'status',
          reason: 'r',
          raw: JSON.stringify({ marker, age: 8 }),
          received_at: new Date(now - 8 * day),
        },
        {
          field: 'messages',
          kind: 'status',
          reason: 'r',
          raw: JSON.stringify({ marker, age: 6 }),
          received_at: new Date(now - 6 * day),
        },
      ])
      .execute();

    await pruneWebhookRecords(db, new Date(now));

    const left = await rejectsWith(marker);
    expect(left.map((r) => (r.raw as { age: number }).age)).toEqual([6]);
  });
});
