/**
 * The number's health and the switches that follow it, on the real local parts: the sandbox changes
 * its number and posts Meta's webhooks over HTTP to the webhook app, which records them in
 * PostgreSQL; the limiter, panic mode, the admin status and the scheduler act on what was recorded.
 */
import { afterAll, describe, expect, it, onTestFinished } from 'vitest';
import { readAdminStatus } from '#core/admin/admin-status.ts';
import { switchPanicMode } from '#core/admin/panic-switch.ts';
import { databaseGates } from '#core/delivery/database-gates.ts';
import { effectiveLimits, readNumberHealth } from '#core/delivery/number-health.ts';
import { closeCircuit, MAX_CIRCUIT_OPENS_PER_NOTIFICATION } from '#core/delivery/panic-mode.ts';
import { getRollout, updateRollout } from '#core/delivery/rollout.ts';
import type { SchedulerDeps } from '#core/delivery/scheduler.ts';
import { enqueueNotifications } from '#core/notifications/enqueue.ts';
import { Metric } from '#core/platform/metric-names.ts';
import { numberHealthLines } from '../../../bin/ops/status.ts';
import { createWebhookApp } from '../../../lambdas/webhook/app.ts';
import { testDatabase } from '../../support/database.ts';
import {
  SANDBOX_APP_SECRET,
  silentLogger,
  startWebhookServer,
  WEBHOOK_VERIFY_TOKEN,
} from '../../support/delivery.ts';
import {
  holdingRollout,
  injectedRollout,
  readRows,
  readSender,
  recordingMetrics,
  runSchedulerWhenFree,
  schedulerOptions,
  startGatedRig,
  testRollout,
  testSchedulerDeps,
  uniqueMobile,
  withSuiteLock,
} from '../../support/delivery-control.ts';
import { notificationId, storedRow } from '../../unit/delivery/pipeline-fixtures.ts';

const db = testDatabase(6);
afterAll(() => db.destroy());

type RigOptions = Parameters<typeof startGatedRig>[1];

/**
 * A gated rig whose sandbox posts its webhooks to a webhook app that knows the rig's sender as
 * ours (Meta's number events name the WABA; the app applies them to the configured sender).
 */
async function rig(options: RigOptions = {}) {
  const r = await startGatedRig(db, options);
  const recorded = recordingMetrics();
  const app = createWebhookApp({
    db,
    appSecret: SANDBOX_APP_SECRET,
    verifyToken: WEBHOOK_VERIFY_TOKEN,
    logger: silentLogger(),
    metrics: recorded.metrics,
    phoneNumberIds: [r.senderId],
  });
  const server = await startWebhookServer(app);
  r.sandbox.setWebhookUrl(server.url);
  onTestFinished(async () => {
    await server.stop();
    await db.deleteFrom('number_health').where('sender_id', '=', r.senderId).execute();
    await r.stop();
  });
  /** Changes the sandbox's number as Meta would; the sandbox posts the matching webhooks. */
  async function changeNumber(changes: Record<string, unknown>) {
    const answer = await fetch(`${r.sandbox.url}/_sandbox/number`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(changes),
    });
    const body = (await answer.json()) as { events: string[]; delivered: number };
    expect(answer.status, JSON.stringify(body)).toBe(200);
    return body;
  }
  const scheduler = (extra: Partial<SchedulerDeps> = {}) =>
    testSchedulerDeps({
      db,
      queue: { sqs: r.sqs, queueUrls: { high: r.queue.url, bulk: r.queue.url } },
      whatsapp: r.graph,
      senderId: r.senderId,
      ...extra,
    });
  return { ...r, changeNumber, warnings: recorded.values, scheduler };
}

/**
 * Runs `fn` while the table's rollout sets no daily cap, holding a share lock on it so no other
 * file's `rollout set --daily` (they set one for a moment and restore it) commits meanwhile.
 */
