/**
 * Panic mode (the circuit of one sending number) on the real local parts: opened by real sends to
 * the WhatsApp sandbox through the worker and the database gates, or by hand; while open, the
 * worker parks notifications and sends nothing; the scheduler's probes close it after three good
 * answers in a row, and its drain re-queues the parked rows at the configured rate.
 */
import { afterAll, describe, expect, it, onTestFinished } from 'vitest';
import {
  closeCircuit,
  GOOD_PROBES_TO_CLOSE,
  listPanicStates,
  openCircuit,
} from '#core/delivery/panic-mode.ts';
import { testDatabase } from '../../support/database.ts';
import {
  auditRows,
  holdingRollout,
  type RecordedEntry,
  readRows,
  readSender,
  receiveUntil,
  recordingMetrics,
  recordingSqsClient,
  runSchedulerWhenFree,
  schedulerOptions,
  startGatedRig,
  testSchedulerDeps,
  uniqueMobile,
  withSuiteLock,
} from '../../support/delivery-control.ts';

const db = testDatabase(8);
afterAll(() => db.destroy());

async function rig(options: Parameters<typeof startGatedRig>[1] = {}) {
  const started = await startGatedRig(db, options);
  onTestFinished(() => started.stop());
  return started;
}

type Rig = Awaited<ReturnType<typeof rig>>;

/** Notifications to fresh numbers, through the API, each handled by the worker. */
async function sendThroughWorker(r: Rig, count: number) {
  const ids = await r.maker.notifyMany(Array.from({ length: count }, () => uniqueMobile()));
  const passes = await r.passUntilSeen(ids);
  return { ids, outcomes: passes.flatMap((p) => [...p.outcomes.values()]) };
}

/** The scheduler of a rig's sender, probing the rig's sandbox and enqueueing to the rig's queue. */
function schedulerFor(r: Rig, sqs = r.sqs) {
  return testSchedulerDeps({
    db,
    queue: { sqs, queueUrls: { high: r.queue.url, bulk: r.queue.url } },
    whatsapp: r.graph,
    senderId: r.senderId,
  });
}

