/**
 * Rate limits shared by concurrent workers, on the embedded PostgreSQL: one token bucket per sender
 * with per-minute and daily caps, and a minimum spacing per recipient. Each worker here has a pool
 * of its own, as each Lambda instance does, and every test has a sender and numbers of its own.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'kysely';
import { afterAll, describe, expect, it, onTestFinished } from 'vitest';
import { ensureSender } from '#core/delivery/panic-mode.ts';
import {
  type BucketLimits,
  claimRecipientSlots,
  releaseRecipientSlots,
  returnSendTokens,
  startOfNextUtcDay,
  type TokenGrant,
  takeSendTokens,
} from '#core/delivery/rate-limits.ts';
import type { Rollout } from '#core/delivery/rollout.ts';
import { startSqsEventSource } from '../../../bin/local/sqs-event-source.ts';
import { testDatabase } from '../../support/database.ts';
import { countQueueMessages, visibleAndDelayed } from '../../support/delivery.ts';
import {
  forgetSender,
  readRows,
  readSender,
  startGatedRig,
  statusesOf,
  uniqueMobile,
  uniqueSenderId,
  workerHandler,
} from '../../support/delivery-control.ts';

const db = testDatabase(6);
afterAll(() => db.destroy());

const WORKERS = 8;

/** One pool per worker, closed when the test ends. */
function workerPools(count = WORKERS) {
  const pools = Array.from({ length: count }, () => testDatabase(1));
  onTestFinished(() => Promise.all(pools.map((p) => p.destroy())).then(() => undefined));
  return pools;
}

interface Grant extends TokenGrant {
  worker: number;
  /** Milliseconds from the start of the run to the answer. */
  at: number;
}

/**
 * Every worker takes `wanted` tokens again and again until `stop` says so or `durationMs` passes,
 * pausing 5 ms after an empty answer as a worker would back off; returns every answer.
 */
async function takeConcurrently(
  senderId: string,
  limits: BucketLimits,
  options: { wanted: number; durationMs: number; stop?: (grant: TokenGrant) => boolean },
): Promise<{ grants: Grant[]; calls: number; elapsedMs: number }> {
  const pools = workerPools();
  // Connect every pool before the clock starts, so the run measures the bucket and not connecting.
  await Promise.all(pools.map((p) => sql`select 1`.execute(p)));
  const grants: Grant[] = [];
  let calls = 0;
  const start = performance.now();
  await Promise.all(
    pools.map(async (pool, worker) => {
      while (performance.now() - start < options.durationMs) {
        const grant = await takeSendTokens(pool, senderId, options.wanted, limits);
        calls += 1;
        grants.push({ ...grant, worker, at: performance.now() - start });
        if (options.stop?.(grant)) return;
        if (grant.granted === 0) await sleep(5);
      }
    }),
  );
  return { grants, calls, elapsedMs: performance.now() - start };
}

const total = (grants: readonly Grant[]) => grants.reduce((sum, g) => sum + g.granted, 0);

/** Waits (at most a few seconds) until the database clock is not in a minute's last seconds. */
async function awayFromMinuteEnd(): Promise<void> {
  for (;;) {
    const { rows } = await sql<{
      second: number;
    }>`select extract(second from clock_timestamp())::float8 as second`.execute(db);
    if (Number(rows[0]!.second) < 55) return;
    await sleep(50);
  }
}

