/**
 * Admin changes and their audit entries are one transaction: when the audit write fails the change
 * is rolled back, and when it succeeds both rows are there. The failure is real: a trigger on the
 * audit log refuses entries whose actor carries this file's marker, and nobody else's.
 */
import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiClient } from '#core/admin/api-keys.ts';
import { setClientLimits } from '#core/admin/client-limits.ts';
import { createKey, revokeKey, rotateKey } from '#core/admin/keys.ts';
import { closeCircuit, ensureSender, openCircuit } from '#core/delivery/panic-mode.ts';
import { getRollout, updateRollout } from '#core/delivery/rollout.ts';
import { testDatabase } from '../../support/database.ts';

const db = testDatabase(2);
const REFUSED = 'key:refuse-audit';

beforeAll(async () => {
  await sql`
    CREATE OR REPLACE FUNCTION test_refuse_marked_audit() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF NEW.actor = ${sql.lit(REFUSED)} THEN RAISE EXCEPTION 'audit write refused by the test'; END IF;
      RETURN NEW;
    END $$`.execute(db);
  await sql`
    CREATE OR REPLACE TRIGGER test_refuse_marked_audit BEFORE INSERT ON audit_log
    FOR EACH ROW EXECUTE FUNCTION test_refuse_marked_audit()`.execute(db);
});

afterAll(async () => {
  await sql`DROP TRIGGER IF EXISTS test_refuse_marked_audit ON audit_log`.execute(db);
  await sql`DROP FUNCTION IF EXISTS test_refuse_marked_audit()`.execute(db);
  await db.destroy();
});

const refused = { actor: REFUSED, requestId: null, sourceIp: null };
const allowed = () => ({ actor: 'key:audit-ok', requestId: randomUUID(), sourceIp: '127.0.0.1' });

async function keyRow(prefix: string) {
  return db
    .selectFrom('api_keys')
    .select(['revoked_at', 'client_id'])
    .where('prefix', '=', prefix)
    .executeTakeFirstOrThrow();
}

async function auditRows(requestId: string) {
  // In the order written: the identity id grows with each insert, and a caller's changes commit
  // one after the other (without an order PostgreSQL may return them either way under load).
  return db
    .selectFrom('audit_log')
    .selectAll()
    .where('request_id', '=', requestId)
    .orderBy('id')
    .execute();
}

async function circuit(senderId: string) {
  const row = await db
    .selectFrom('sender_state')
    .select('circuit')
    .where('sender_id', '=', senderId)
    .executeTakeFirstOrThrow();
  return row.circuit;
}

describe('admin changes with their audit entry', () => {
  it('creates no client and no key when the audit entry cannot be written', async () => {
    const name = `refused-${randomUUID()}`;
    await expect(createKey(db, refused, { name, scopes: ['admin'] })).rejects.toThrow(/refused/);
    const clients = await db
      .selectFrom('api_clients')
      .select('id')
      .where('name', '=', name)
      .execute();
    expect(clients).toEqual([]);
  });

  it('keeps the old key live and issues none when a rotation cannot be audited', async () => {
    const existing = await createApiClient(db, {
      name: `rotate-${randomUUID()}`,
      scopes: ['admin'],
    });
    await expect(
      rotateKey(db, refused, { prefix: existing.prefix, graceSeconds: 0, now: new Date() }),
    ).rejects.toThrow(/refused/);
    expect((await keyRow(existing.prefix)).revoked_at).toBeNull();
    const keys = await db
      .selectFrom('api_keys')
      .select('prefix')
      .where('client_id', '=', existing.clientId)
      .execute();
    expect(keys).toEqual([{ prefix: existing.prefix }]);
  });

  it('keeps a key live when its revocation cannot be audited', async () => {
    const existing = await createApiClient(db, {
      name: `revoke-${randomUUID()}`,
      scopes: ['admin'],
    });
    await expect(
      revokeKey(db, refused, { prefix: existing.prefix, now: new Date() }),
    ).rejects.toThrow(/refused/);
    expect((await keyRow(existing.prefix)).revoked_at).toBeNull();
  });

  it('leaves the circuit as it was when panic mode cannot be audited, either way', async () => {
    const senderId = `9${Date.now()}${Math.floor(Math.random() * 1000)}`.slice(0, 15);
    await ensureSender(db, senderId);
    const change = { senderId, actor: REFUSED, reason: 'drill' };
    await expect(openCircuit(db, change)).rejects.toThrow(/refused/);
    expect(await circuit(senderId)).toBe('closed');
    await openCircuit(db, { ...change, actor: 'key:audit-ok' });
    await expect(closeCircuit(db, change)).rejects.toThrow(/refused/);
    expect(await circuit(senderId)).toBe('open');
    await closeCircuit(db, { ...change, actor: 'key:audit-ok' });
  });

  it('leaves the rollout switches as they were when the change cannot be audited', async () => {
    const before = await getRollout(db);
    await expect(
      updateRollout(db, { dryRun: !before.dryRun }, REFUSED, randomUUID()),
    ).rejects.toThrow(/refused/);
    const after = await getRollout(db);
    expect(after.dryRun).toBe(before.dryRun);
    expect(after.updatedBy).not.toBe(REFUSED);
  });

  it("leaves a client's limits as they were when their change cannot be audited", async () => {
    const existing = await createApiClient(db, {
      name: `limits-${randomUUID()}`,
      scopes: ['notifications:write'],
      limits: { ratePerSecond: 5, dailyQuota: 100, maxPriority: 'bulk' },
    });
    await expect(
      setClientLimits(db, refused, {
        clientId: existing.clientId,
        change: { ratePerSecond: null, dailyQuota: 1_000_000 },
      }),
    ).rejects.toThrow(/refused/);
    const row = await db
      .selectFrom('api_clients')
      .select(['rate_per_second', 'daily_quota', 'max_priority'])
      .where('id', '=', existing.clientId)
      .executeTakeFirstOrThrow();
    expect(row).toEqual({ rate_per_second: 5, daily_quota: 100, max_priority: 'bulk' });
  });

  it('writes the change and its audit entry together when both succeed', async () => {
    const by = allowed();
    const created = await createKey(db, by, { name: `ok-${randomUUID()}`, scopes: ['admin'] });
    const revoked = await revokeKey(db, by, { prefix: created.prefix, now: new Date() });
    expect(revoked).toBe(true);
    expect((await keyRow(created.prefix)).revoked_at).not.toBeNull();
    const audit = await auditRows(by.requestId);
    expect(audit.map((a) => [a.action, a.actor, a.source_ip])).toEqual([
      ['key.create', 'key:audit-ok', '127.0.0.1'],
      ['key.revoke', 'key:audit-ok', '127.0.0.1'],
    ]);
    expect(audit[0]!.detail).toMatchObject({ prefix: created.prefix, clientId: created.clientId });
  });
});
