/**
 * The Meta webhook app on the real database: subscription check, signatures, statuses applied
 * forward only and out of order, early statuses kept until the wamid is stored, and the STOP /
 * START keywords. Notifications are made through the API and sent by a real worker pass.
 */
import { randomUUID } from 'node:crypto';
import type {
  KyselyPlugin,
  PluginTransformQueryArgs,
  PluginTransformResultArgs,
  QueryResult,
  RootOperationNode,
  UnknownRow,
} from 'kysely';
import { afterAll, describe, expect, it, onTestFinished } from 'vitest';
import { applyPendingStatuses } from '#core/notifications/apply-status-update.ts';
import { DenialLedger } from '#core/notifications/denials.ts';
import { applyTransitions } from '#core/notifications/transitions.ts';
import type { SendResult } from '#core/whatsapp/graph-client.ts';
import {
  buildInboundTextWebhook,
  buildStatusWebhook,
  type StatusError,
  type WebhookStatus,
} from '#core/whatsapp/webhook-payload.ts';
import { uniqueRecipient } from '../../support/api.ts';
import { testDatabase } from '../../support/database.ts';
import {
  type DeliveryRig,
  pollUntil,
  postSignedWebhook,
  SANDBOX_PHONE_NUMBER_ID,
  startDeliveryRig,
  startWebhookServer,
  testWebhookApp,
  WEBHOOK_VERIFY_TOKEN,
  webhookPostEvent,
  webhookVerificationEvent,
} from '../../support/delivery.ts';

const db = testDatabase();
afterAll(() => db.destroy());
const app = testWebhookApp(db);

async function rig(options: Parameters<typeof startDeliveryRig>[1] = {}): Promise<DeliveryRig> {
  const started = await startDeliveryRig(db, options);
  onTestFinished(() => started.stop());
  return started;
}

/** A notification the worker has sent to the sandbox (which posts no webhooks of its own here). */
async function sentNotification() {
  const r = await rig();
  const to = uniqueRecipient();
  const id = await r.notify(to);
  await r.pass();
  const row = await r.row(id);
  expect(row.status).toBe('sent');
  return { r, id, to, wamid: row.wamid! };
}

function statusPayload(
  wamid: string,
  to: string,
  status: WebhookStatus,
  options: { at?: Date; errors?: StatusError[] } = {},
) {
  return buildStatusWebhook({
    phoneNumberId: SANDBOX_PHONE_NUMBER_ID,
    wamid,
    status,
    recipientId: to,
    timestamp: options.at,
    errors: options.errors,
  });
}

function inboundPayload(from: string, text: string) {
  return buildInboundTextWebhook({ phoneNumberId: SANDBOX_PHONE_NUMBER_ID, from, text });
}

/** Runs `between` once, after the first UPDATE that changed no row and before its caller goes on. */
function afterFirstEmptyUpdate(between: () => Promise<void>): KyselyPlugin {
  const updates = new WeakSet<object>();
  let fired = false;
  return {
    transformQuery(args: PluginTransformQueryArgs): RootOperationNode {
      // Kysely's UPDATE, or a raw `update …` statement (the batched status update is one).
      const node = args.node as { kind: string; sqlFragments?: readonly string[] };
      const raw = node.kind === 'RawNode' && /^\s*update\b/i.test(node.sqlFragments?.[0] ?? '');
      if (node.kind === 'UpdateQueryNode' || raw) updates.add(args.queryId);
      return args.node;
    },
    async transformResult(args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
      if (!fired && updates.has(args.queryId) && args.result.rows.length === 0) {
        fired = true;
        await between();
      }
      return args.result;
    },
  };
}

async function optOutOf(recipient: string) {
  return db
    .selectFrom('opt_outs')
    .selectAll()
    .where('recipient', '=', recipient)
    .executeTakeFirst();
}

