/**
 * The scheduler on the real local parts: scheduled notifications enqueued when due with an SQS
 * delay (and not before), the outbox sweep of rows whose SQS send failed, and its advisory lock
 * (one run at a time). It works on every row of the shared database, so its queue targets are this
 * test's own queues and the assertions look at this test's rows only.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it, onTestFinished } from 'vitest';
import { openCircuit } from '../../../lambdas/core/panic-mode.ts';
import { runScheduler, type SchedulerReport } from '../../../lambdas/core/scheduler.ts';
import type { ProbeResult } from '../../../lambdas/core/whatsapp/graph-client.ts';
import { testSqsClient } from '../../support/api.ts';
import { testDatabase } from '../../support/database.ts';
import { createTestQueues, deleteTestQueues } from '../../support/delivery.ts';
import {
  forgetSender,
  missingQueueUrl,
  notificationMaker,
  readRows,
  receiveUntil,
  recordingLogger,
  recordingSqsClient,
  runSchedulerWhenFree,
  schedulerOptions,
  testSchedulerDeps,
  uniqueMobile,
  uniqueSenderId,
} from '../../support/delivery-control.ts';

const db = testDatabase(6);
afterAll(() => db.destroy());

/** A probe that fails the test if the scheduler calls it: the circuit is closed. */
const noProbes = {
  probe: async (): Promise<ProbeResult> => {
    throw new Error('the scheduler probed a closed circuit');
  },
};

/** A queue of the test's own, a recording client for the scheduler, and the API putting ids there. */
async function setUp() {
  const sqs = testSqsClient();
  const queue = await createTestQueues(sqs, 'sched');
  const recorder = recordingSqsClient();
  onTestFinished(async () => {
    await deleteTestQueues(sqs, queue);
    sqs.destroy();
    recorder.sqs.destroy();
  });
  const queueUrls = { high: queue.url, bulk: queue.url };
  const maker = await notificationMaker(db, sqs, queueUrls);
  const sentOf = (id: string) => recorder.sent.filter((e) => e.body === id);
  return { sqs, queue, recorder, queueUrls, maker, sentOf };
}

async function rowOf(id: string) {
  return (await readRows(db, [id])).get(id)!;
}

describe('scheduled notifications', () => {
  it('enqueues a scheduled notification when it falls due, with an SQS delay, and not before', async () => {
    // prepare
    const t = await setUp();
    const sendAt = new Date(Date.now() + 3_000);
    const id = await t.maker.notify(uniqueMobile(), { sendAt });
    expect((await rowOf(id)).status).toBe('scheduled');
    const deps = testSchedulerDeps({
      db,
      queue: { sqs: t.recorder.sqs, queueUrls: t.queueUrls },
      whatsapp: noProbes,
      senderId: uniqueSenderId('sched'),
    });

    // act: a run that only looks at what is due now
    await runSchedulerWhenFree(deps, schedulerOptions({ lookaheadSeconds: 0 }));

    // assess
    expect((await rowOf(id)).status).toBe('scheduled');
    expect(t.sentOf(id)).toEqual([]);

    // act: a run that looks ahead past sendAt
    await runSchedulerWhenFree(deps, schedulerOptions({ lookaheadSeconds: 5 }));

    // assess: queued at once, held back by SQS until sendAt
    expect((await rowOf(id)).status).toBe('queued');
    const [entry, ...more] = t.sentOf(id);
    expect(more).toEqual([]);
    expect(entry!.delaySeconds).toBeGreaterThanOrEqual(2);
    expect(entry!.delaySeconds).toBeLessThanOrEqual(3);
    const receipts = await receiveUntil(
      t.sqs,
      t.queue.url,
      (got) => got.some((g) => g.message.Body === id),
      6_000,
    );
    const receipt = receipts.find((g) => g.message.Body === id);
    expect(receipt, 'the message reached the queue').toBeDefined();
    console.log(
      `scheduled send: enqueued with DelaySeconds ${entry!.delaySeconds}, first received ${receipt!.receivedAt - sendAt.getTime()} ms after sendAt`,
    );
    expect(receipt!.receivedAt).toBeGreaterThanOrEqual(sendAt.getTime() - 50);
    // DelaySeconds is whole seconds rounded up: at most a second late, plus a poll.
    expect(receipt!.receivedAt).toBeLessThanOrEqual(sendAt.getTime() + 2_000);
  });
});

describe('the outbox sweep', () => {
  it('re-queues an accepted row whose SQS send failed once it is older than outboxAgeSeconds', async () => {
    // prepare
    const t = await setUp();
    const broken = await notificationMaker(db, t.sqs, {
      high: missingQueueUrl(),
      bulk: missingQueueUrl(),
    });
    const id = await broken.notify(uniqueMobile());
    const accepted = await rowOf(id);
    expect(accepted.status).toBe('accepted');
    const deps = testSchedulerDeps({
      db,
      queue: { sqs: t.recorder.sqs, queueUrls: t.queueUrls },
      whatsapp: noProbes,
      senderId: uniqueSenderId('outbox'),
    });

    // act: too young for the sweep
    await runSchedulerWhenFree(deps, schedulerOptions({ outboxAgeSeconds: 60 }));

    // assess
    expect((await rowOf(id)).status).toBe('accepted');
    expect(t.sentOf(id)).toEqual([]);

    // act: runs until the row is old enough
    const AGE_SECONDS = 2;
    let swept: SchedulerReport | undefined;
    const deadline = Date.now() + 6_000;
    while (t.sentOf(id).length === 0 && Date.now() < deadline) {
      swept = await runSchedulerWhenFree(deps, schedulerOptions({ outboxAgeSeconds: AGE_SECONDS }));
      if (t.sentOf(id).length === 0) await sleep(100);
    }

    // assess
    expect(swept).toMatchObject({ outcome: 'done' });
    expect((swept as { swept: number }).swept).toBeGreaterThanOrEqual(1);
    expect(t.sentOf(id)).toEqual([{ queueUrl: t.queue.url, body: id, delaySeconds: 0 }]);
    const row = await rowOf(id);
    expect(row.status).toBe('queued');
    expect(row.queued_at!.getTime() - row.created_at.getTime()).toBeGreaterThanOrEqual(
      AGE_SECONDS * 1000,
    );
    const receipts = await receiveUntil(t.sqs, t.queue.url, (got) =>
      got.some((g) => g.message.Body === id),
    );
    const message = receipts.find((g) => g.message.Body === id)?.message;
    expect(message?.MessageAttributes?.requestId?.StringValue).toBe(row.request_id);
  });
});

