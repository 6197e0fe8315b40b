/**
 * The scheduler on the real local parts: scheduled notifications enqueued when due with an SQS
 * delay (and not before), the outbox sweep of rows whose SQS send failed, its advisory lock (one
 * run at a time), probes that stop when the invocation has no time left for them, and the hourly
 * read of the access token's expiry. It works on every row of the shared database, so its queue
 * targets are this test's own queues and the assertions look at this test's rows only.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it, onTestFinished } from 'vitest';
import { GOOD_PROBES_TO_CLOSE, openCircuit } from '#core/delivery/panic-mode.ts';
import {
  runScheduler,
  type SchedulerReport,
  type TokenCheckState,
} from '#core/delivery/scheduler.ts';
import { Metric } from '#core/platform/metric-names.ts';
import type { ProbeResult, TokenStatusResult } from '#core/whatsapp/graph-client.ts';
import { testSqsClient } from '../../support/api.ts';
import { testDatabase } from '../../support/database.ts';
import {
  createTestQueues,
  deleteTestQueues,
  sandboxGraphClient,
  startTestSandbox,
} from '../../support/delivery.ts';
import {
  forgetSender,
  holdingRollout,
  missingQueueUrl,
  notificationMaker,
  readRows,
  readSender,
  receiveUntil,
  recordingLogger,
  recordingMetrics,
  recordingSqsClient,
  runSchedulerWhenFree,
  schedulerOptions,
  testSchedulerDeps,
  uniqueMobile,
  uniqueSenderId,
  withSuiteLock,
} from '../../support/delivery-control.ts';

const db = testDatabase(6);
afterAll(() => db.destroy());

/** Fails the test if the scheduler reads the token: these deps carry no token-check state. */
const noTokenCheck = async (): Promise<TokenStatusResult> => {
  throw new Error('the scheduler read the token without being asked to');
};

/** A probe that fails the test if the scheduler calls it: the circuit is closed. */
const noProbes = {
  probe: async (): Promise<ProbeResult> => {
    throw new Error('the scheduler probed a closed circuit');
  },
  tokenStatus: noTokenCheck,
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
      30_000,
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
    const deadline = Date.now() + 30_000;
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
        tokenStatus: noTokenCheck,
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
        tokenStatus: noTokenCheck,
      },
    });
    const options = schedulerOptions({ lookaheadSeconds: 5, probesPerRun: 1 });
    // Run A until it holds the lock (another file's run may hold it for a moment first).
    let runA: Promise<SchedulerReport> | undefined;
    const deadline = Date.now() + 30_000;
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

/**
 * An invocation's clock for one run: it starts with `budgetMs` left and loses time only when the
 * scheduler sleeps or a probe runs, as a Lambda's would with Meta answering at `probeMs`.
 */
function invocationClock(budgetMs: number, probeMs: number, ok: boolean) {
  let spent = 0;
  const probes: number[] = [];
  return {
    remainingMs: () => budgetMs - spent,
    sleep: async (ms: number) => {
      spent += ms;
    },
    probe: async (): Promise<ProbeResult> => {
      probes.push(spent);
      spent += probeMs;
      return ok
        ? { ok: true, latencyMs: probeMs }
        : { ok: false, errorClass: 'upstream', latencyMs: probeMs };
    },
    probes,
    restart() {
      spent = 0;
      probes.length = 0;
    },
  };
}

