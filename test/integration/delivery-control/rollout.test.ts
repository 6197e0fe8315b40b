/**
 * Rollout switches on the real local parts: the kill switch, dry run and the pilot allow-list
 * through the worker and the database gates (with the rollout injected, since the settings row is
 * shared by every test file), and the settings row itself: read, changed with an audit entry,
 * seen through the workers' cache, and restored.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it, onTestFinished } from 'vitest';
import {
  cachedRollout,
  getRollout,
  inPilot,
  type Rollout,
  rolloutPatchSchema,
  updateRollout,
} from '#core/delivery/rollout.ts';
import { testDatabase } from '../../support/database.ts';
import {
  digits,
  readRows,
  readSender,
  startGatedRig,
  uniqueMobile,
  withSuiteLock,
} from '../../support/delivery-control.ts';

const db = testDatabase(6);
afterAll(() => db.destroy());

async function rig(rollout: Partial<Rollout>) {
  const started = await startGatedRig(db, { rollout });
  onTestFinished(() => started.stop());
  return started;
}

describe('rollout switches at the worker', () => {
  it('parks every notification as deferred (kill_switch) and sends nothing when delivery is off', async () => {
    // prepare
    const r = await rig({ deliveryEnabled: false });
    const ids = await r.maker.notifyMany([uniqueMobile(), uniqueMobile(), uniqueMobile()]);

    // Held from the pass to the last read: this suite's scheduler drain re-queues deferred rows.
    await withSuiteLock(db, async () => {
      // act
      const passes = await r.passUntilSeen(ids);

      // assess
      const rows = [...(await readRows(db, ids)).values()];
      expect(rows.map((row) => [row.status, row.status_reason, row.attempts])).toEqual(
        ids.map(() => ['deferred', 'kill_switch', 0]),
      );
      expect(passes.flatMap((p) => [...p.outcomes.values()])).toEqual(ids.map(() => 'deferred'));
      expect(passes.flatMap((p) => p.batchItemFailures)).toEqual([]);
    });
    expect(r.sandbox.stats().sendsReceived).toBe(0);
    // The switch comes before the limits: no token was spent on a notification that was not sent.
    expect((await readSender(db, r.senderId)).day_count).toBe(0);
  });

  it('skips every notification (dry_run) and sends nothing in a dry run', async () => {
    // prepare
    const r = await rig({ dryRun: true });
    const ids = await r.maker.notifyMany([uniqueMobile(), uniqueMobile(), uniqueMobile()]);

    // act
    const passes = await r.passUntilSeen(ids);

    // assess
    const rows = [...(await readRows(db, ids)).values()];
    expect(rows.map((row) => [row.status, row.status_reason, row.attempts, row.wamid])).toEqual(
      ids.map(() => ['skipped', 'dry_run', 0, null]),
    );
    expect(passes.flatMap((p) => [...p.outcomes.values()])).toEqual(ids.map(() => 'skipped'));
    expect(r.sandbox.stats().sendsReceived).toBe(0);
  });

  it('sends to numbers under a pilot prefix and skips the others (outside_pilot)', async () => {
    // prepare
    const r = await rig({ pilotPrefixes: ['+57320', '+57321'] });
    const pilot = [uniqueMobile('+57320'), uniqueMobile('+57321'), uniqueMobile('+57320')];
    const others = [uniqueMobile('+57316'), uniqueMobile('+57315')];
    const pilotIds = await r.maker.notifyMany(pilot);
    const otherIds = await r.maker.notifyMany(others);

    // act
    await r.passUntilSeen([...pilotIds, ...otherIds]);

    // assess
    const rows = await readRows(db, [...pilotIds, ...otherIds]);
    for (const id of pilotIds) expect(rows.get(id)).toMatchObject({ status: 'sent', attempts: 1 });
    for (const id of otherIds) {
      expect(rows.get(id)).toMatchObject({ status: 'skipped', status_reason: 'outside_pilot' });
    }
    const byRecipient = r.sandbox.stats().byRecipient;
    expect(Object.keys(byRecipient).sort()).toEqual(pilot.map(digits).sort());
    expect(r.sandbox.stats().accepted).toBe(3);
    expect((await readSender(db, r.senderId)).day_count).toBe(3);
  });

  it('in a dry run with a pilot, skips the pilot as dry_run and the others as outside_pilot', async () => {
    // prepare
    const r = await rig({ dryRun: true, pilotPrefixes: ['+57320'] });
    const [inside, outside] = await r.maker.notifyMany([
      uniqueMobile('+57320'),
      uniqueMobile('+57316'),
    ]);

    // act
    await r.passUntilSeen([inside!, outside!]);

    // assess
    const rows = await readRows(db, [inside!, outside!]);
    expect(rows.get(inside!)).toMatchObject({ status: 'skipped', status_reason: 'dry_run' });
    expect(rows.get(outside!)).toMatchObject({ status: 'skipped', status_reason: 'outside_pilot' });
    expect(r.sandbox.stats().sendsReceived).toBe(0);
  });

  it('reads an empty pilot list as everyone and matches prefixes from the start of the number', () => {
    expect(inPilot('+573161234567', [])).toBe(true);
    expect(inPilot('+573161234567', ['+57316'])).toBe(true);
    expect(inPilot('+573161234567', ['+57317', '+1'])).toBe(false);
    expect(inPilot('+573161234567', ['316'])).toBe(false);
  });
});

describe('the rollout settings row', () => {
  it('changes a switch with an audit entry of who changed what from what to what, seen by cached readers after their TTL', async () => {
    // prepare
    const before = await getRollout(db);
    let clock = 1_000_000;
    const cached = cachedRollout(db, 5_000, () => clock);
    expect((await cached()).drainPerSecond).toBe(before.drainPerSecond);
    const actor = `operator:test-${randomUUID().slice(0, 8)}`;
    const requestId = randomUUID();
    const changed = before.drainPerSecond === 1_000 ? 999 : before.drainPerSecond + 1;
    // Only the drain rate, and put back at once: other files share this row.
    onTestFinished(async () => {
      await updateRollout(db, { drainPerSecond: before.drainPerSecond }, 'test:restore');
    });

    // act
    const after = await updateRollout(db, { drainPerSecond: changed }, actor, requestId);

    // assess
    expect(after).toMatchObject({
      ...omitStamp(before),
      drainPerSecond: changed,
      updatedBy: actor,
    });
    expect((await getRollout(db)).drainPerSecond).toBe(changed);
    // Within the TTL a worker keeps what it read; after it, it reads the change.
    expect((await cached()).drainPerSecond).toBe(before.drainPerSecond);
    clock += 5_001;
    expect((await cached()).drainPerSecond).toBe(changed);
    const audit = await db
      .selectFrom('audit_log')
      .selectAll()
      .where('request_id', '=', requestId)
      .execute();
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({
      actor,
      action: 'rollout.update',
      outcome: 'ok',
      detail: { changes: { drainPerSecond: { from: before.drainPerSecond, to: changed } } },
    });
  });

  it('refuses a patch with an unknown switch or a value out of range', () => {
    expect(rolloutPatchSchema.safeParse({ drainPerSecond: 0 }).success).toBe(false);
    expect(rolloutPatchSchema.safeParse({ ratePerSecond: 1_001 }).success).toBe(false);
    expect(rolloutPatchSchema.safeParse({ pilotPrefixes: ['57'] }).success).toBe(false);
    expect(rolloutPatchSchema.safeParse({ killSwitch: true }).success).toBe(false);
    expect(rolloutPatchSchema.safeParse({ dailyCap: null, dryRun: true }).success).toBe(true);
  });
});

function omitStamp(rollout: Rollout): Omit<Rollout, 'updatedAt' | 'updatedBy'> {
  const { updatedAt: _at, updatedBy: _by, ...rest } = rollout;
  return rest;
}
