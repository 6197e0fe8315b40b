/**
 * Client callbacks end to end on the real parts: the outbox trigger, the dispatcher connected as
 * its own database role, and a real HTTP receiver that verifies signatures, counts repeats, fails
 * on demand and answers slowly. Notifications move through the real API, worker and webhook.
 */
import { randomUUID } from 'node:crypto';
import { type Kysely, sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import {
  claimDueDeliveries,
  type DispatchDeps,
  type DispatchSettings,
  dispatchDueCallbacks,
} from '#core/callbacks/dispatch.ts';
import {
  createCallbackEndpoint,
  enableCallbackEndpoint,
  listCallbackDeliveries,
  redeliverCallback,
  rotateCallbackSecret,
} from '#core/callbacks/endpoints.ts';
import { createPostCallback } from '#core/callbacks/post-callback.ts';
import { verifyCallbackSignature } from '#core/callbacks/signature.ts';
import { createDatabase } from '#core/db/connect.ts';
import type { Database } from '#core/db/schema.ts';
import { buildStatusWebhook } from '#core/whatsapp/webhook-payload.ts';
import { functionDatabaseUrls } from '../../../bin/local/database-roles.ts';
import { createTestClient, uniqueRecipient } from '../../support/api.ts';
import { type CallbackReceiver, startCallbackReceiver } from '../../support/callback-receiver.ts';
import { testDatabase } from '../../support/database.ts';
import {
  postSignedWebhook,
  SANDBOX_PHONE_NUMBER_ID,
  silentLogger,
  startDeliveryRig,
  testWebhookApp,
} from '../../support/delivery.ts';

const db = testDatabase();
let dispatcherDb: Kysely<Database>;
beforeAll(async () => {
  const urls = await functionDatabaseUrls(process.env.DATABASE_URL!);
  dispatcherDb = createDatabase({
    DATABASE_URL: urls.dispatcher,
    DB_POOL_MAX: 4,
    DB_PORT: 5432,
    DB_NAME: '',
    DB_IAM_AUTH: false,
  });
});
afterAll(async () => {
  await dispatcherDb.destroy();
  await db.destroy();
});
const webhook = testWebhookApp(db);
const operator = { actor: 'operator:test', requestId: null, sourceIp: null };
const LOCAL = { strict: false };

/** Small times so retries, leases and the disabling happen within a test. */
const FAST: DispatchSettings = {
  batchSize: 50,
  concurrency: 4,
  leaseMs: 400,
  backoffBaseMs: 20,
  backoffCapMs: 80,
  retryForMs: 60_000,
  disableAfterFailures: 1_000,
  disableAfterMs: 0,
};

function dispatcher(settings: Partial<DispatchSettings> = {}, timeoutMs = 300): DispatchDeps {
  return {
    db: dispatcherDb,
    post: createPostCallback({ strict: false, timeoutMs, maxResponseBytes: 4096 }),
    now: () => new Date(),
    random: Math.random,
    settings: { ...FAST, ...settings },
    logger: silentLogger(),
  };
}

async function receiver(): Promise<CallbackReceiver> {
  const r = await startCallbackReceiver();
  onTestFinished(() => r.stop());
  return r;
}

/** Runs dispatcher rounds until `done` holds (or fails the test after a generous deadline). */
async function dispatchUntil(deps: DispatchDeps, done: () => Promise<boolean> | boolean) {
  const deadline = Date.now() + 20_000;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error('condition not reached');
    const round = await dispatchDueCallbacks(deps);
    if (round.claimed === 0) await new Promise((r) => setTimeout(r, 20));
  }
}

/** A client with an endpoint on `r`; returns the client id and the endpoint's secret. */
async function subscribedClient(r: CallbackReceiver, events?: string[]) {
  const { clientId, key } = await createTestClient(db);
  const endpoint = await createCallbackEndpoint(
    db,
    operator,
    { clientId, url: r.url, ...(events ? { events } : {}) },
    LOCAL,
  );
  return { clientId, key, endpoint };
}