describe('token bucket shared by concurrent workers', () => {
  it('grants eight concurrent workers no more than the rate in any second, and about rate × time in all', async () => {
    // prepare
    const RATE = 50;
    const DURATION_MS = 3_000;
    const sender = uniqueSenderId('bucket');
    await ensureSender(db, sender);
    // An idle sender: its bucket is full (one second of tokens) when the burst arrives.
    await db
      .updateTable('sender_state')
      .set({ tokens: RATE, bucket_at: sql`now()` })
      .where('sender_id', '=', sender)
      .execute();

    // act
    const { grants, calls, elapsedMs } = await takeConcurrently(
      sender,
      { ratePerSecond: RATE, perMinuteCap: null, dailyCap: null },
      { wanted: 10, durationMs: DURATION_MS },
    );

    // assess
    const perSecond = [0, 0, 0, 0];
    for (const g of grants) perSecond[Math.floor(g.at / 1000)]! += g.granted;
    const granted = total(grants);
    const workersServed = new Set(grants.filter((g) => g.granted > 0).map((g) => g.worker));
    console.log(
      `token bucket at ${RATE}/s, ${WORKERS} workers, ${calls} calls in ${Math.round(elapsedMs)} ms: ` +
        `granted per second ${perSecond.join(', ')}; total ${granted}; ${workersServed.size} workers served`,
    );
    // The hard bound of a bucket of one second: what it held at the start plus what refilled since.
    expect(granted).toBeLessThanOrEqual(RATE + Math.ceil((RATE * elapsedMs) / 1000));
    // ≈ rate × duration: the burst plus the refill, nearly all of it handed out.
    expect(granted).toBeGreaterThanOrEqual(0.9 * (RATE + (RATE * DURATION_MS) / 1000));
    // The first second may hold the burst; every later one only the refill. The seconds are
    // counted where the answers arrive, so a stalled event loop can move a few tokens across.
    expect(perSecond[0]).toBeLessThanOrEqual(2 * RATE);
    for (const second of perSecond.slice(1)) expect(second).toBeLessThanOrEqual(RATE * 1.25);
    expect(perSecond[1]).toBeGreaterThanOrEqual(RATE * 0.75);
    expect(perSecond[2]).toBeGreaterThanOrEqual(RATE * 0.75);
    expect(workersServed.size).toBeGreaterThan(1);
  });

  it('never hands out more than the per-minute cap in total, and counts from zero in the next minute', async () => {
    // prepare
    const CAP = 120;
    const sender = uniqueSenderId('minute');
    await ensureSender(db, sender);
    const limits = { ratePerSecond: 1_000, perMinuteCap: CAP, dailyCap: null };
    await awayFromMinuteEnd();

    // act
    const { grants } = await takeConcurrently(sender, limits, {
      wanted: 7,
      durationMs: 4_000,
      stop: (g) => g.granted === 0 && g.minuteUsed >= CAP,
    });

    // assess
    expect(total(grants)).toBe(CAP);
    for (const g of grants) expect(g.minuteUsed + g.granted).toBeLessThanOrEqual(CAP);
    expect(await readSender(db, sender)).toMatchObject({ minute_count: CAP, day_count: CAP });

    // act: the next minute, made by moving this sender's minute back rather than by waiting
    await db
      .updateTable('sender_state')
      .set({ minute_start: sql`minute_start - interval '1 minute'` })
      .where('sender_id', '=', sender)
      .execute();
    await sleep(20);
    const next = await takeSendTokens(db, sender, 5, limits);

    // assess
    expect(next.minuteUsed).toBe(0);
    expect(next.granted).toBeGreaterThan(0);
    expect(next.dayUsed).toBe(CAP);
  });

  it('never hands out more than the daily cap in total, and counts from zero on the next UTC day', async () => {
    // prepare
    const CAP = 75;
    const sender = uniqueSenderId('daily');
    await ensureSender(db, sender);
    const limits = { ratePerSecond: 1_000, perMinuteCap: null, dailyCap: CAP };

    // act
    const { grants } = await takeConcurrently(sender, limits, {
      wanted: 4,
      durationMs: 4_000,
      stop: (g) => g.granted === 0 && g.dayUsed >= CAP,
    });

    // assess
    expect(total(grants)).toBe(CAP);
    for (const g of grants) expect(g.dayUsed + g.granted).toBeLessThanOrEqual(CAP);

    // act: the next UTC day, made by moving this sender's day back
    await db
      .updateTable('sender_state')
      .set({ day_start: sql`day_start - interval '1 day'` })
      .where('sender_id', '=', sender)
      .execute();
    await sleep(20);
    const next = await takeSendTokens(db, sender, 3, limits);

    // assess
    expect(next.dayUsed).toBe(0);
    expect(next.granted).toBeGreaterThan(0);
  });

  it('takes nothing from the bucket while the circuit is open', async () => {
    // prepare
    const sender = uniqueSenderId('open');
    await ensureSender(db, sender);
    onTestFinished(() => forgetSender(db, sender));
    await db
      .updateTable('sender_state')
      .set({ circuit: 'open', tokens: 50 })
      .where('sender_id', '=', sender)
      .execute();

    // act
    const grant = await takeSendTokens(db, sender, 10, {
      ratePerSecond: 50,
      perMinuteCap: null,
      dailyCap: null,
    });

    // assess
    expect(grant).toMatchObject({ circuitOpen: true, granted: 0 });
    expect(await readSender(db, sender)).toMatchObject({ minute_count: 0, day_count: 0 });
  });
});

