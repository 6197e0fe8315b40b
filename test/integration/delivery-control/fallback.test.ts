/**
 * Fallback on the real local parts: a notification's own delay or its client's default, the sweep
 * that marks what was not delivered in time (cancelling what was not sent, so the person is not
 * reached twice), the mark at once on `failed`, rows held by panic mode or the kill switch, one
 * mark per row under two sweeps at once, and the count on the status page.
 *
 * The sweeps read every row of the shared database; only this file makes rows with a fallback,
 * and each sweep here runs holding the scheduler's lock, so no other file's scheduler sweeps
 * between a test's set-up and its sweep.
 */
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import type { AdminStatus } from '#core/admin/admin-status.ts';
import { markDueFallbacks } from '#core/delivery/fallback.ts';
import { openCircuit } from '#core/delivery/panic-mode.ts';
import { SCHEDULER_LOCK_KEY } from '#core/delivery/scheduler.ts';
import type { NotificationView } from '#core/notifications/notification-view.ts';
import { applyTransitions } from '#core/notifications/transitions.ts';
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
  readRows,
  runSchedulerWhenFree,
  schedulerOptions,
  startGatedRig,
  testSchedulerDeps,
  uniqueMobile,
  uniqueSenderId,
  withSuiteLock,
} from '../../support/delivery-control.ts';

const db = testDatabase(8);
const sqs = testSqsClient();
let queue: TestQueue;
let client: { key: string; clientId: string };
let adminKey: string;

beforeAll(async () => {
  queue = await createTestQueues(sqs, 'fallback');
  client = await createTestClient(db);
  adminKey = (await createTestClient(db, ['admin'])).key;
});

afterAll(async () => {
  await deleteTestQueues(sqs, queue);
  sqs.destroy();
  await db.destroy();
});

function apiOn(target: TestQueue) {
  return testApiApp(db, { sqs, queue: { sqs, queueUrls: { high: target.url, bulk: target.url } } });
}

async function notify(
  body: Record<string, unknown>,
  options: { via?: TestQueue; key?: string } = {},
): Promise<NotificationView> {
  const response = await apiOn(options.via ?? queue)(
    apiEvent({
      method: 'POST',
      path: '/v1/notifications',
      headers: { 'X-API-Key': options.key ?? client.key },
      body: { to: uniqueMobile(), template: { name: 'hello_world', language: 'en_US' }, ...body },
    }),
  );
  expect(response.statusCode, response.body).toBe(202);
  return JSON.parse(response.body) as NotificationView;
}

async function setClientDefault(clientId: string, afterSeconds: number | null) {
  const response = await apiOn(queue)(
    apiEvent({
      method: 'PUT',
      path: `/v1/admin/clients/${clientId}/fallback`,
      headers: { 'X-API-Key': adminKey },
      body: { afterSeconds },
    }),
  );
  return { status: response.statusCode, body: JSON.parse(response.body) };
}

/** Its fallback fell due a second ago (as if its time had passed). */
async function makeDue(ids: readonly string[]) {
  await db
    .updateTable('notifications')
    .set({ fallback_due_at: sql`now() - interval '1 second'` })
    .where('id', 'in', ids)
    .execute();
}

async function moveTo(ids: readonly string[], status: 'sent' | 'delivered' | 'sending') {
  await db.updateTable('notifications').set({ status }).where('id', 'in', ids).execute();
}

/** Runs `fn` holding the scheduler's lock: no scheduler run of another file sweeps meanwhile. */
async function asTheOnlyScheduler<T>(fn: () => Promise<T>): Promise<T> {
  return db.connection().execute(async (conn) => {
    await sql`select pg_advisory_lock(${SCHEDULER_LOCK_KEY})`.execute(conn);
    try {
      return await fn();
    } finally {
      await sql`select pg_advisory_unlock(${SCHEDULER_LOCK_KEY})`.execute(conn);
    }
  });
}

/** Makes `due` fall due and sweeps, as the only scheduler: no other run marks them first. */
const sweep = (due: readonly string[] = []) =>
  asTheOnlyScheduler(async () => {
    if (due.length) await makeDue(due);
    return markDueFallbacks(db, new Date(), 500);
  });

