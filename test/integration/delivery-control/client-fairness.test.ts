/**
 * Two API clients against each other through the API and the worker behind the database gates
 * (issue 16, finding 1): one client's bulk batch must not spend the sender's daily cap that
 * another client's high-priority notification needs. The finding, as seen: with a daily cap of
 * 40, client A's batch of 100 was accepted whole and client B's next high notification was
 * deferred to the next UTC day. Both priorities share one queue here, the worst case: B's message
 * arrives behind A's whole backlog.
 */
import { afterAll, describe, expect, it, onTestFinished } from 'vitest';
import { createApiClient } from '#core/admin/api-keys.ts';
import { bulkLimits } from '#core/delivery/priority-share.ts';
import { startOfNextUtcDay } from '#core/delivery/rate-limits.ts';
import { uuidv7 } from '#core/platform/ids.ts';
import { apiEvent, testApiApp } from '../../support/api.ts';
import { testDatabase } from '../../support/database.ts';
import { readRows, startGatedRig, uniqueMobile } from '../../support/delivery-control.ts';

const db = testDatabase(6);
afterAll(() => db.destroy());

const DAILY_CAP = 40;

describe('two clients and one sender', () => {
  it("sends client B's high notification at once although client A's bulk batch of 100 came first and the daily cap is 40", async () => {
    // prepare: the finding's numbers; both clients have quotas of their own, A's large enough to
    // take the whole batch (the case the API's quota cannot help with)
    const rig = await startGatedRig(db, { rollout: { dailyCap: DAILY_CAP } });
    onTestFinished(() => rig.stop());
    const api = testApiApp(db, {
      sqs: rig.sqs,
      queue: { sqs: rig.sqs, queueUrls: { high: rig.queue.url, bulk: rig.queue.url } },
    });
    const client = (name: string, dailyQuota: number) =>
      createApiClient(db, {
        name: `${name}-${uuidv7()}`,
        scopes: ['notifications:write', 'notifications:read'],
        limits: { ratePerSecond: null, dailyQuota, maxPriority: null },
      });
    const a = await client('client-a', 1_000);
    const b = await client('client-b', 10);
    const batch = await api(
      apiEvent({
        method: 'POST',
        path: '/v1/notifications/batch',
        headers: { 'X-API-Key': a.key },
        body: {
          notifications: Array.from({ length: 100 }, () => ({
            to: uniqueMobile(),
            priority: 'bulk',
            template: { name: 'hello_world', language: 'en_US' },
          })),
        },
      }),
    );
    expect(batch.statusCode).toBe(202);
    const aIds: string[] = JSON.parse(batch.body).results.map(
      (r: { notification: { id: string } }) => r.notification.id,
    );
    const single = await api(
      apiEvent({
        method: 'POST',
        path: '/v1/notifications',
        headers: { 'X-API-Key': b.key },
        body: {
          to: uniqueMobile(),
          priority: 'high',
          template: { name: 'hello_world', language: 'en_US' },
        },
      }),
    );
    expect(single.statusCode).toBe(202);
    const bId: string = JSON.parse(single.body).id;

    // act: the worker drains the queue, A's backlog first
    const before = new Date();
    await rig.passUntilSeen([...aIds, bId]);

    // assess
    const rows = await readRows(db, [...aIds, bId]);
    expect(rows.get(bId)).toMatchObject({ status: 'sent' });
    const aRows = aIds.map((id) => rows.get(id)!);
    const bulkShare = bulkLimits({ ratePerSecond: 1, perMinuteCap: null, dailyCap: DAILY_CAP })
      .dailyCap!;
    expect(bulkShare).toBeLessThan(DAILY_CAP);
    expect(aRows.filter((r) => r.status === 'sent')).toHaveLength(bulkShare);
    const deferred = aRows.filter((r) => r.status === 'deferred');
    expect(deferred).toHaveLength(100 - bulkShare);
    for (const row of deferred) {
      expect(row.status_reason).toBe('daily_cap');
      expect(row.next_attempt_at).toEqual(startOfNextUtcDay(before));
    }
    expect(rig.sandbox.stats().accepted).toBe(bulkShare + 1);
  });

  it('lets high priority use the whole daily cap, the bulk share included', async () => {
    // prepare: a cap of 5, of which bulk may use 4; six high notifications
    const rig = await startGatedRig(db, { rollout: { dailyCap: 5 } });
    onTestFinished(() => rig.stop());
    const ids = await rig.maker.notifyMany(
      Array.from({ length: 6 }, () => uniqueMobile()),
      { priority: 'high' },
    );

    // act
    await rig.passUntilSeen(ids);

    // assess
    const statuses = [...(await readRows(db, ids)).values()].map((r) => r.status).sort();
    expect(statuses).toEqual(['deferred', 'sent', 'sent', 'sent', 'sent', 'sent']);
  });
});