describe('probes within the invocation time', () => {
  it('with a slow Meta and little time left, stops probing early, finishes the run, and drains after the circuit closes', async () => {
    // Held throughout: no other file of this suite drains deferred rows or changes the drain rate
    // while this test waits for its own row to be drained.
    await withSuiteLock(db, () =>
      holdingRollout(db, async (rollout) => {
        // prepare
        expect(rollout.deliveryEnabled, 'delivery is enabled in the shared settings').toBe(true);
        const t = await setUp();
        const senderId = uniqueSenderId('budget');
        await openCircuit(db, { senderId, actor: 'operator:test', reason: 'slow Meta' });
        onTestFinished(() => forgetSender(db, senderId));
        const id = await t.maker.notify(uniqueMobile());
        await db
          .updateTable('notifications')
          .set({ status: 'deferred', status_reason: 'circuit_open', next_attempt_at: null })
          .where('id', '=', id)
          .execute();
        // Each probe takes the whole Graph timeout; 50 s left fits one probe and the reserve only.
        const clock = invocationClock(50_000, 10_000, true);
        const log = recordingLogger();
        const deps = testSchedulerDeps({
          db,
          queue: { sqs: t.recorder.sqs, queueUrls: t.queueUrls },
          whatsapp: { probe: clock.probe, tokenStatus: noTokenCheck },
          senderId,
          remainingMs: clock.remainingMs,
          sleep: clock.sleep,
          logger: log.logger,
        });
        const options = schedulerOptions({
          runIntervalSeconds: Math.ceil(2_000 / rollout.drainPerSecond),
        });

        // act: one run per invocation until the circuit closes
        const reports: Extract<SchedulerReport, { outcome: 'done' }>[] = [];
        for (let run = 0; run < GOOD_PROBES_TO_CLOSE; run++) {
          clock.restart();
          reports.push(await runSchedulerWhenFree(deps, options));
          // assess: never more time asked for than the invocation had
          expect(clock.remainingMs()).toBeGreaterThanOrEqual(options.reserveMs);
        }

        // assess: one probe a run, the rest reported and logged as skipped for time, until the
        // last good probe closes the circuit and there is nothing left to probe
        for (const report of reports) expect(report.probes).toEqual([{ ok: true }]);
        expect(reports.map((r) => r.probesSkippedForTime)).toEqual([
          ...Array(GOOD_PROBES_TO_CLOSE - 1).fill(options.probesPerRun - 1),
          0,
        ]);
        const stopped = log.lines.filter((l) => l.message.startsWith('panic mode probes stopped'));
        expect(stopped).toHaveLength(GOOD_PROBES_TO_CLOSE - 1);
        expect(stopped[0]!.level).toBe('warn');
        // assess: nothing drained while the circuit was open, then our row once it closed
        expect(reports.slice(0, -1).map((r) => r.panicActive)).toEqual(
          Array(GOOD_PROBES_TO_CLOSE - 1).fill(true),
        );
        expect(reports.at(-1)).toMatchObject({ circuitClosed: true, panicActive: false });
        expect(reports.at(-1)!.drained).toBeGreaterThanOrEqual(1);
        expect(t.sentOf(id)).toHaveLength(1);
        expect((await rowOf(id)).status).toBe('queued');
        expect(await readSender(db, senderId)).toMatchObject({ circuit: 'closed' });
      }),
    );
  });

  it('with time to spare, runs every probe with its wait in between, however slow Meta is', async () => {
    // prepare
    const t = await setUp();
    const senderId = uniqueSenderId('ample');
    await openCircuit(db, { senderId, actor: 'operator:test', reason: 'Meta down' });
    onTestFinished(() => forgetSender(db, senderId));
    const clock = invocationClock(120_000, 10_000, false);
    const log = recordingLogger();
    const deps = testSchedulerDeps({
      db,
      queue: { sqs: t.recorder.sqs, queueUrls: t.queueUrls },
      whatsapp: { probe: clock.probe, tokenStatus: noTokenCheck },
      senderId,
      remainingMs: clock.remainingMs,
      sleep: clock.sleep,
      logger: log.logger,
    });

    // act
    const report = await runSchedulerWhenFree(deps, schedulerOptions());

    // assess
    expect(report).toMatchObject({
      probes: [{ ok: false }, { ok: false }, { ok: false }],
      probesSkippedForTime: 0,
      panicActive: true,
    });
    // Probes start at 0, then after each 10 s probe and 15 s wait.
    expect(clock.probes).toEqual([0, 25_000, 50_000]);
    expect(log.lines.filter((l) => l.message.startsWith('panic mode probes stopped'))).toEqual([]);
  });
});

/** A graph client whose debug_token answers `answer`, counting the calls. */
function tokenGraph(answer: () => TokenStatusResult) {
  const calls: number[] = [];
  return {
    calls,
    whatsapp: {
      probe: noProbes.probe,
      tokenStatus: async () => {
        calls.push(Date.now());
        return answer();
      },
    },
  };
}

const DAY = 86_400_000;