async function withoutHandCap<T>(fn: () => Promise<T>): Promise<T> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const outcome = await holdingRollout(db, async (rollout) =>
      rollout.dailyCap === null
        ? { ran: true as const, value: await fn() }
        : { ran: false as const },
    );
    if (outcome.ran) return outcome.value;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error('another test kept a daily cap on the rollout row');
}

/** Rows as the worker loads them, for the gates alone (no send). */
function candidates(count: number) {
  return Array.from({ length: count }, () =>
    storedRow(notificationId(), { recipient: uniqueMobile() }),
  );
}

/** Gates for the rig's sender that read the number's health uncached, so a change shows at once. */
function gatesFor(
  senderId: string,
  rollout = testRollout({ rateByHand: false, ratePerSecond: 80 }),
) {
  return databaseGates({
    db,
    senderId,
    rollout: injectedRollout(rollout),
    failureThreshold: 5,
    numberHealth: () => readNumberHealth(db, senderId),
  });
}

/** Empties the day's count and fills the bucket well past any rate, so only the limits decide. */
async function freshBucket(senderId: string) {
  await db
    .updateTable('sender_state')
    .set({ tokens: 5_000, day_count: 0, minute_count: 0 })
    .where('sender_id', '=', senderId)
    .execute();
}

async function admitCount(gates: ReturnType<typeof gatesFor>, count: number) {
  const decisions = await gates.admit(candidates(count), new Date());
  const kinds = [...decisions.values()].map((d) =>
    d.kind === 'defer' ? `defer:${d.reason}` : d.kind,
  );
  return {
    sent: kinds.filter((k) => k === 'send').length,
    dailyCap: kinds.filter((k) => k === 'defer:daily_cap').length,
  };
}