describe('webhook: subscription check (GET)', () => {
  it('answers the challenge when the verify token and mode are right', async () => {
    // act
    const response = await app(
      webhookVerificationEvent({
        'hub.mode': 'subscribe',
        'hub.verify_token': WEBHOOK_VERIFY_TOKEN,
        'hub.challenge': '1158201444',
      }),
    );

    // assess
    expect(response.statusCode).toBe(200);
    expect(response.body).toBe('1158201444');
  });

  it.each([
    { case: 'a wrong token', mode: 'subscribe', token: 'not-the-token' },
    { case: 'a token that is a prefix of the right one', mode: 'subscribe', token: 'verify' },
    { case: 'a wrong mode', mode: 'unsubscribe', token: WEBHOOK_VERIFY_TOKEN },
  ])('refuses $case with 403 and no challenge', async ({ mode, token }) => {
    // act
    const response = await app(
      webhookVerificationEvent({
        'hub.mode': mode,
        'hub.verify_token': token,
        'hub.challenge': '1158201444',
      }),
    );

    // assess
    expect(response.statusCode).toBe(403);
    expect(response.body).not.toContain('1158201444');
  });
});

describe('webhook: signature', () => {
  it.each([
    { case: 'a bad signature', signature: `sha256=${'0'.repeat(64)}`, reason: 'mismatch' },
    { case: 'a missing signature', signature: null, reason: 'missing' },
  ])('rejects $case with 401, audits it, and changes no status', async ({ signature, reason }) => {
    // prepare: an app of its own, whose denial tally starts empty (see denials.ts)
    const { id, to, wamid } = await sentNotification();
    const own = testWebhookApp(db, { denials: new DenialLedger() });
    const event = webhookPostEvent(statusPayload(wamid, to, 'read'), { signature });
    const requestId = `sig-${randomUUID()}`;
    event.requestContext.requestId = requestId;

    // act
    const response = await own(event);

    // assess
    expect(response.statusCode).toBe(401);
    expect(JSON.parse(response.body).error.code).toBe('invalid_signature');
    const audit = await db
      .selectFrom('audit_log')
      .selectAll()
      .where('request_id', '=', requestId)
      .execute();
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({
      action: 'webhook.signature_rejected',
      outcome: 'denied',
      detail: expect.objectContaining({ reasons: { [reason]: 1 } }),
    });
    const row = await db
      .selectFrom('notifications')
      .select(['status', 'read_at'])
      .where('id', '=', id)
      .executeTakeFirstOrThrow();
    expect(row).toEqual({ status: 'sent', read_at: null });
  });

  it('rejects a body signed with another app secret', async () => {
    // prepare
    const { id, to, wamid } = await sentNotification();

    // act
    const response = await app(
      webhookPostEvent(statusPayload(wamid, to, 'delivered'), { secret: 'someone-else' }),
    );

    // assess
    expect(response.statusCode).toBe(401);
    const row = await db
      .selectFrom('notifications')
      .select('status')
      .where('id', '=', id)
      .executeTakeFirstOrThrow();
    expect(row.status).toBe('sent');
  });
});