describe('giving back what a row did not use', () => {
  it('returns unused permits to the bucket and to the minute and day counts', async () => {
    // prepare
    const sender = uniqueSenderId('return');
    await ensureSender(db, sender);
    onTestFinished(() => forgetSender(db, sender));
    const limits = { ratePerSecond: 10, perMinuteCap: 100, dailyCap: 1000 };
    await db
      .updateTable('sender_state')
      .set({ tokens: 10, bucket_at: new Date() })
      .where('sender_id', '=', sender)
      .execute();
    const taken = await takeSendTokens(db, sender, 6, limits);
    expect(taken.granted).toBe(6);

    // act
    await returnSendTokens(db, sender, 2, limits.ratePerSecond);

    // assess
    const state = await readSender(db, sender);
    expect({ minute: state.minute_count, day: state.day_count }).toEqual({ minute: 4, day: 4 });
    expect(Number(state.tokens)).toBeGreaterThanOrEqual(6);
    expect(Number(state.tokens)).toBeLessThanOrEqual(limits.ratePerSecond);
  });

  it('frees the slot of a notification that was not sent, and only that one', async () => {
    // prepare
    const [kept, freed] = [uniqueMobile(), uniqueMobile()];
    const [keptId, freedId] = [randomUUID(), randomUUID()];
    await claimRecipientSlots(
      db,
      [
        { id: keptId, recipient: kept },
        { id: freedId, recipient: freed },
      ],
      60,
    );

    // act
    await releaseRecipientSlots(db, [{ id: freedId, recipient: freed }]);

    // assess: another notification to the freed recipient gets a slot at once; to the kept one, not
    const later = [randomUUID(), randomUUID()];
    const slots = await claimRecipientSlots(
      db,
      [
        { id: later[0]!, recipient: kept },
        { id: later[1]!, recipient: freed },
      ],
      60,
    );
    expect([...slots]).toEqual([later[1]]);
  });
});

describe('caps through the worker', () => {
  async function capRig(rollout: Partial<Rollout>) {
    const rig = await startGatedRig(db, { rollout });
    onTestFinished(() => rig.stop());
    return rig;
  }

  it('sends up to the daily cap and defers the rest until the next UTC day', async () => {
    // prepare
    const r = await capRig({ dailyCap: 3 });
    const ids = await r.maker.notifyMany(Array.from({ length: 5 }, () => uniqueMobile()));

    // act
    const before = new Date();
    const passes = await r.passUntilSeen(ids);

    // assess
    const rows = [...(await readRows(db, ids)).values()];
    const sent = rows.filter((row) => row.status === 'sent');
    const deferred = rows.filter((row) => row.status === 'deferred');
    expect(sent).toHaveLength(3);
    expect(deferred).toHaveLength(2);
    for (const row of deferred) {
      expect(row.status_reason).toBe('daily_cap');
      expect(row.next_attempt_at).toEqual(startOfNextUtcDay(before));
    }
    expect(r.sandbox.stats().accepted).toBe(3);
    expect(r.sandbox.stats().sendsReceived).toBe(3);
    // Deferred rows leave the queue: the scheduler re-queues them when their day comes.
    expect(passes.flatMap((p) => p.batchItemFailures)).toEqual([]);
  });

  it('counts toward the daily cap only the notifications that were sent, not those held back for recipient spacing', async () => {
    // prepare: a cap of 3, and a second notification to a recipient who just got one
    const r = await capRig({ dailyCap: 3, recipientSpacingSeconds: 60 });
    const twice = uniqueMobile();
    const first = await r.maker.notify(twice);
    await r.passUntilSeen([first]);
    const again = await r.maker.notify(twice);
    const heldBack = await r.passUntilSeen([again]);
    expect(heldBack.flatMap((p) => [...p.outcomes.values()])).toEqual(['delayed']);
    const second = await r.maker.notify(uniqueMobile());
    await r.passUntilSeen([second]);
    expect(r.sandbox.stats().accepted, 'sends so far today').toBe(2);

    // act: the third send of the day, within a cap of 3
    const third = await r.maker.notify(uniqueMobile());
    await r.passUntilSeen([third]);

    // assess
    expect((await readRows(db, [third])).get(third)).toMatchObject({
      status: 'sent',
      status_reason: null,
    });
    expect(r.sandbox.stats().accepted).toBe(3);
    expect((await readSender(db, r.senderId)).day_count).toBe(3);
  });

  it('sends a backlog larger than the rate through two pollers without moving any held-back notification to the DLQ', async () => {
    // prepare: 60 notifications at 5/s, the queue redriving after MAX_RECEIVE_COUNT receives
    const RATE = 5;
    const COUNT = 60;
    const r = await capRig({ ratePerSecond: RATE });
    const ids = await r.maker.notifyMany(Array.from({ length: COUNT }, () => uniqueMobile()));
    const source = startSqsEventSource({
      sqs: r.sqs,
      queueUrl: r.queue.url,
      queueArn: r.queue.arn,
      handler: workerHandler(r.deps, [r.queue.url]),
      concurrency: 2,
      waitSeconds: 1,
    });
    onTestFinished(() => source.stop());

    // act: until every notification is sent or lies in the DLQ
    const startedAt = Date.now();
    const deadline = startedAt + 60_000;
    let sent = 0;
    let dead = 0;
    while (sent + dead < COUNT && Date.now() < deadline) {
      await sleep(250);
      sent = (await statusesOf(db, ids)).sent ?? 0;
      dead = await countQueueMessages(r.sqs, r.queue.dlqUrl);
    }
    const elapsedSeconds = (Date.now() - startedAt) / 1000;
    await source.stop();

    // assess
    const attempts = [...(await readRows(db, ids)).values()]
      .filter((row) => row.status !== 'sent')
      .map((row) => `${row.status}/${row.attempts}`);
    console.log(
      `backlog of ${COUNT} at ${RATE}/s through 2 pollers: ${sent} sent, ${dead} in the DLQ after ${elapsedSeconds.toFixed(1)} s, ${source.invocations()} batches; unsent rows (status/attempts): ${[...new Set(attempts)].join(', ') || 'none'}`,
    );
    expect(dead, 'notifications moved to the DLQ though nothing failed').toBe(0);
    expect(sent).toBe(COUNT);
    expect(r.sandbox.stats().sendsReceived).toBe(COUNT);
  });

  it('holds back past the per-minute cap on the queue until the next minute', async () => {
    // prepare
    await awayFromMinuteEnd();
    const r = await capRig({ perMinuteCap: 2 });
    const ids = await r.maker.notifyMany(Array.from({ length: 4 }, () => uniqueMobile()));

    // act
    const passes = await r.passUntilSeen(ids);

    // assess
    const rows = [...(await readRows(db, ids)).values()];
    expect(rows.filter((row) => row.status === 'sent')).toHaveLength(2);
    const held = rows.filter((row) => row.status === 'queued');
    expect(held).toHaveLength(2);
    const outcomes = passes.flatMap((p) => [...p.outcomes.values()]);
    expect(outcomes.filter((o) => o === 'delayed')).toHaveLength(2);
    // Back on the queue as new messages delayed to the next minute: waiting spends no receive.
    expect(passes.flatMap((p) => p.batchItemFailures)).toEqual([]);
    expect(await visibleAndDelayed(r.sqs, r.queue.url)).toEqual({ visible: 0, delayed: 2 });
    expect(r.sandbox.stats().sendsReceived).toBe(2);
  });
});