describe('fallback timing', () => {
  it('takes the notification’s own delay, else the client default, counting from sendAt when scheduled', async () => {
    const own = await createTestClient(db);
    expect(await setClientDefault(own.clientId, 900)).toEqual({
      status: 200,
      body: { clientId: own.clientId, name: expect.any(String), fallbackAfterSeconds: 900 },
    });
    const sendAt = new Date(Date.now() + 3_600_000);

    const named = await notify({ fallback: { afterSeconds: 120 } }, { key: own.key });
    const defaulted = await notify({}, { key: own.key });
    const scheduled = await notify({ sendAt: sendAt.toISOString() }, { key: own.key });
    await setClientDefault(own.clientId, null);
    const none = await notify({}, { key: own.key });

    expect(named.fallback).toEqual({
      afterSeconds: 120,
      dueAt: new Date(Date.parse(named.createdAt) + 120_000).toISOString(),
      requiredAt: null,
      reason: null,
    });
    expect(defaulted.fallback?.afterSeconds).toBe(900);
    expect(defaulted.fallback?.dueAt).toBe(
      new Date(Date.parse(defaulted.createdAt) + 900_000).toISOString(),
    );
    expect(scheduled.fallback?.dueAt).toBe(new Date(sendAt.getTime() + 900_000).toISOString());
    expect(none.fallback).toBeNull();
    // Done with them: delivered, so no later sweep counts them when their time comes.
    await moveTo([named.id, defaulted.id, scheduled.id], 'delivered');
    const audit = await db
      .selectFrom('audit_log')
      .select(['action', 'detail'])
      .where('action', '=', 'client.fallback')
      .where(sql<boolean>`detail->>'clientId' = ${own.clientId}`)
      .orderBy('id')
      .execute();
    expect(audit.map((a) => a.detail)).toEqual([
      { clientId: own.clientId, fallbackAfterSeconds: 900 },
      { clientId: own.clientId, fallbackAfterSeconds: null },
    ]);
  });

  it.each([
    [30, 'below a minute'],
    [604_801, 'above a week'],
    [90.5, 'not whole'],
  ])('refuses afterSeconds %s (%s) with 400 on the field', async (afterSeconds) => {
    const response = await apiOn(queue)(
      apiEvent({
        method: 'POST',
        path: '/v1/notifications',
        headers: { 'X-API-Key': client.key },
        body: {
          to: uniqueMobile(),
          template: { name: 'hello_world', language: 'en_US' },
          fallback: { afterSeconds },
        },
      }),
    );
    expect(response.statusCode).toBe(400);
    expect(JSON.parse(response.body).error.field).toBe('fallback.afterSeconds');
    expect((await setClientDefault(client.clientId, afterSeconds)).status).toBe(400);
  });

  it('answers 404 for a client default of a client that does not exist', async () => {
    const missing = '0195f0c4-1c2b-7a3d-8e4f-00000000beef';
    expect((await setClientDefault(missing, 600)).status).toBe(404);
  });
});