describe('number health from Meta webhooks', () => {
  it('shows a throughput upgrade and a tier change in the admin status and ops status, and the limiter follows them', async () => {
    // prepare
    const r = await rig();
    const gates = gatesFor(r.senderId);
    await freshBucket(r.senderId);
    expect(await admitCount(gates, 100)).toEqual({ sent: 80, dailyCap: 0 });

    // act
    const changed = await r.changeNumber({ throughputLevel: 'HIGH', messagingLimit: 'TIER_2K' });

    // assess
    expect(changed.events).toEqual(['THROUGHPUT_UPGRADE', 'UPGRADE']);
    const status = await readAdminStatus({
      db,
      sqs: r.sqs,
      queueUrls: { high: r.queue.url, bulk: r.queue.url },
      deadLetterQueueUrls: {},
      senderId: r.senderId,
      now: () => new Date(),
    });
    const mine = status.numberHealth.find((h) => h.senderId === r.senderId)!;
    expect(mine).toMatchObject({
      throughputLevel: 'HIGH',
      messagingLimit: 'TIER_2K',
      source: 'webhook:phone_number_quality_update',
    });
    expect(mine.limits).toEqual(effectiveLimits(status.rollout, mine));
    const opsLine = numberHealthLines({ ...status, numberHealth: [mine] }).join('\n');
    expect(opsLine).toContain('TIER_2K');
    expect(opsLine).toContain('HIGH');
    await freshBucket(r.senderId);
    expect(await admitCount(gates, 300)).toEqual({ sent: 300, dailyCap: 0 });
  });

  it("lowers the daily cap to the tier's limit on a downgrade and raises the number-health alarm's metric", async () => {
    // prepare
    const r = await rig();
    const gates = gatesFor(r.senderId);
    await r.changeNumber({ messagingLimit: 'TIER_2K' });
    expect(r.warnings.filter((m) => m.name === Metric.NumberHealthWarnings)).toEqual([]);

    // act
    const changed = await r.changeNumber({ messagingLimit: 'TIER_50', qualityRating: 'RED' });

    // assess
    expect(changed.events).toEqual(['DOWNGRADE', 'FLAGGED']);
    expect(await readNumberHealth(db, r.senderId)).toMatchObject({
      messagingLimit: 'TIER_50',
      qualityRating: 'FLAGGED',
    });
    expect(r.warnings.filter((m) => m.name === Metric.NumberHealthWarnings)).toHaveLength(2);
    await freshBucket(r.senderId);
    expect(await admitCount(gates, 60)).toEqual({ sent: 50, dailyCap: 10 });
  });

  it('keeps a rate and a daily cap set by hand when Meta upgrades the number', async () => {
    // prepare
    const r = await rig();
    const byHand = testRollout({ rateByHand: true, ratePerSecond: 20, dailyCap: 30 });
    const gates = gatesFor(r.senderId, byHand);

    // act
    await r.changeNumber({ throughputLevel: 'HIGH', messagingLimit: 'TIER_UNLIMITED' });

    // assess
    const health = await readNumberHealth(db, r.senderId);
    expect(health).toMatchObject({ throughputLevel: 'HIGH', messagingLimit: 'TIER_UNLIMITED' });
    expect(effectiveLimits(byHand, health)).toMatchObject({
      ratePerSecond: 20,
      rateSource: 'operator',
      dailyCap: 30,
      dailyCapSource: 'operator',
    });
    await freshBucket(r.senderId);
    expect(await admitCount(gates, 25)).toEqual({ sent: 20, dailyCap: 0 });
  });

  it('opens panic mode with the restriction as its reason, and the probes do not close it', async () => {
    // prepare
    const r = await rig();

    // act
    const changed = await r.changeNumber({ accountStatus: 'RESTRICTED' });

    // assess
    expect(changed.events).toEqual(['ACCOUNT_RESTRICTION']);
    expect(await readSender(db, r.senderId)).toMatchObject({
      circuit: 'open',
      held: true,
      opened_by: 'system:webhook',
      open_reason: 'Meta restricted the account (RESTRICTED_BIZ_INITIATED_MESSAGING)',
    });
    expect(await readNumberHealth(db, r.senderId)).toMatchObject({ accountState: 'RESTRICTED' });
    // The number node still answers while the account may not send: the probe cannot close it.
    await r.changeNumber({ accountStatus: 'CONNECTED' });
    const report = await runSchedulerWhenFree(r.scheduler(), schedulerOptions());
    expect(report.probes).toEqual([{ ok: true }, { ok: true }, { ok: true }]);
    expect(report.panicHeld).toBe(true);
    expect((await readSender(db, r.senderId)).circuit).toBe('open');
  });

  it('opens panic mode when Meta bans the account', async () => {
    // prepare
    const r = await rig();

    // act
    const changed = await r.changeNumber({ accountStatus: 'BANNED' });

    // assess
    expect(changed.events).toEqual(['DISABLED_UPDATE']);
    expect(await readSender(db, r.senderId)).toMatchObject({
      circuit: 'open',
      open_reason: 'Meta disabled (banned) the account',
    });
  });
});

describe('the rate set by hand', () => {
  it("is the operator's until they hand it back with null, and both changes are audited", async () => {
    // prepare
    const before = await getRollout(db);
    onTestFinished(async () => {
      await updateRollout(
        db,
        { ratePerSecond: before.rateByHand ? before.ratePerSecond : null },
        'test:number-health',
      );
    });

    // act
    const byHand = await updateRollout(db, { ratePerSecond: 37 }, 'test:number-health', 'req-rate');
    const handedBack = await updateRollout(
      db,
      { ratePerSecond: null },
      'test:number-health',
      'req-meta',
    );

    // assess
    expect(byHand).toMatchObject({ ratePerSecond: 37, rateByHand: true });
    expect(handedBack).toMatchObject({ ratePerSecond: 80, rateByHand: false });
    const audit = await db
      .selectFrom('audit_log')
      .select('detail')
      .where('request_id', '=', 'req-meta')
      .executeTakeFirstOrThrow();
    expect(audit.detail).toMatchObject({
      changes: { ratePerSecond: { from: 37, to: 80 }, rateByHand: { from: true, to: false } },
    });
  });
});