describe('the access token check', () => {
  async function tokenRig(answer: () => TokenStatusResult, start = new Date()) {
    const t = await setUp();
    const graph = tokenGraph(answer);
    const recorded = recordingMetrics();
    const state: TokenCheckState = {};
    let now = start;
    const deps = testSchedulerDeps({
      db,
      queue: { sqs: t.recorder.sqs, queueUrls: t.queueUrls },
      whatsapp: graph.whatsapp,
      senderId: uniqueSenderId('token'),
      metrics: recorded.metrics,
      tokenCheck: state,
      now: () => now,
    });
    const daysLeft = () =>
      recorded.values.filter((v) => v.name === Metric.WhatsAppTokenDaysLeft).map((v) => v.value);
    return {
      deps,
      graph,
      state,
      daysLeft,
      advance(ms: number) {
        now = new Date(now.getTime() + ms);
      },
    };
  }

  it('publishes the days left once an hour, not on every run', async () => {
    // prepare
    const start = new Date();
    const r = await tokenRig(() => ({
      ok: true,
      valid: true,
      expiresAt: new Date(start.getTime() + 3.5 * DAY),
      scopes: ['whatsapp_business_messaging'],
      data: {},
      latencyMs: 5,
    }));

    // act: a first run, one a minute later, and one an hour after the first
    const first = await runSchedulerWhenFree(r.deps, schedulerOptions());
    r.advance(60_000);
    const minuteLater = await runSchedulerWhenFree(r.deps, schedulerOptions());
    r.advance(3_600_000);
    const hourLater = await runSchedulerWhenFree(r.deps, schedulerOptions());

    // assess
    expect(first.tokenCheck).toEqual({ outcome: 'expires', daysLeft: 3.5 });
    expect(minuteLater.tokenCheck).toEqual({ outcome: 'not_due' });
    expect(hourLater.tokenCheck.outcome).toBe('expires');
    expect(r.graph.calls).toHaveLength(2);
    const [atFirst, atHour] = r.daysLeft();
    expect(atFirst).toBeCloseTo(3.5, 5);
    expect(atHour).toBeCloseTo(3.5 - (61 * 60_000) / DAY, 5);
  });

  it("publishes nothing for a token that never expires, as the sandbox's debug_token reports it", async () => {
    // prepare
    const sandbox = await startTestSandbox();
    const graph = sandboxGraphClient(sandbox);
    onTestFinished(async () => {
      await graph.close();
      await sandbox.stop();
    });
    const r = await tokenRig(() => {
      throw new Error('this test reads the sandbox');
    });
    r.deps.whatsapp = graph;

    // act
    const report = await runSchedulerWhenFree(r.deps, schedulerOptions());

    // assess
    expect(report.tokenCheck).toEqual({ outcome: 'never_expires' });
    expect(r.state.lastCheckedAt).toBeInstanceOf(Date);
    expect(r.daysLeft()).toEqual([]);
  });

  it('publishes 0 days for a token Meta calls invalid', async () => {
    // prepare
    const r = await tokenRig(() => ({
      ok: true,
      valid: false,
      expiresAt: new Date(Date.now() - DAY),
      scopes: [],
      data: { is_valid: false },
      latencyMs: 5,
    }));

    // act
    const report = await runSchedulerWhenFree(r.deps, schedulerOptions());

    // assess
    expect(report.tokenCheck).toEqual({ outcome: 'invalid' });
    expect(r.daysLeft()).toEqual([0]);
  });

  it('publishes 0 days when Meta rejects the token, and waits an hour before asking again', async () => {
    // prepare
    const r = await tokenRig(() => ({
      ok: false,
      errorClass: 'auth',
      code: 190,
      httpStatus: 401,
      message: 'Error validating access token',
      latencyMs: 5,
    }));

    // act
    const report = await runSchedulerWhenFree(r.deps, schedulerOptions());
    r.advance(60_000);
    await runSchedulerWhenFree(r.deps, schedulerOptions());

    // assess
    expect(report.tokenCheck).toEqual({ outcome: 'failed', errorClass: 'auth' });
    expect(r.daysLeft()).toEqual([0]);
    expect(r.graph.calls).toHaveLength(1);
  });

  it('leaves the check for a later run when the invocation has no time for a Graph call', async () => {
    // prepare
    const r = await tokenRig(() => {
      throw new Error('the scheduler read the token without the time to');
    });
    const options = schedulerOptions();
    r.deps.remainingMs = () => options.graphCallMaxMs - 1;

    // act
    const report = await runSchedulerWhenFree(r.deps, options);

    // assess
    expect(report.tokenCheck).toEqual({ outcome: 'no_time' });
    expect(r.state.lastCheckedAt).toBeUndefined();
    expect(r.daysLeft()).toEqual([]);
  });
});