describe('webhook: statuses', () => {
  it('keeps read when delivered and sent arrive after it', async () => {
    // prepare
    const { r, id, to, wamid } = await sentNotification();
    const t = Math.floor(Date.now() / 1000) * 1000;
    const [sentAt, deliveredAt, readAt] = [new Date(t - 2000), new Date(t - 1000), new Date(t)];

    // act
    const answers = [];
    answers.push(await postSignedWebhook(app, statusPayload(wamid, to, 'read', { at: readAt })));
    answers.push(
      await postSignedWebhook(app, statusPayload(wamid, to, 'delivered', { at: deliveredAt })),
    );
    answers.push(await postSignedWebhook(app, statusPayload(wamid, to, 'sent', { at: sentAt })));

    // assess
    expect(answers.map((a) => a.statusCode)).toEqual([200, 200, 200]);
    expect(answers.map((a) => JSON.parse(a.body).statuses)).toEqual([1, 0, 0]);
    const row = await r.row(id);
    expect(row.status).toBe('read');
    expect(row.read_at).toEqual(readAt);
    expect(row.delivered_at).toBeInstanceOf(Date);
    expect(row.delivered_at!.getTime()).toBeLessThanOrEqual(readAt.getTime());
  });

  it('applies the many statuses of one body: in progress order, repeats once, unknown ones kept', async () => {
    // prepare: two sent notifications, and a wamid no row has yet
    const a = await sentNotification();
    const b = await sentNotification();
    const early = `wamid.early-${randomUUID()}`;
    const t = Math.floor(Date.now() / 1000) * 1000;
    const statuses = [
      statusPayload(a.wamid, a.to, 'read', { at: new Date(t) }),
      statusPayload(a.wamid, a.to, 'delivered', { at: new Date(t - 1000) }),
      statusPayload(b.wamid, b.to, 'sent', { at: new Date(t - 2000) }),
      statusPayload(b.wamid, b.to, 'delivered', { at: new Date(t - 1000) }),
      statusPayload(b.wamid, b.to, 'delivered', { at: new Date(t - 1000) }),
      statusPayload(early, a.to, 'delivered', { at: new Date(t) }),
    ].flatMap(
      (p) => (p.entry[0]!.changes[0]!.value as unknown as { statuses: unknown[] }).statuses,
    );
    const body = statusPayload(a.wamid, a.to, 'sent');
    Object.assign(body.entry[0]!.changes[0]!.value, { statuses });

    // act
    const answer = await postSignedWebhook(app, body);

    // assess: a delivered then read, b delivered once, the early status parked
    expect(answer.statusCode).toBe(200);
    expect(JSON.parse(answer.body).statuses).toBe(3);
    expect(await a.r.row(a.id)).toMatchObject({
      status: 'read',
      delivered_at: new Date(t - 1000),
      read_at: new Date(t),
    });
    expect(await b.r.row(b.id)).toMatchObject({
      status: 'delivered',
      delivered_at: new Date(t - 1000),
    });
    const parked = await db
      .selectFrom('pending_statuses')
      .select('status')
      .where('wamid', '=', early)
      .execute();
    expect(parked).toEqual([{ status: 'delivered' }]);
  });

  it('moves sent → delivered → read when statuses come in order, each timestamp kept', async () => {
    // prepare
    const { r, id, to, wamid } = await sentNotification();
    const t = Math.floor(Date.now() / 1000) * 1000;
    const deliveredAt = new Date(t - 1000);
    const readAt = new Date(t);

    // act
    await postSignedWebhook(app, statusPayload(wamid, to, 'sent', { at: new Date(t - 2000) }));
    await postSignedWebhook(app, statusPayload(wamid, to, 'delivered', { at: deliveredAt }));
    const afterDelivered = (await r.row(id)).status;
    await postSignedWebhook(app, statusPayload(wamid, to, 'read', { at: readAt }));

    // assess
    expect(afterDelivered).toBe('delivered');
    const row = await r.row(id);
    expect(row).toMatchObject({ status: 'read', delivered_at: deliveredAt, read_at: readAt });
  });

  it('applies a duplicated status once', async () => {
    // prepare
    const { r, id, to, wamid } = await sentNotification();
    const payload = statusPayload(wamid, to, 'delivered');

    // act
    const first = await postSignedWebhook(app, payload);
    const second = await postSignedWebhook(app, payload);

    // assess
    expect([first.statusCode, second.statusCode]).toEqual([200, 200]);
    expect([JSON.parse(first.body).statuses, JSON.parse(second.body).statuses]).toEqual([1, 0]);
    expect((await r.row(id)).status).toBe('delivered');
    const events = await db
      .selectFrom('notification_events')
      .select('to_status')
      .where('notification_id', '=', id)
      .where('to_status', '=', 'delivered')
      .execute();
    expect(events).toHaveLength(1);
  });

  it('fails a sent message with error class template on a failed status with 132001', async () => {
    // prepare
    const { r, id, to, wamid } = await sentNotification();

    // act
    const response = await postSignedWebhook(
      app,
      statusPayload(wamid, to, 'failed', {
        errors: [{ code: 132001, title: 'Template name does not exist in the translation' }],
      }),
    );

    // assess
    expect(response.statusCode).toBe(200);
    const row = await r.row(id);
    expect(row).toMatchObject({ status: 'failed', error_class: 'template', error_code: 132001 });
    expect(row.failed_at).toBeInstanceOf(Date);
    expect(row.error_message).toMatch(/Template name does not exist/);
  });

  it('ignores a failed status that arrives after delivered', async () => {
    // prepare
    const { r, id, to, wamid } = await sentNotification();
    await postSignedWebhook(app, statusPayload(wamid, to, 'delivered'));

    // act
    const response = await postSignedWebhook(
      app,
      statusPayload(wamid, to, 'failed', { errors: [{ code: 131026, title: 'Undeliverable' }] }),
    );

    // assess
    expect(response.statusCode).toBe(200);
    expect(JSON.parse(response.body).statuses).toBe(0);
    expect(await r.row(id)).toMatchObject({
      status: 'delivered',
      error_class: null,
      error_code: null,
      failed_at: null,
    });
  });

  it('adds the recipient to the opt-outs on a failed status with 131050', async () => {
    // prepare
    const { r, id, to, wamid } = await sentNotification();

    // act
    await postSignedWebhook(
      app,
      statusPayload(wamid, to, 'failed', { errors: [{ code: 131050, title: 'Opted out' }] }),
    );

    // assess
    expect(await r.row(id)).toMatchObject({ status: 'failed', error_class: 'opted_out' });
    expect((await optOutOf(to))?.source).toBe('meta_131050');
  });
});

