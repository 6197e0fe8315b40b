/**
 * The sandbox's webhook faults against the real webhook and database, end to end over HTTP:
 * under malformed items, redeliveries and statuses posted newest first at once, every message
 * still ends `read`, and each malformed item is kept in webhook_rejects. Events the sandbox posts
 * on request land in whatsapp_events.
 */
import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, describe, expect, it, onTestFinished } from 'vitest';
import { applyPendingStatuses } from '#core/notifications/apply-status-update.ts';
import { createGraphClient } from '#core/whatsapp/graph-client.ts';
import { startSandbox } from '../../../bin/sandbox/server.ts';
import { testDatabase } from '../../support/database.ts';
import {
  pollUntil,
  SANDBOX_APP_SECRET,
  SANDBOX_PHONE_NUMBER_ID,
  startWebhookServer,
  testWebhookApp,
} from '../../support/delivery.ts';
import { uniqueMobile } from '../../support/phones.ts';

const db = testDatabase();
afterAll(() => db.destroy());

async function rig() {
  const server = await startWebhookServer(testWebhookApp(db));
  onTestFinished(() => server.stop());
  const sandbox = await startSandbox({
    port: 0,
    accessToken: 'sandbox-token-webhook-faults',
    appSecret: SANDBOX_APP_SECRET,
    phoneNumberId: SANDBOX_PHONE_NUMBER_ID,
    webhookUrl: server.url,
    // Long enough for the row to be stored before the first status arrives (pending otherwise).
    statusDelaysMs: { sent: 150, delivered: 250, read: 350 },
    faultRate: 1,
    faultKinds: ['malformed_item', 'redeliver', 'out_of_order'],
  });
  onTestFinished(() => sandbox.stop());
  const client = createGraphClient({
    apiUrl: sandbox.url,
    graphVersion: 'v25.0',
    phoneNumberId: SANDBOX_PHONE_NUMBER_ID,
    accessToken: 'sandbox-token-webhook-faults',
    timeoutMs: 2000,
  });
  return { sandbox, client };
}

/** The row the worker stores for a send Meta accepted. */
async function storeSent(to: string, wamid: string): Promise<string> {
  const clientId = randomUUID();
  await db.insertInto('api_clients').values({ id: clientId, name: 'sandbox-faults' }).execute();
  const id = randomUUID();
  await db
    .insertInto('notifications')
    .values({
      id,
      client_id: clientId,
      request_id: 'r',
      recipient: to,
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
  await applyPendingStatuses(db, [wamid]);
  return id;
}

describe('sandbox webhook faults through the real webhook', () => {
  it('ends every message read despite malformed items, redeliveries and reversed order', async () => {
    const { sandbox, client } = await rig();
    const before = await db
      .selectFrom('webhook_rejects')
      .select((eb) => eb.fn.max('id').as('id'))
      .executeTakeFirst();

    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const to = uniqueMobile();
      const sent = await client.sendMessage({ kind: 'text', to, text: { body: 'hi' } });
      if (!sent.ok) throw new Error(`send failed: ${sent.errorClass}`);
      ids.push(await storeSent(to, sent.wamid));
    }

    const rows = await pollUntil(
      () => db.selectFrom('notifications').select('status').where('id', 'in', ids).execute(),
      (found) => found.every((r) => r.status === 'read'),
      5000,
    );
    expect(rows.map((r) => r.status)).toEqual(['read', 'read', 'read']);
    // The sandbox's malformed shapes (see malformedStatusItem): other files' rejects do not match.
    const malformedKept = async () =>
      db
        .selectFrom('webhook_rejects')
        .select(['kind'])
        .where('id', '>', before?.id ?? '0')
        .where(
          sql<boolean>`(raw->>'id' like 'wamid.MALFORMED%' or (not raw ? 'id' and raw->>'recipient_id' = ''))`,
        )
        .execute();
    // Each status POST carried one malformed item, redeliveries included: all of them are kept.
    // (Three statuses per message, perhaps batched, each POST sent twice: at least 6 POSTs.)
    const rejects = await pollUntil(
      malformedKept,
      (kept) => sandbox.stats().webhooksSent >= 6 && kept.length === sandbox.stats().webhooksSent,
      5000,
    );
    expect(rejects.length).toBe(sandbox.stats().webhooksSent);
    expect(new Set(rejects.map((r) => r.kind))).toEqual(new Set(['status']));
  });

  it('records the events it posts on request', async () => {
    const { sandbox } = await rig();
    const wabaId = '100000000000001';
    const before = await db
      .selectFrom('whatsapp_events')
      .select((eb) => eb.fn.max('id').as('id'))
      .executeTakeFirst();

    const answer = await fetch(`${sandbox.url}/_sandbox/events`, {
      method: 'POST',
      body: JSON.stringify({ field: 'account_update', value: { event: 'ACCOUNT_VIOLATION' } }),
    });

    expect(answer.status).toBe(200);
    const rows = await db
      .selectFrom('whatsapp_events')
      .select(['field', 'event', 'waba_id'])
      .where('id', '>', before?.id ?? '0')
      .where('event', '=', 'ACCOUNT_VIOLATION')
      .execute();
    expect(rows).toEqual([
      { field: 'account_update', event: 'ACCOUNT_VIOLATION', waba_id: wabaId },
    ]);
  });
});