describe('the fallback sweep', () => {
  it('marks a sent notification not delivered in time (not_delivered) and leaves it sent; a delivered one is left alone', async () => {
    const late = await notify({ fallback: { afterSeconds: 60 } });
    const delivered = await notify({ fallback: { afterSeconds: 60 } });
    await moveTo([late.id], 'sent');
    await moveTo([delivered.id], 'delivered');

    const marks = await sweep([late.id, delivered.id]);

    expect(marks.filter((m) => m.id === late.id || m.id === delivered.id)).toEqual([
      { id: late.id, status: 'sent', reason: 'not_delivered' },
    ]);
    const rows = await readRows(db, [late.id, delivered.id]);
    expect(rows.get(late.id)).toMatchObject({ status: 'sent', fallback_reason: 'not_delivered' });
    expect(rows.get(late.id)!.fallback_required_at).toBeInstanceOf(Date);
    expect(rows.get(delivered.id)).toMatchObject({
      status: 'delivered',
      fallback_required_at: null,
    });
  });

  it('leaves a notification alone until its time comes', async () => {
    const early = await notify({ fallback: { afterSeconds: 60 } });
    await moveTo([early.id], 'sent');

    await sweep();

    expect((await readNotification(db, early.id)).fallback_required_at).toBeNull();
    // Done with it: delivered, so no later sweep (this file's or another's) counts it.
    await moveTo([early.id], 'delivered');
  });

  it('cancels a queued notification in the same step (not_sent), and its queue message then sends nothing', async () => {
    const own = await createTestQueues(sqs, 'fallback');
    const sandbox = await startTestSandbox();
    const graph = sandboxGraphClient(sandbox);
    onTestFinished(async () => {
      await sandbox.stop();
      await graph.close();
      await deleteTestQueues(sqs, own);
    });
    const to = uniqueMobile();
    const unsent = await notify({ to, fallback: { afterSeconds: 60 } }, { via: own });
    expect(unsent.status).toBe('queued');

    const marks = await sweep([unsent.id]);
    const pass = await runWorkerPass(deliveryDeps({ db, sqs, whatsapp: graph }), own, {
      minMessages: 1,
    });

    expect(marks.find((m) => m.id === unsent.id)).toEqual({
      id: unsent.id,
      status: 'cancelled',
      reason: 'not_sent',
    });
    const row = await readNotification(db, unsent.id);
    expect(row).toMatchObject({
      status: 'cancelled',
      status_reason: 'fallback_required',
      fallback_reason: 'not_sent',
    });
    // One statement: the move to cancelled and the mark carry the same transaction's time.
    const moved = await db
      .selectFrom('notification_events')
      .select('at')
      .where('notification_id', '=', unsent.id)
      .where('to_status', '=', 'cancelled')
      .executeTakeFirstOrThrow();
    expect(moved.at.getTime()).toBeLessThanOrEqual(row.fallback_required_at!.getTime() + 1_000);
    expect(pass.outcomes.get(messageIdFor(pass, unsent.id))).toBe('skipped');
    expect(sandbox.stats().byRecipient[digits(to)] ?? 0).toBe(0);
  });

  it('waits while a row is sending (Meta may be taking it), and marks it once it is sent', async () => {
    const busy = await notify({ fallback: { afterSeconds: 60 } });
    await moveTo([busy.id], 'sending');

    await sweep([busy.id]);
    const whileSending = await readNotification(db, busy.id);
    await moveTo([busy.id], 'sent');
    await sweep();

    expect(whileSending).toMatchObject({ status: 'sending', fallback_required_at: null });
    expect(await readNotification(db, busy.id)).toMatchObject({
      status: 'sent',
      fallback_reason: 'not_delivered',
    });
  });

  it.each([
    ['panic_mode', {}],
    ['kill_switch', { deliveryEnabled: false }],
  ] as const)(
    'cancels a notification held deferred (%s) past its time, with that reason',
    async (why, rollout) => {
      await withSuiteLock(db, async () => {
        const rig = await startGatedRig(db, { rollout });
        onTestFinished(() => rig.stop());
        if (why === 'panic_mode') {
          await openCircuit(db, {
            senderId: rig.senderId,
            actor: 'operator:test',
            reason: 'drill',
          });
        }
        const held = await notify({ fallback: { afterSeconds: 60 } }, { via: rig.queue });
        await rig.passUntilSeen([held.id]);
        expect(await readNotification(db, held.id)).toMatchObject({
          status: 'deferred',
          status_reason: why,
        });

        await sweep([held.id]);

        expect(await readNotification(db, held.id)).toMatchObject({
          status: 'cancelled',
          status_reason: 'fallback_required',
          fallback_reason: `deferred_${why}`,
        });
        expect(rig.sandbox.stats().sendsReceived).toBe(0);
      });
    },
  );

  it('marks each row once under two sweeps at once', async () => {
    const rows = await Promise.all(
      Array.from({ length: 40 }, () => notify({ fallback: { afterSeconds: 60 } })),
    );
    const ids = rows.map((r) => r.id);
    await moveTo(ids.slice(0, 20), 'sent');

    const [first, second] = await asTheOnlyScheduler(async () => {
      await makeDue(ids);
      return Promise.all([
        markDueFallbacks(db, new Date(), 500),
        markDueFallbacks(db, new Date(), 500),
      ]);
    });
    const third = await sweep();

    const mine = (marks: { id: string }[]) =>
      marks.map((m) => m.id).filter((id) => ids.includes(id));
    expect([...mine(first), ...mine(second)].sort()).toEqual([...ids].sort());
    expect(mine(third)).toEqual([]);
    const stored = await readRows(db, ids);
    expect(new Set([...stored.values()].map((r) => `${r.status}/${r.fallback_reason}`))).toEqual(
      new Set(['sent/not_delivered', 'cancelled/not_sent']),
    );
  });
});