/** A notification row for `clientId` inserted directly, as any path that stores one would. */
async function insertNotification(clientId: string, status: 'accepted' | 'scheduled' = 'accepted') {
  const id: string = randomUUID();
  await db
    .insertInto('notifications')
    .values({
      id,
      client_id: clientId,
      request_id: `req-${id}`,
      recipient: uniqueRecipient(),
      priority: 'high',
      message_type: 'template',
      message: JSON.stringify({ name: 'hello_world', language: 'en_US' }),
      status,
    })
    .execute();
  return id;
}

async function setStatus(id: string, status: 'sent' | 'delivered' | 'failed', extra = {}) {
  await db
    .updateTable('notifications')
    .set({ status, ...extra })
    .where('id', '=', id)
    .execute();
}

describe('callbacks: a notification through the real API, worker and webhook', () => {
  it('posts signed accepted, sent, delivered and read events in sequence, the recipient masked', async () => {
    // prepare
    const r = await receiver();
    const rig = await startDeliveryRig(db);
    onTestFinished(() => rig.stop());
    const clientId = (
      await db
        .selectFrom('notifications')
        .select('client_id')
        .where('id', '=', await rig.notify(uniqueRecipient()))
        .executeTakeFirstOrThrow()
    ).client_id;
    await rig.pass();
    const endpoint = await createCallbackEndpoint(db, operator, { clientId, url: r.url }, LOCAL);
    const to = uniqueRecipient();

    // act
    const id = await rig.notify(to);
    await rig.pass({ minMessages: 1 });
    const { wamid } = await rig.row(id);
    for (const status of ['delivered', 'read'] as const) {
      await postSignedWebhook(
        webhook,
        buildStatusWebhook({
          phoneNumberId: SANDBOX_PHONE_NUMBER_ID,
          wamid: wamid!,
          status,
          recipientId: to,
        }),
      );
    }
    await dispatchUntil(dispatcher(), () => r.accepted().length >= 4);

    // assess
    const posts = r
      .accepted()
      .filter((p) => (p.body.data.notification as { id: string }).id === id);
    expect(posts.map((p) => [p.body.sequence, p.body.type])).toEqual([
      [1, 'notification.accepted'],
      [2, 'notification.sent'],
      [3, 'notification.delivered'],
      [4, 'notification.read'],
    ]);
    const nowSeconds = Date.now() / 1000;
    for (const p of posts) {
      expect(
        verifyCallbackSignature({
          header: p.signature,
          body: p.rawBody,
          secret: endpoint.secret,
          nowSeconds,
        }),
      ).toBe(true);
      expect(p.eventId).toBe(p.body.id);
      expect(p.rawBody).not.toContain(to.slice(1));
    }
    expect(posts[3]!.body.data).toMatchObject({
      previousStatus: 'delivered',
      notification: { id, status: 'read', to: expect.stringMatching(/\*{4,}/) },
    });
  });
});

describe('callbacks: sending does not wait for them', () => {
  it('sends and records statuses while a dead endpoint holds the dispatcher', async () => {
    // prepare: an endpoint that never answers, and a dispatcher stuck posting to it
    const r = await receiver();
    r.answerAlways({ status: 200, delayMs: 60_000 });
    const rig = await startDeliveryRig(db);
    onTestFinished(() => rig.stop());
    const warm = await rig.notify(uniqueRecipient());
    await rig.pass();
    const { client_id: clientId } = await db
      .selectFrom('notifications')
      .select('client_id')
      .where('id', '=', warm)
      .executeTakeFirstOrThrow();
    await createCallbackEndpoint(db, operator, { clientId, url: r.url }, LOCAL);
    await insertNotification(clientId);
    const stuck = dispatchDueCallbacks(dispatcher({}, 3_000));
    await new Promise((resolve) => setTimeout(resolve, 100));

    // act: a notification through the API and the worker meanwhile
    const started = Date.now();
    const id = await rig.notify(uniqueRecipient());
    await rig.pass({ minMessages: 1 });
    const elapsed = Date.now() - started;
    const row = await rig.row(id);
    const outcome = await stuck;

    // assess: sent well before the dispatcher gave up on its post, and its events are waiting
    expect(row.status).toBe('sent');
    expect(elapsed).toBeLessThan(2_500);
    expect(outcome.failed).toBeGreaterThanOrEqual(1);
    const waiting = await listCallbackDeliveries(db, { notificationId: id });
    expect(waiting.map((d) => [d.type, d.status])).toEqual([
      ['notification.accepted', 'pending'],
      ['notification.sent', 'pending'],
    ]);
  });
});