describe('opening the circuit', () => {
  it('opens after N consecutive upstream failures from the sandbox, a success in between resetting the run', async () => {
    // prepare
    const r = await rig({ failureThreshold: 3 });
    r.sandbox.setFaults({ rate: 1, kinds: ['5xx'] });
    const first = await sendThroughWorker(r, 2);
    expect(first.outcomes).toEqual(['retry', 'retry']);
    r.sandbox.setFaults({ rate: 0 });
    expect((await sendThroughWorker(r, 1)).outcomes).toEqual(['sent']);
    expect(await readSender(db, r.senderId)).toMatchObject({
      circuit: 'closed',
      consecutive_failures: 0,
    });
    r.sandbox.setFaults({ rate: 1, kinds: ['5xx'] });
    await sendThroughWorker(r, 2);
    expect(await readSender(db, r.senderId)).toMatchObject({
      circuit: 'closed',
      consecutive_failures: 2,
    });

    // act
    const third = await sendThroughWorker(r, 1);

    // assess
    expect(third.outcomes).toEqual(['retry']);
    expect(await readSender(db, r.senderId)).toMatchObject({
      circuit: 'open',
      consecutive_failures: 3,
      opened_by: 'system:worker',
      open_reason: '3 consecutive upstream failures',
    });
    const audit = await auditRows(db, r.senderId, 'panic.enable');
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({ actor: 'system:worker', outcome: 'ok' });
    expect(r.sandbox.stats().sendsReceived).toBe(6);
  });

  it('opens after N consecutive 500s from the always-failing test number (…11)', async () => {
    // prepare
    const r = await rig({ failureThreshold: 2 });
    const first = await r.maker.notify('+573000000011');
    await r.passUntilSeen([first]);
    expect((await readSender(db, r.senderId)).circuit).toBe('closed');

    // act
    const second = await r.maker.notify('+573000000011');
    await r.passUntilSeen([second]);

    // assess
    expect(await readSender(db, r.senderId)).toMatchObject({
      circuit: 'open',
      consecutive_failures: 2,
    });
    const rows = await readRows(db, [first, second]);
    for (const id of [first, second]) {
      expect(rows.get(id)).toMatchObject({
        status: 'queued',
        error_class: 'upstream',
        error_code: 131000,
      });
    }
  });

  it.each([
    { to: '+573000000008', errorClass: 'auth', code: 190 },
    { to: '+573000000009', errorClass: 'account_blocked', code: 131048 },
  ] as const)(
    'opens at once on $errorClass ($code) from the sandbox and parks the notification',
    async ({ to, errorClass, code }) => {
      // prepare
      const { metrics, values } = recordingMetrics();
      const r = await rig({ failureThreshold: 100, metrics });
      const id = await r.maker.notify(to);

      // act
      const passes = await r.passUntilSeen([id]);

      // assess
      expect(passes.flatMap((p) => [...p.outcomes.values()])).toEqual(['deferred']);
      expect((await readRows(db, [id])).get(id)).toMatchObject({
        status: 'deferred',
        status_reason: 'circuit_open',
        error_class: errorClass,
        error_code: code,
      });
      const sender = await readSender(db, r.senderId);
      expect(sender).toMatchObject({ circuit: 'open', opened_by: 'system:worker' });
      expect(sender.open_reason).toContain(errorClass);
      const audit = await auditRows(db, r.senderId, 'panic.enable');
      expect(audit).toHaveLength(1);
      expect(audit[0]!.detail).toMatchObject({ senderId: r.senderId });
      expect(values).toContainEqual({ name: 'PanicModeActive', value: 1 });
    },
  );

  it('opens and closes by hand with a reason, audited once each, and reports it in the panic states', async () => {
    // prepare
    const r = await rig();
    const { metrics, values } = recordingMetrics();
    const reason = 'Meta status page reports an outage';

    // act
    const opened = await openCircuit(db, {
      senderId: r.senderId,
      actor: 'operator:alice',
      reason,
      requestId: 'req-open-1',
      metrics,
    });
    const openedAgain = await openCircuit(db, {
      senderId: r.senderId,
      actor: 'operator:bob',
      reason: 'second opinion',
    });

    // assess
    expect([opened, openedAgain]).toEqual([true, false]);
    const state = (await listPanicStates(db)).find((s) => s.senderId === r.senderId);
    expect(state).toMatchObject({ active: true, openedBy: 'operator:alice', reason });
    expect(state?.openedAt).toEqual(expect.any(String));
    const enabled = await auditRows(db, r.senderId, 'panic.enable');
    expect(enabled).toHaveLength(1);
    expect(enabled[0]).toMatchObject({
      actor: 'operator:alice',
      outcome: 'ok',
      request_id: 'req-open-1',
      detail: { senderId: r.senderId, reason },
    });

    // act
    const closed = await closeCircuit(db, {
      senderId: r.senderId,
      actor: 'operator:alice',
      reason: 'Meta recovered',
      metrics,
    });
    const closedAgain = await closeCircuit(db, {
      senderId: r.senderId,
      actor: 'operator:alice',
      reason: 'again',
    });

    // assess
    expect([closed, closedAgain]).toEqual([true, false]);
    expect((await listPanicStates(db)).find((s) => s.senderId === r.senderId)?.active).toBe(false);
    const disabled = await auditRows(db, r.senderId, 'panic.disable');
    expect(disabled).toHaveLength(1);
    expect(disabled[0]).toMatchObject({
      actor: 'operator:alice',
      detail: { senderId: r.senderId, reason: 'Meta recovered' },
    });
    expect(values.filter((v) => v.name === 'PanicModeActive').map((v) => v.value)).toEqual([1, 0]);
  });
});