describe('one run at a time', () => {
  it('lets one of two concurrent runs do the work while the other returns skipped and logs it; nothing is enqueued twice', async () => {
    // prepare
    const t = await setUp();
    const start = new Date();
    const senderId = uniqueSenderId('lock');
    // An open circuit makes the run probe, and a probe that waits holds the run (and its lock).
    await openCircuit(db, { senderId, actor: 'operator:test', reason: 'hold the scheduler' });
    onTestFinished(() => forgetSender(db, senderId));
    const sendAts = [1, 2, 3].map((s) => new Date(Date.now() + s * 1_000));
    const ids = await Promise.all(
      sendAts.map((sendAt) => t.maker.notify(uniqueMobile(), { sendAt })),
    );
    const dbA = testDatabase(2);
    const dbB = testDatabase(2);
    onTestFinished(async () => {
      await dbA.destroy();
      await dbB.destroy();
    });
    let releaseProbe: () => void = () => {};
    const probeReleased = new Promise<void>((resolve) => {
      releaseProbe = resolve;
    });
    let probing: () => void = () => {};
    const depsA = testSchedulerDeps({
      db: dbA,
      queue: { sqs: t.recorder.sqs, queueUrls: t.queueUrls },
      senderId,
      whatsapp: {
        probe: async () => {
          probing();
          await probeReleased;
          return { ok: false, httpStatus: 503, errorClass: 'upstream', latencyMs: 1 };
        },
      },
    });
    const probesOfB: number[] = [];
    const logB = recordingLogger();
    const depsB = testSchedulerDeps({
      db: dbB,
      queue: { sqs: t.recorder.sqs, queueUrls: t.queueUrls },
      senderId,
      logger: logB.logger,
      whatsapp: {
        probe: async () => {
          probesOfB.push(Date.now());
          return { ok: false, latencyMs: 1 };
        },
      },
    });
    const options = schedulerOptions({ lookaheadSeconds: 5, probesPerRun: 1 });
    // Run A until it holds the lock (another file's run may hold it for a moment first).
    let runA: Promise<SchedulerReport> | undefined;
    const deadline = Date.now() + 10_000;
    while (!runA && Date.now() < deadline) {
      const holding = new Promise<'holding'>((resolve) => {
        probing = () => resolve('holding');
      });
      const attempt = runScheduler(depsA, options);
      const first = await Promise.race([holding, attempt.then((r) => r.outcome)]);
      if (first === 'holding') runA = attempt;
      else await sleep(25);
    }
    expect(runA, 'run A got the lock').toBeDefined();

    // act
    const reportB = await runScheduler(depsB, options);
    releaseProbe();
    const reportA = await runA!;

    // assess
    expect(reportB).toEqual({ outcome: 'skipped' });
    expect(probesOfB).toEqual([]);
    expect(logB.lines.map((l) => l.message)).toContain(
      'another scheduler run holds the lock; skipped',
    );
    expect(reportA).toMatchObject({ outcome: 'done', probes: [{ ok: false }], panicActive: true });
    const doneA = reportA as Extract<SchedulerReport, { outcome: 'done' }>;
    expect(doneA.scheduled).toBeGreaterThanOrEqual(ids.length);
    const runs = await db
      .selectFrom('scheduler_runs')
      .selectAll()
      .where('started_at', '>=', start)
      .execute();
    expect(runs.some((r) => r.outcome === 'skipped' && r.finished_at !== null)).toBe(true);
    const done = runs.find(
      (r) =>
        r.outcome === 'done' && (r.detail as { scheduled?: number })?.scheduled === doneA.scheduled,
    );
    expect(done?.finished_at).toBeInstanceOf(Date);

    // act: a later run finds nothing of ours left to enqueue
    await runSchedulerWhenFree(depsB, options);

    // assess: each row enqueued once, and on the queue once
    for (const id of ids) expect(t.sentOf(id)).toHaveLength(1);
    const rows = await readRows(db, ids);
    for (const id of ids) expect(rows.get(id)?.status).toBe('queued');
    const lastDue = Math.max(...sendAts.map((d) => d.getTime()));
    const receipts = await receiveUntil(
      t.sqs,
      t.queue.url,
      () => Date.now() > lastDue + 1_500,
      8_000,
    );
    const ours = receipts.map((g) => g.message.Body ?? '').filter((b) => ids.includes(b));
    expect(ours.sort()).toEqual([...ids].sort());
  });
});