describe('callbacks: the outbox trigger', () => {
  it('emits failed with its error and one fallback_required with the reason, whatever path sets them', async () => {
    // prepare
    const r = await receiver();
    const { clientId } = await subscribedClient(r);
    const id = await insertNotification(clientId);

    // act
    await setStatus(id, 'failed', { error_class: 'invalid_recipient', error_code: 131026 });
    const at = new Date();
    await db
      .updateTable('notifications')
      .set({ fallback_required_at: at, fallback_reason: 'failed' })
      .where('id', '=', id)
      .execute();
    // Setting it again (or touching the row) emits nothing more.
    await db
      .updateTable('notifications')
      .set({ fallback_required_at: new Date(), fallback_reason: 'again' })
      .where('id', '=', id)
      .execute();
    await dispatchUntil(dispatcher(), () => r.accepted().length >= 3);
    await dispatchDueCallbacks(dispatcher());

    // assess
    expect(r.accepted().map((p) => [p.body.sequence, p.body.type, p.body.data])).toEqual([
      [1, 'notification.accepted', expect.objectContaining({ previousStatus: null })],
      [
        2,
        'notification.failed',
        expect.objectContaining({
          previousStatus: 'accepted',
          errorClass: 'invalid_recipient',
          errorCode: 131026,
        }),
      ],
      [3, 'notification.fallback_required', expect.objectContaining({ reason: 'failed' })],
    ]);
  });

  it('emits fallback_required after failed when the statement that fails a row with a fallback marks it (0011)', async () => {
    // prepare: a notification that asked for a fallback
    const r = await receiver();
    const { clientId } = await subscribedClient(r);
    const id = await insertNotification(clientId);
    await db
      .updateTable('notifications')
      .set({ fallback_after_seconds: 900 })
      .where('id', '=', id)
      .execute();

    // act: fail it, as the worker or a webhook does, touching only the status and the error
    await setStatus(id, 'failed', { error_class: 'invalid_recipient', error_code: 131026 });
    await dispatchUntil(dispatcher(), () => r.accepted().length >= 3);

    // assess: the trigger that marks the fallback runs before the one that writes the outbox
    expect(r.accepted().map((p) => [p.body.sequence, p.body.type])).toEqual([
      [1, 'notification.accepted'],
      [2, 'notification.failed'],
      [3, 'notification.fallback_required'],
    ]);
    expect(r.accepted()[2]?.body.data).toMatchObject({ reason: 'failed' });
  });

  it('sends an endpoint only the event types it asked for, and nothing to another client', async () => {
    // prepare
    const r = await receiver();
    const other = await receiver();
    const { clientId } = await subscribedClient(r, ['notification.delivered']);
    await subscribedClient(other);
    const id = await insertNotification(clientId);

    // act
    await setStatus(id, 'sent');
    await setStatus(id, 'delivered');
    await dispatchUntil(dispatcher(), () => r.accepted().length >= 1);
    await dispatchDueCallbacks(dispatcher());

    // assess
    expect(r.accepted().map((p) => p.body.type)).toEqual(['notification.delivered']);
    expect(r.accepted()[0]!.body.sequence).toBe(3);
    expect(other.posts).toEqual([]);
  });

  it('emits no event for the internal queued and sending steps', async () => {
    // prepare
    const r = await receiver();
    const { clientId } = await subscribedClient(r);
    const id = await insertNotification(clientId);

    // act
    for (const status of ['queued', 'sending', 'queued', 'sending'] as const) {
      await db.updateTable('notifications').set({ status }).where('id', '=', id).execute();
    }
    await setStatus(id, 'sent');
    await dispatchUntil(dispatcher(), () => r.accepted().length >= 2);

    // assess
    expect(r.accepted().map((p) => [p.body.sequence, p.body.type])).toEqual([
      [1, 'notification.accepted'],
      [2, 'notification.sent'],
    ]);
  });
});