describe('fallback on failed', () => {
  it('marks a failing notification at once, in the statement that fails it, before its time', async () => {
    const failing = await notify({ fallback: { afterSeconds: 3_600 } });
    const plain = await notify({});
    await moveTo([failing.id, plain.id], 'sending');

    // The worker's record statement after a permanent error.
    await applyTransitions(
      db,
      [failing.id, plain.id].map((id) => ({
        id,
        to: 'failed' as const,
        from: ['sending'] as const,
        errorClass: 'invalid_recipient' as const,
        errorCode: 131026,
      })),
    );

    const rows = await readRows(db, [failing.id, plain.id]);
    expect(rows.get(failing.id)).toMatchObject({ status: 'failed', fallback_reason: 'failed' });
    expect(rows.get(failing.id)!.fallback_required_at!.getTime()).toBe(
      rows.get(failing.id)!.failed_at!.getTime(),
    );
    expect(rows.get(plain.id)).toMatchObject({ status: 'failed', fallback_required_at: null });
  });

  it('keeps the first mark: a row marked not_delivered that fails later is not marked again', async () => {
    const row = await notify({ fallback: { afterSeconds: 60 } });
    await moveTo([row.id], 'sent');
    await sweep([row.id]);
    const first = await readNotification(db, row.id);

    await applyTransitions(db, [
      {
        id: row.id,
        to: 'failed',
        from: ['sent'],
        errorClass: 'invalid_recipient',
        errorCode: 131026,
      },
    ]);
    await sweep();

    expect(await readNotification(db, row.id)).toMatchObject({
      status: 'failed',
      fallback_reason: 'not_delivered',
      fallback_required_at: first.fallback_required_at,
    });
  });
});

describe('the scheduler run and the status page', () => {
  it('marks due fallbacks in its run, and GET /v1/admin/status counts them for 24 h by reason', async () => {
    const read = async () => {
      const response = await apiOn(queue)(
        apiEvent({ method: 'GET', path: '/v1/admin/status', headers: { 'X-API-Key': adminKey } }),
      );
      expect(response.statusCode).toBe(200);
      return (JSON.parse(response.body) as AdminStatus).last24h;
    };
    const before = await read();
    const late = await notify({ fallback: { afterSeconds: 60 } });
    const unsent = await notify({ fallback: { afterSeconds: 60 } });
    await moveTo([late.id], 'sent');
    await makeDue([late.id, unsent.id]);

    await runSchedulerWhenFree(
      testSchedulerDeps({
        db,
        queue: { sqs, queueUrls: { high: queue.url, bulk: queue.url } },
        whatsapp: {
          probe: () => Promise.reject(new Error('probed a closed circuit')),
          tokenStatus: () => Promise.reject(new Error('read the token unasked')),
        },
        // Its own closed circuit: the shared sandbox sender's may be open (held) by another file.
        senderId: uniqueSenderId('fallback'),
      }),
      schedulerOptions(),
    );
    const after = await read();

    expect(await readRows(db, [late.id, unsent.id])).toSatisfy(
      (rows: Map<string, { fallback_required_at: Date | null }>) =>
        [...rows.values()].every((r) => r.fallback_required_at !== null),
    );
    expect(after.fallbacksRequired - before.fallbacksRequired).toBe(2);
    const delta = (reason: string) =>
      (after.fallbacksByReason[reason] ?? 0) - (before.fallbacksByReason[reason] ?? 0);
    expect([delta('not_delivered'), delta('not_sent')]).toEqual([1, 1]);
  });
});
