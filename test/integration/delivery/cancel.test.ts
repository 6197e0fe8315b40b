/**
 * POST /v1/notifications/{id}/cancel on the real local parts: each status a notification may be
 * cancelled from, 409 with the current status once it is sending or past it, 404 for another
 * client's, the audit entry, and the promise behind it: a cancelled notification is never sent,
 * not when its queue message arrives afterwards, not when its scheduled time comes.
 */
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { CANCELLABLE_STATUSES, type NotificationStatus } from '#core/model/lifecycle.ts';
import type { NotificationView } from '#core/notifications/notification-view.ts';
import { apiEvent, createTestClient, testApiApp, testSqsClient } from '../../support/api.ts';
import { testDatabase } from '../../support/database.ts';
import {
  createTestQueues,
  deleteTestQueues,
  deliveryDeps,
  messageIdFor,
  readNotification,
  runWorkerPass,
  sandboxGraphClient,
  startTestSandbox,
  type TestQueue,
} from '../../support/delivery.ts';
import {
  digits,
  recordingSqsClient,
  runSchedulerWhenFree,
  schedulerOptions,
  testSchedulerDeps,
  uniqueMobile,
  uniqueSenderId,
} from '../../support/delivery-control.ts';

const db = testDatabase(6);
const sqs = testSqsClient();
let queue: TestQueue;
let sandbox: Awaited<ReturnType<typeof startTestSandbox>>;
let graph: ReturnType<typeof sandboxGraphClient>;
let key: string;
let otherKey: string;
let api: ReturnType<typeof testApiApp>;

beforeAll(async () => {
  queue = await createTestQueues(sqs, 'cancel');
  sandbox = await startTestSandbox();
  graph = sandboxGraphClient(sandbox);
  key = (await createTestClient(db)).key;
  otherKey = (await createTestClient(db)).key;
  api = testApiApp(db, { sqs, queue: { sqs, queueUrls: { high: queue.url, bulk: queue.url } } });
});

afterAll(async () => {
  await sandbox.stop();
  await graph.close();
  await deleteTestQueues(sqs, queue);
  sqs.destroy();
  await db.destroy();
});

/**
 * A queue and an API of the test's own, for the tests that receive messages: the API tests leave
 * theirs on the file's queue, and a worker pass must see only its own test's.
 */
async function ownQueue() {
  const own = await createTestQueues(sqs, 'cancel');
  onTestFinished(() => deleteTestQueues(sqs, own));
  const ownApi = testApiApp(db, {
    sqs,
    queue: { sqs, queueUrls: { high: own.url, bulk: own.url } },
  });
  return {
    queue: own,
    notify: (to: string, extra: Record<string, unknown> = {}) => notify(to, extra, ownApi),
  };
}

async function notify(
  to: string,
  extra: Record<string, unknown> = {},
  via = api,
): Promise<NotificationView> {
  const response = await via(
    apiEvent({
      method: 'POST',
      path: '/v1/notifications',
      headers: { 'X-API-Key': key },
      body: { to, template: { name: 'hello_world', language: 'en_US' }, ...extra },
    }),
  );
  expect(response.statusCode).toBe(202);
  return JSON.parse(response.body) as NotificationView;
}

async function cancel(id: string, as = key) {
  const response = await api(
    apiEvent({
      method: 'POST',
      path: `/v1/notifications/${id}/cancel`,
      headers: { 'X-API-Key': as, 'X-Request-ID': `cancel-${id}` },
    }),
  );
  return { status: response.statusCode, body: JSON.parse(response.body) };
}

/** Puts a stored row in a status directly: the statuses the worker and scheduler reach. */
async function moveTo(id: string, status: NotificationStatus) {
  await db.updateTable('notifications').set({ status }).where('id', '=', id).execute();
}

const worker = () => deliveryDeps({ db, sqs, whatsapp: graph });
const sendsTo = (to: string) => sandbox.stats().byRecipient[digits(to)] ?? 0;