describe('webhook: statuses that arrive before the wamid is stored', () => {
  it('keeps them pending and applies them, in order, when the worker stores the wamid', async () => {
    // prepare: a notification claimed by the worker (`sending`), its send answered with this wamid
    const r = await rig();
    const to = uniqueRecipient();
    const id = await r.notify(to);
    await applyTransitions(db, [{ id, to: 'sending', from: ['queued'] }]);
    const wamid = `wamid.early-${randomUUID()}`;
    const t = Math.floor(Date.now() / 1000) * 1000;

    // act 1: Meta is faster than the worker's write
    const read = await postSignedWebhook(
      app,
      statusPayload(wamid, to, 'read', { at: new Date(t) }),
    );
    const delivered = await postSignedWebhook(
      app,
      statusPayload(wamid, to, 'delivered', { at: new Date(t - 1000) }),
    );

    // assess 1
    expect([read.statusCode, delivered.statusCode]).toEqual([200, 200]);
    const pending = await db
      .selectFrom('pending_statuses')
      .select('status')
      .where('wamid', '=', wamid)
      .orderBy('status')
      .execute();
    expect(pending.map((p) => p.status)).toEqual(['delivered', 'read']);
    expect((await r.row(id)).status).toBe('sending');

    // act 2: the worker's path records the send, then looks for early statuses
    await applyTransitions(db, [{ id, to: 'sent', from: ['sending'], wamid }]);
    const outcomes = await applyPendingStatuses(db, [wamid]);

    // assess 2
    expect(outcomes.map((o) => o.kind)).toEqual(['applied', 'applied']);
    expect(await r.row(id)).toMatchObject({
      status: 'read',
      delivered_at: new Date(t - 1000),
      read_at: new Date(t),
    });
    const left = await db
      .selectFrom('pending_statuses')
      .select('status')
      .where('wamid', '=', wamid)
      .execute();
    expect(left).toEqual([]);
  });

  it('applies a status whose first update misses the wamid the worker stores a moment later', async () => {
    // prepare: a claimed notification, and a webhook app whose database lets the worker's path run
    // (store the wamid, look for pending statuses, find none) right after the webhook's first
    // UPDATE matched no row — two Lambdas interleaving, made deterministic
    const r = await rig();
    const to = uniqueRecipient();
    const id = await r.notify(to);
    await applyTransitions(db, [{ id, to: 'sending', from: ['queued'] }]);
    const wamid = `wamid.race-${randomUUID()}`;
    let workerRan = false;
    const interleaved = testWebhookApp(
      db.withPlugin(
        afterFirstEmptyUpdate(async () => {
          await applyTransitions(db, [{ id, to: 'sent', from: ['sending'], wamid }]);
          await applyPendingStatuses(db, [wamid]);
          workerRan = true;
        }),
      ),
    );

    // act
    const response = await postSignedWebhook(interleaved, statusPayload(wamid, to, 'delivered'));

    // assess
    expect(response.statusCode).toBe(200);
    expect(workerRan).toBe(true);
    const row = await r.row(id);
    expect({ status: row.status, wamid: row.wamid }).toEqual({ status: 'delivered', wamid });
    expect(row.delivered_at).toBeInstanceOf(Date);
  });

  it("fails a sandbox …12 send whose failed webhook, with no callback data, beats the worker's write", async () => {
    // prepare: the sandbox posts its failed status at once; the worker's client only hands back
    // the wamid once that status has been stored as pending. The send carries no callback data
    // (as a send made before it existed): with it, the webhook settles the claim at once
    // (crash-recovery.test.ts) and nothing waits as pending.
    const server = await startWebhookServer(app);
    onTestFinished(() => server.stop());
    const r = await rig({
      sandbox: { webhookUrl: server.url, statusDelaysMs: { sent: 0, delivered: 0, read: 0 } },
    });
    const real = r.deps.whatsapp;
    let pendingSeen = false;
    r.deps.whatsapp = {
      async sendMessage({ callbackData: _, ...message }): Promise<SendResult> {
        const result = await real.sendMessage(message);
        if (result.ok) {
          const found = await pollUntil(
            () =>
              db
                .selectFrom('pending_statuses')
                .select('status')
                .where('wamid', '=', result.wamid)
                .executeTakeFirst(),
            (row) => row !== undefined,
          );
          pendingSeen = found?.status === 'failed';
        }
        return result;
      },
    };
    const id = await r.notify('+573000000012');

    // act
    const pass = await r.pass();

    // assess
    expect(pass.batchItemFailures).toEqual([]);
    expect(pendingSeen).toBe(true);
    const row = await r.row(id);
    expect(row).toMatchObject({
      status: 'failed',
      error_class: 'invalid_recipient',
      error_code: 131026,
    });
    expect(row.wamid).toMatch(/^wamid\./);
    const left = await db
      .selectFrom('pending_statuses')
      .select('status')
      .where('wamid', '=', row.wamid!)
      .execute();
    expect(left).toEqual([]);
  });
});