describe('number health from the Graph API', () => {
  it("records what the scheduler's read sees, a throughput downgrade included, which lowers the rate", async () => {
    // prepare
    const r = await rig();
    await r.changeNumber({ throughputLevel: 'HIGH' });
    expect(
      effectiveLimits(testRollout({ rateByHand: false }), await readNumberHealth(db, r.senderId))
        .ratePerSecond,
    ).toBe(1000);
    // Meta sends no webhook for a downgrade: only the Graph API shows it.
    const downgrade = await r.changeNumber({
      throughputLevel: 'STANDARD',
      messagingLimit: 'TIER_10K',
    });
    expect(downgrade.events).toEqual(['UPGRADE']);
    r.sandbox.setAccount({ qualityRating: 'YELLOW' });

    // act
    const report = await runSchedulerWhenFree(r.scheduler({ healthCheck: {} }), schedulerOptions());

    // assess
    expect(report.healthCheck).toBe('read');
    const health = await readNumberHealth(db, r.senderId);
    expect(health).toMatchObject({
      throughputLevel: 'STANDARD',
      messagingLimit: 'TIER_10K',
      qualityRating: 'YELLOW',
      source: 'graph',
    });
    expect(health?.checkedAt).not.toBeNull();
    expect(effectiveLimits(testRollout({ rateByHand: false }), health)).toMatchObject({
      ratePerSecond: 80,
      rateSource: 'meta',
      dailyCap: 10_000,
    });
  });
});

describe('panic mode by hand', () => {
  it('stays open across several probe cycles of good answers until a person closes it', async () => {
    // prepare
    const r = await rig();
    const opened = await switchPanicMode(db, {
      enabled: true,
      reason: 'campaign tonight, INC-42',
      senderId: r.senderId,
      configuredSenderId: undefined,
      actor: 'key:test',
      requestId: 'req-hold',
    });
    expect(opened).toMatchObject({ kind: 'switched', changed: true, sender: { held: true } });

    // act
    const reports = [];
    for (let cycle = 0; cycle < 4; cycle++) {
      reports.push(await runSchedulerWhenFree(r.scheduler(), schedulerOptions()));
    }

    // assess
    for (const report of reports) {
      expect(report.probes).toEqual([{ ok: true }, { ok: true }, { ok: true }]);
      expect(report).toMatchObject({ circuitClosed: false, panicActive: true, panicHeld: true });
    }
    const held = await readSender(db, r.senderId);
    expect(held).toMatchObject({ circuit: 'open', held: true, good_probes: 12 });
    expect(held.last_probe_at).not.toBeNull();
    const closed = await switchPanicMode(db, {
      enabled: false,
      reason: 'campaign over',
      senderId: r.senderId,
      configuredSenderId: undefined,
      actor: 'key:test',
      requestId: 'req-close',
    });
    expect(closed).toMatchObject({ changed: true, sender: { active: false, held: false } });
  });

  it('holds a circuit the worker opened once an operator opens it by hand too', async () => {
    // prepare
    const r = await rig();
    const first = await r.maker.notify('+573000000008');
    await r.passUntilSeen([first]);
    expect(await readSender(db, r.senderId)).toMatchObject({ circuit: 'open', held: false });

    // act
    const taken = await switchPanicMode(db, {
      enabled: true,
      reason: 'token rotation under way',
      senderId: r.senderId,
      configuredSenderId: undefined,
      actor: 'key:test',
      requestId: 'req-take',
    });

    // assess
    expect(taken).toMatchObject({ changed: true, sender: { active: true, held: true } });
    const report = await runSchedulerWhenFree(r.scheduler(), schedulerOptions());
    expect(report.panicHeld).toBe(true);
    expect((await readSender(db, r.senderId)).circuit).toBe('open');
  });
});