describe('POST /v1/notifications/{id}/cancel', () => {
  it.each(CANCELLABLE_STATUSES)(
    'cancels a notification that is %s and audits who did it',
    async (from) => {
      const created = await notify(uniqueMobile());
      await moveTo(created.id, from);

      const answer = await cancel(created.id);

      expect(answer.status).toBe(200);
      expect(answer.body).toMatchObject({
        id: created.id,
        status: 'cancelled',
        statusReason: 'cancelled_by_client',
      });
      expect((await readNotification(db, created.id)).status).toBe('cancelled');
      const audit = await db
        .selectFrom('audit_log')
        .selectAll()
        .where('action', '=', 'notification.cancel')
        .where('request_id', '=', `cancel-${created.id}`)
        .execute();
      expect(audit).toHaveLength(1);
      expect(audit[0]).toMatchObject({
        outcome: 'ok',
        detail: { notificationId: created.id, previousStatus: from },
      });
      expect(audit[0]!.actor).toMatch(/^key:[0-9a-f]{12}$/);
      const events = await db
        .selectFrom('notification_events')
        .select(['from_status', 'to_status'])
        .where('notification_id', '=', created.id)
        .orderBy('id', 'desc')
        .limit(1)
        .execute();
      expect(events).toEqual([{ from_status: from, to_status: 'cancelled' }]);
    },
  );

  it.each(['sending', 'sent', 'delivered', 'read', 'failed', 'skipped'] as const)(
    'answers 409 with the current status to a cancel of a %s notification, and leaves it so',
    async (status) => {
      const created = await notify(uniqueMobile());
      await moveTo(created.id, status);

      const answer = await cancel(created.id);

      expect(answer.status).toBe(409);
      expect(answer.body.error.code).toBe('not_cancellable');
      expect(answer.body.error.message).toContain(`is ${status}`);
      expect(answer.body.notification).toMatchObject({ id: created.id, status });
      expect((await readNotification(db, created.id)).status).toBe(status);
    },
  );

  it('answers 409 to a second cancel, with status cancelled', async () => {
    const created = await notify(uniqueMobile());
    expect((await cancel(created.id)).status).toBe(200);

    const again = await cancel(created.id);

    expect(again.status).toBe(409);
    expect(again.body.notification.status).toBe('cancelled');
  });

  it('answers 404 for another client’s notification and leaves it queued', async () => {
    const created = await notify(uniqueMobile());

    const answer = await cancel(created.id, otherKey);

    expect(answer.status).toBe(404);
    expect(answer.body.error.code).toBe('not_found');
    expect((await readNotification(db, created.id)).status).toBe('queued');
  });

  it('answers 404 for an id that is not a UUID', async () => {
    expect((await cancel('not-a-notification')).status).toBe(404);
  });
});

describe('a cancelled notification is never sent', () => {
  it('sends nothing when its queue message is delivered after the cancel, while its neighbour is sent', async () => {
    const own = await ownQueue();
    const cancelledTo = uniqueMobile();
    const keptTo = uniqueMobile();
    const cancelled = await own.notify(cancelledTo);
    const kept = await own.notify(keptTo);
    expect(cancelled.status).toBe('queued');
    expect((await cancel(cancelled.id)).status).toBe(200);

    // The cancel left the message on the queue; the worker receives it now.
    const pass = await runWorkerPass(worker(), own.queue, { minMessages: 2 });

    expect(pass.messages.map((m) => m.Body).sort()).toEqual([cancelled.id, kept.id].sort());
    expect(pass.batchItemFailures).toEqual([]);
    // Dropped at triage, not held back as busy (which would bring the message back forever).
    expect(pass.outcomes.get(messageIdFor(pass, cancelled.id))).toBe('skipped');
    expect(pass.outcomes.get(messageIdFor(pass, kept.id))).toBe('sent');
    expect(sendsTo(cancelledTo)).toBe(0);
    expect(sendsTo(keptTo)).toBe(1);
    expect((await readNotification(db, cancelled.id)).status).toBe('cancelled');
    expect((await readNotification(db, kept.id)).status).toBe('sent');
  });

  it('sends nothing for a deferred notification cancelled before the drain re-queues it', async () => {
    const own = await ownQueue();
    const to = uniqueMobile();
    const created = await own.notify(to);
    await moveTo(created.id, 'deferred');
    expect((await cancel(created.id)).status).toBe(200);

    // A message for it arrives after the cancel (here the one the API sent; the drain's would be alike).
    const pass = await runWorkerPass(worker(), own.queue, { minMessages: 1 });

    expect(pass.messages.map((m) => m.Body)).toEqual([created.id]);
    expect(pass.batchItemFailures).toEqual([]);
    expect(pass.outcomes.get(messageIdFor(pass, created.id))).toBe('skipped');
    expect(sendsTo(to)).toBe(0);
    expect((await readNotification(db, created.id)).status).toBe('cancelled');
  });

  it('is not released by the scheduler when its time comes, and sends nothing', async () => {
    const own = await ownQueue();
    const to = uniqueMobile();
    const kept = await own.notify(uniqueMobile(), {
      sendAt: new Date(Date.now() + 60_000).toISOString(),
    });
    const created = await own.notify(to, { sendAt: new Date(Date.now() + 60_000).toISOString() });
    expect(created.status).toBe('scheduled');
    expect((await cancel(created.id)).status).toBe(200);
    // Its time comes: both rows are due now.
    await db
      .updateTable('notifications')
      .set({ send_at: new Date(Date.now() - 1_000) })
      .where('id', 'in', [created.id, kept.id])
      .execute();
    const recorder = recordingSqsClient();

    await runSchedulerWhenFree(
      testSchedulerDeps({
        db,
        queue: { sqs: recorder.sqs, queueUrls: { high: own.queue.url, bulk: own.queue.url } },
        // A sender of this test's own, so its circuit is closed (other files open the shared
        // sandbox sender's, and one opened by hand stays open), and no token check is asked for:
        // neither is called.
        whatsapp: {
          probe: () => Promise.reject(new Error('probed a closed circuit')),
          tokenStatus: () => Promise.reject(new Error('read the token unasked')),
        },
        senderId: uniqueSenderId('cancel'),
      }),
      schedulerOptions(),
    );
    recorder.sqs.destroy();

    expect(recorder.sent.filter((e) => e.body === created.id)).toEqual([]);
    // The control: the scheduler did run over this due row and released it.
    expect(recorder.sent.filter((e) => e.body === kept.id)).toHaveLength(1);
    expect((await readNotification(db, created.id)).status).toBe('cancelled');
    expect(sendsTo(to)).toBe(0);
  });
});