describe('recipient spacing', () => {
  it('gives a recipient spaced 60 s exactly one slot among eight concurrent claims', async () => {
    // prepare
    const recipient = uniqueMobile();
    const ids = Array.from({ length: WORKERS }, () => randomUUID());
    const pools = workerPools();
    await Promise.all(pools.map((p) => sql`select 1`.execute(p)));

    // act
    const claims = await Promise.all(
      pools.map((pool, i) => claimRecipientSlots(pool, [{ id: ids[i]!, recipient }], 60)),
    );

    // assess
    const winners = claims.flatMap((slots) => [...slots]);
    expect(winners).toHaveLength(1);
    const winner = winners[0]!;
    const pacing = await db
      .selectFrom('recipient_pacing')
      .selectAll()
      .where('recipient', '=', recipient)
      .executeTakeFirstOrThrow();
    expect(pacing.notification_id).toBe(winner);
    // A retry of the winner passes (its failed attempt reached nobody); any other still waits.
    expect([...(await claimRecipientSlots(db, [{ id: winner, recipient }], 60))]).toEqual([winner]);
    const loser = ids.find((id) => id !== winner)!;
    expect((await claimRecipientSlots(db, [{ id: loser, recipient }], 60)).size).toBe(0);
  });

  it('gives the next slot only once the spacing has passed', async () => {
    // prepare
    const recipient = uniqueMobile();
    const [first, second] = [randomUUID(), randomUUID()];
    const claimedFirstAt = Date.now();
    expect((await claimRecipientSlots(db, [{ id: first, recipient }], 1)).size).toBe(1);

    // act
    let claimedSecondAt = 0;
    let refusals = 0;
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      if ((await claimRecipientSlots(db, [{ id: second, recipient }], 1)).size === 1) {
        claimedSecondAt = Date.now();
        break;
      }
      refusals += 1;
      await sleep(20);
    }

    // assess
    expect(refusals).toBeGreaterThan(0);
    expect(claimedSecondAt).toBeGreaterThan(0);
    expect(claimedSecondAt - claimedFirstAt).toBeGreaterThanOrEqual(950);
  });

  it('lets only the first of two notifications for one recipient in a batch through', async () => {
    // prepare
    const recipient = uniqueMobile();
    const [first, second] = [randomUUID(), randomUUID()];
    const other = { id: randomUUID(), recipient: uniqueMobile() };

    // act
    const slots = await claimRecipientSlots(
      db,
      [{ id: first, recipient }, { id: second, recipient }, other],
      30,
    );

    // assess
    expect([...slots].sort()).toEqual([first, other.id].sort());
  });
});