describe('webhook: inbound keywords', () => {
  it.each(['STOP', 'baja', ' Stop '])('opts the sender out on %j', async (text) => {
    // prepare
    const from = uniqueRecipient();

    // act
    const response = await postSignedWebhook(app, inboundPayload(from.slice(1), text));

    // assess
    expect(response.statusCode).toBe(200);
    expect((await optOutOf(from))?.source).toBe('keyword');
  });

  it('opts the sender back in on START', async () => {
    // prepare
    const from = uniqueRecipient();
    await postSignedWebhook(app, inboundPayload(from.slice(1), 'STOP'));
    expect(await optOutOf(from)).toBeDefined();

    // act
    await postSignedWebhook(app, inboundPayload(from.slice(1), 'START'));

    // assess
    expect(await optOutOf(from)).toBeUndefined();
  });

  it('does nothing for an unrelated text', async () => {
    // prepare
    const from = uniqueRecipient();

    // act
    const response = await postSignedWebhook(
      app,
      inboundPayload(from.slice(1), 'please stop by the store tomorrow'),
    );

    // assess
    expect(response.statusCode).toBe(200);
    expect(await optOutOf(from)).toBeUndefined();
  });

  it('keeps an opt-out when an unrelated text follows it', async () => {
    // prepare
    const from = uniqueRecipient();
    await postSignedWebhook(app, inboundPayload(from.slice(1), 'STOP'));

    // act
    await postSignedWebhook(app, inboundPayload(from.slice(1), 'hola, gracias'));

    // assess
    expect((await optOutOf(from))?.source).toBe('keyword');
  });
});