describe('a notification that keeps opening the circuit', () => {
  it(`fails with its class after parking itself ${MAX_CIRCUIT_OPENS_PER_NOTIFICATION} times, and leaves the circuit closed`, async () => {
    // prepare: the always-auth test number opens the circuit each time it is tried
    const r = await rig();
    const id = await r.maker.notify('+573000000008');
    const retry = async () => {
      await closeCircuit(db, { senderId: r.senderId, actor: 'key:test', reason: 'token replaced' });
      await db
        .updateTable('notifications')
        .set({ status: 'queued', next_attempt_at: null })
        .where('id', '=', id)
        .execute();
      await enqueueNotifications(
        { sqs: r.sqs, queueUrls: { high: r.queue.url, bulk: r.queue.url } },
        [{ id, priority: 'high', requestId: 'req-again', delaySeconds: 0 }],
      );
      await r.passUntilSeen([id]);
    };
    await r.passUntilSeen([id]);
    for (let i = 1; i < MAX_CIRCUIT_OPENS_PER_NOTIFICATION; i++) await retry();
    expect((await readRows(db, [id])).get(id)).toMatchObject({
      status: 'deferred',
      status_reason: 'circuit_open',
      circuit_opens: MAX_CIRCUIT_OPENS_PER_NOTIFICATION,
    });
    expect((await readSender(db, r.senderId)).circuit).toBe('open');

    // act
    await retry();

    // assess
    expect((await readRows(db, [id])).get(id)).toMatchObject({
      status: 'failed',
      error_class: 'auth',
      error_code: 190,
      circuit_opens: MAX_CIRCUIT_OPENS_PER_NOTIFICATION,
    });
    expect((await readSender(db, r.senderId)).circuit).toBe('closed');
  });
});

describe('deferrals follow the switches', () => {
  it('releases rows deferred for the daily cap as soon as a higher tier leaves room, before the next UTC day', async () => {
    // prepare: the rig's own cap of 1 defers the second notification until tomorrow
    const r = await rig({ rollout: { dailyCap: 1 } });
    const [sent, held] = await r.maker.notifyMany([uniqueMobile(), uniqueMobile()]);
    await r.passUntilSeen([sent!, held!]);
    expect((await readRows(db, [held!])).get(held!)).toMatchObject({
      status: 'deferred',
      status_reason: 'daily_cap',
    });
    // The table's rollout sets no cap, so the number's tier is the cap; 50 already sent today.
    await r.changeNumber({ messagingLimit: 'TIER_50' });
    await db
      .updateTable('sender_state')
      .set({ day_count: 50 })
      .where('sender_id', '=', r.senderId)
      .execute();
    const options = schedulerOptions({ runIntervalSeconds: 60 });
    await withoutHandCap(() =>
      withSuiteLock(db, async () => {
        const full = await runSchedulerWhenFree(r.scheduler(), options);
        expect(full.releasedFromDailyCap).toBe(0);
        expect((await readRows(db, [held!])).get(held!)?.status).toBe('deferred');

        // act
        await r.changeNumber({ messagingLimit: 'TIER_250' });
        const report = await runSchedulerWhenFree(r.scheduler(), options);

        // assess
        expect(report.releasedFromDailyCap).toBeGreaterThanOrEqual(1);
      }),
    );
    expect((await readRows(db, [held!])).get(held!)).toMatchObject({ status: 'queued' });
  });

  it('ends notifications skipped in dry run and never sends them once dry run is off', async () => {
    // prepare
    let rollout = testRollout({ dryRun: true });
    const r = await rig({ rollout: async () => rollout });
    const id = await r.maker.notify(uniqueMobile());

    // act
    await r.passUntilSeen([id]);
    rollout = testRollout({ dryRun: false });
    await withSuiteLock(db, () =>
      runSchedulerWhenFree(r.scheduler(), schedulerOptions({ runIntervalSeconds: 60 })),
    );

    // assess
    expect((await readRows(db, [id])).get(id)).toMatchObject({
      status: 'skipped',
      status_reason: 'dry_run',
    });
    expect(r.sandbox.stats().sendsReceived).toBe(0);
  });
});