describe('while the circuit is open', () => {
  it('parks every notification as deferred (panic_mode) and sends nothing; after closing by hand it sends', async () => {
    // prepare
    const r = await rig();
    await openCircuit(db, { senderId: r.senderId, actor: 'operator:alice', reason: 'drill' });
    const before = r.sandbox.stats().sendsReceived;

    // act
    const parked = await sendThroughWorker(r, 4);

    // assess
    expect(parked.outcomes).toEqual(['deferred', 'deferred', 'deferred', 'deferred']);
    const rows = [...(await readRows(db, parked.ids)).values()];
    expect(rows.map((row) => [row.status, row.status_reason, row.attempts])).toEqual(
      parked.ids.map(() => ['deferred', 'panic_mode', 0]),
    );
    expect(r.sandbox.stats().sendsReceived).toBe(before);
    expect((await readSender(db, r.senderId)).day_count).toBe(0);

    // act
    await closeCircuit(db, { senderId: r.senderId, actor: 'operator:alice', reason: 'drill over' });
    const after = await sendThroughWorker(r, 2);

    // assess
    expect(after.outcomes).toEqual(['sent', 'sent']);
    expect(r.sandbox.stats().accepted).toBe(2);
  });
});

describe('probes and recovery', () => {
  it(`closes after ${GOOD_PROBES_TO_CLOSE} good probes in a row, not after 2, and a bad probe starts the count again`, async () => {
    // prepare
    const r = await rig();
    await openCircuit(db, { senderId: r.senderId, actor: 'operator:alice', reason: 'probe test' });
    const deps = schedulerFor(r);

    // act: two good probes
    const twoGood = await runSchedulerWhenFree(deps, schedulerOptions({ probesPerRun: 2 }));

    // assess
    expect(twoGood).toMatchObject({
      probes: [{ ok: true }, { ok: true }],
      circuitClosed: false,
      panicActive: true,
    });
    expect(await readSender(db, r.senderId)).toMatchObject({ circuit: 'open', good_probes: 2 });
    expect(deps.sleeps).toEqual([15_000]);

    // act: a bad probe, then two good ones
    r.sandbox.setFaults({ rate: 1, kinds: ['5xx'] });
    const bad = await runSchedulerWhenFree(deps, schedulerOptions({ probesPerRun: 1 }));
    r.sandbox.setFaults({ rate: 0 });
    const twoMore = await runSchedulerWhenFree(deps, schedulerOptions({ probesPerRun: 2 }));

    // assess
    expect(bad.probes).toEqual([{ ok: false }]);
    expect(twoMore).toMatchObject({ probes: [{ ok: true }, { ok: true }], panicActive: true });
    expect(await readSender(db, r.senderId)).toMatchObject({ circuit: 'open', good_probes: 2 });

    // act: the third good one in a row
    const third = await runSchedulerWhenFree(deps, schedulerOptions({ probesPerRun: 3 }));

    // assess
    expect(third).toMatchObject({
      probes: [{ ok: true }],
      circuitClosed: true,
      panicActive: false,
    });
    expect(await readSender(db, r.senderId)).toMatchObject({
      circuit: 'closed',
      good_probes: 0,
      consecutive_failures: 0,
    });
    const disabled = await auditRows(db, r.senderId, 'panic.disable');
    expect(disabled).toHaveLength(1);
    expect(disabled[0]).toMatchObject({ actor: 'system:scheduler' });
    expect(r.sandbox.stats().sendsReceived).toBe(0);
  });

  it('after closing, re-queues the deferred rows at drainPerSecond × runIntervalSeconds a run, with increasing SQS delays', async () => {
    const RUN_INTERVAL_SECONDS = 2;
    // Held throughout: no other file of this suite parks rows meanwhile, and nobody changes the
    // drain rate between our reading it and the scheduler reading it.
    await withSuiteLock(db, () =>
      holdingRollout(db, async (rollout) => {
        // prepare
        expect(rollout.deliveryEnabled, 'delivery is enabled in the shared settings').toBe(true);
        const rate = rollout.drainPerSecond;
        const perRun = rate * RUN_INTERVAL_SECONDS;
        const r = await rig();
        await openCircuit(db, { senderId: r.senderId, actor: 'operator:alice', reason: 'drain' });
        const parked = await sendThroughWorker(r, perRun + 5);
        expect(new Set(parked.outcomes)).toEqual(new Set(['deferred']));
        // The drain takes the oldest parked rows first (a batch's rows share one updated_at).
        const parkedAt = new Map(
          [...(await readRows(db, parked.ids)).values()].map((row) => [
            row.id,
            row.updated_at.getTime(),
          ]),
        );
        const own = new Set(parked.ids);
        const recorder = recordingSqsClient();
        onTestFinished(() => recorder.sqs.destroy());
        const deps = schedulerFor(r, recorder.sqs);
        const options = schedulerOptions({ runIntervalSeconds: RUN_INTERVAL_SECONDS });

        // act: runs until every parked row of ours is back on the queue
        const runs: { drained: number; entries: RecordedEntry[]; startedAt: number }[] = [];
        const deadline = Date.now() + 60_000;
        let mine = 0;
        while (mine < own.size && Date.now() < deadline) {
          const startedAt = Date.now();
          const from = recorder.sent.length;
          const report = await runSchedulerWhenFree(deps, options);
          const entries = recorder.sent.slice(from).filter((e) => own.has(e.body));
          runs.push({ drained: report.drained, entries, startedAt });
          mine += entries.length;
          if (runs.length === 1) {
            expect(report).toMatchObject({ circuitClosed: true, panicActive: false });
          }
        }

        // assess: the rate
        expect(mine).toBe(own.size);
        expect(runs.length).toBeGreaterThanOrEqual(2);
        for (const run of runs) expect(run.drained).toBeLessThanOrEqual(perRun);
        expect(runs[0]!.drained).toBe(perRun);
        console.log(
          `drain at ${rate}/s × ${RUN_INTERVAL_SECONDS} s: drained per run ${runs.map((x) => x.drained).join(', ')}; ` +
            `own rows per run ${runs.map((x) => x.entries.length).join(', ')}`,
        );
        // assess: the delays spread each run over its interval, oldest rows first
        for (const run of runs) {
          const delays = run.entries
            .map((e) => ({ at: parkedAt.get(e.body)!, delay: e.delaySeconds }))
            .sort((a, b) => a.at - b.at || a.delay - b.delay)
            .map((e) => e.delay);
          // Sorted by when they were parked, the delays never go down: older rows go out first.
          expect(delays).toEqual([...delays].sort((a, b) => a - b));
          for (const d of new Set(delays)) {
            expect(delays.filter((x) => x === d).length).toBeLessThanOrEqual(rate);
            expect(d).toBeLessThan(RUN_INTERVAL_SECONDS);
          }
          // Other files' parked rows may come first, and only push ours later: never earlier.
          delays.forEach((d, i) => {
            expect(d).toBeGreaterThanOrEqual(Math.floor(i / rate));
          });
        }
        expect(new Set(runs[0]!.entries.map((e) => e.delaySeconds)).size).toBeGreaterThan(1);

        // assess: on the queue, each is received no sooner than its delay
        const receipts = await receiveUntil(
          r.sqs,
          r.queue.url,
          (got) => got.filter((g) => own.has(g.message.Body ?? '')).length >= own.size,
          30_000,
        );
        const receivedAt = new Map(receipts.map((g) => [g.message.Body ?? '', g.receivedAt]));
        for (const run of runs) {
          for (const entry of run.entries) {
            expect(receivedAt.get(entry.body)).toBeGreaterThanOrEqual(
              run.startedAt + entry.delaySeconds * 1000 - 50,
            );
          }
        }
        const rows = [...(await readRows(db, parked.ids)).values()];
        expect(new Set(rows.map((row) => row.status))).toEqual(new Set(['queued']));
        expect(r.sandbox.stats().sendsReceived).toBe(0);
      }),
    );
  });
});