describe('callbacks: retries, disabling, redelivery', () => {
  it('retries after a 5xx and a timeout and records every attempt', async () => {
    // prepare
    const r = await receiver();
    const { clientId } = await subscribedClient(r);
    r.answerNext({ status: 503 }, { status: 200, delayMs: 1_000 });
    const id = await insertNotification(clientId);

    // act
    await dispatchUntil(dispatcher(), () => r.accepted().length >= 2);

    // assess: the timed-out post reached the receiver, so it may count twice; the record says why
    const [delivery] = await listCallbackDeliveries(db, { notificationId: id });
    expect(delivery).toMatchObject({ status: 'delivered', type: 'notification.accepted' });
    expect(
      delivery!.attempts.map((a) => [a.statusCode, a.error?.replace(/\d+/, 'N') ?? null]),
    ).toEqual([
      [503, 'answered N'],
      [null, 'timeout after N ms'],
      [200, null],
    ]);
    expect(delivery!.attempts[1]!.latencyMs).toBeGreaterThanOrEqual(290);
  });

  it('disables an endpoint past the threshold, audits it, and delivers what waited once enabled', async () => {
    // prepare
    const r = await receiver();
    const { clientId, endpoint } = await subscribedClient(r);
    r.answerAlways({ status: 500 });
    const id = await insertNotification(clientId);
    const deps = dispatcher({ disableAfterFailures: 3, disableAfterMs: 0 });

    // act
    await dispatchUntil(deps, async () => {
      const row = await db
        .selectFrom('callback_endpoints')
        .select('disabled_at')
        .where('id', '=', endpoint.id)
        .executeTakeFirstOrThrow();
      return row.disabled_at !== null;
    });
    const attemptsWhenDisabled = r.posts.length;
    await new Promise((resolve) => setTimeout(resolve, 150));
    const idle = await dispatchDueCallbacks(deps);
    r.answerAlways(null);
    await enableCallbackEndpoint(db, operator, { endpointId: endpoint.id });
    await dispatchUntil(deps, () => r.accepted().length >= 1);

    // assess
    expect(attemptsWhenDisabled).toBe(3);
    expect(idle.claimed).toBe(0);
    const audit = await db
      .selectFrom('audit_log')
      .select(['actor', 'detail'])
      .where('action', '=', 'callbacks.endpoint_disabled')
      .where(sql`detail->>'endpointId'`, '=', endpoint.id)
      .execute();
    expect(audit).toEqual([
      { actor: 'system:dispatcher', detail: expect.objectContaining({ clientId }) },
    ]);
    const [delivery] = await listCallbackDeliveries(db, { notificationId: id });
    expect(delivery!.status).toBe('delivered');
  });

  it('gives a delivery up once its retry window has passed', async () => {
    // prepare
    const r = await receiver();
    const { clientId } = await subscribedClient(r);
    r.answerAlways({ status: 500 });
    const id = await insertNotification(clientId);

    // act
    await dispatchUntil(dispatcher({ retryForMs: 150 }), async () => {
      const [d] = await listCallbackDeliveries(db, { notificationId: id });
      return d!.status === 'failed';
    });

    // assess
    const [delivery] = await listCallbackDeliveries(db, { notificationId: id });
    expect(delivery!.attempts.length).toBeGreaterThanOrEqual(2);
    expect(delivery!.nextAttemptAt).toBeNull();
  });

  it('redelivers a delivered event with the same id, which the receiver can tell is a repeat', async () => {
    // prepare
    const r = await receiver();
    const { clientId } = await subscribedClient(r);
    const id = await insertNotification(clientId);
    await dispatchUntil(dispatcher(), () => r.accepted().length >= 1);
    const [delivery] = await listCallbackDeliveries(db, { notificationId: id });

    // act
    expect(await redeliverCallback(db, operator, { deliveryId: delivery!.id })).toBe(true);
    await dispatchUntil(dispatcher(), () => r.accepted().length >= 2);

    // assess
    expect([...r.countsById().values()]).toEqual([2]);
    expect(await redeliverCallback(db, operator, { deliveryId: randomUUID() })).toBe(false);
  });

  it('claims at most its share of one endpoint per round, so a hanging endpoint cannot take the whole round', async () => {
    // prepare: a hanging endpoint with eight deliveries due, and another client's with one
    const hanging = await receiver();
    hanging.answerAlways({ status: 200, delayMs: 60_000 });
    const healthy = await receiver();
    const { clientId: slowClient } = await subscribedClient(hanging);
    const { clientId: otherClient } = await subscribedClient(healthy);
    const slowIds: string[] = [];
    for (let i = 0; i < 4; i += 1) slowIds.push(await insertNotification(slowClient));
    for (const id of slowIds) await setStatus(id, 'sent');
    const otherId = await insertNotification(otherClient);

    // act: one claim with a share of two per endpoint
    const claimed = await claimDueDeliveries(dispatcherDb, 50, 600, 2);

    // assess
    const ofSlow = claimed.filter((c) => slowIds.includes(c.notification_id));
    const ofOther = claimed.filter((c) => c.notification_id === otherId);
    expect(ofSlow).toHaveLength(2);
    expect(ofOther).toHaveLength(1);
    const perEndpoint = new Map<string, number>();
    for (const c of claimed)
      perEndpoint.set(c.endpoint_id, (perEndpoint.get(c.endpoint_id) ?? 0) + 1);
    expect(Math.max(...perEndpoint.values())).toBeLessThanOrEqual(2);
  });

  it('loses no event when a dispatcher dies mid-batch: its claims fall due after the lease', async () => {
    // prepare: a dispatcher claims the batch and dies before posting (its claims stay in the table)
    const r = await receiver();
    const { clientId } = await subscribedClient(r);
    const ids = [await insertNotification(clientId), await insertNotification(clientId)];
    for (const id of ids) await setStatus(id, 'sent');
    const claimed = await claimDueDeliveries(dispatcherDb, 50, 600);
    const ours = claimed.filter((c) => ids.includes(c.notification_id));

    // act
    await dispatchDueCallbacks(dispatcher());
    const beforeLeaseEnds = r.posts.length;
    await dispatchUntil(dispatcher(), () => r.accepted().length >= 4);

    // assess
    expect(ours).toHaveLength(4);
    expect(beforeLeaseEnds).toBe(0);
    expect([...r.countsById().values()]).toEqual([1, 1, 1, 1]);
    for (const id of ids) {
      const seqs = r
        .accepted()
        .filter((p) => (p.body.data.notification as { id: string }).id === id)
        .map((p) => p.body.sequence);
      expect(seqs).toEqual([1, 2]);
    }
  });

  it('signs with both secrets during a rotation grace period, then with the new one only', async () => {
    // prepare
    const r = await receiver();
    const { clientId, endpoint } = await subscribedClient(r);
    const rotated = await rotateCallbackSecret(db, operator, {
      endpointId: endpoint.id,
      graceSeconds: 60,
      now: new Date(),
    });
    const id = await insertNotification(clientId);

    // act
    await dispatchUntil(dispatcher(), () => r.accepted().length >= 1);
    await rotateCallbackSecret(db, operator, {
      endpointId: endpoint.id,
      graceSeconds: -1,
      now: new Date(),
    });
    await setStatus(id, 'sent');
    await dispatchUntil(dispatcher(), () => r.accepted().length >= 2);

    // assess
    const [during, after] = r.accepted();
    const verify = (p: typeof during, secret: string) =>
      verifyCallbackSignature({
        header: p!.signature,
        body: p!.rawBody,
        secret,
        nowSeconds: Date.now() / 1000,
      });
    expect([verify(during, endpoint.secret), verify(during, rotated!.secret)]).toEqual([
      true,
      true,
    ]);
    expect([verify(after, endpoint.secret), verify(after, rotated!.secret)]).toEqual([
      false,
      false,
    ]);
    expect(after!.signature.match(/v1=/g)).toHaveLength(1);
    expect(during!.signature.match(/v1=/g)).toHaveLength(2);
  });
});
