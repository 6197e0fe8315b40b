/**
 * The arithmetic of issue 16's limits, as properties: the RateLimit fields and Retry-After of a
 * take, the share of the sender's limits bulk leaves to high priority, what the gates decide for a
 * grant, and key expiry parsing.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_KEY_LIFETIME_DAYS, parseKeyExpiry } from '#core/admin/api-keys.ts';
import type { NotificationRow } from '#core/db/schema.ts';
import { decideForGrant } from '#core/delivery/database-gates.ts';
import { bulkLimits, HIGH_PRIORITY_SHARE } from '#core/delivery/priority-share.ts';
import {
  BURST_SECONDS,
  bucketCapacity,
  type ClientLimits,
  quotaAnswer,
  secondsToNextUtcDay,
} from '#core/notifications/client-quota.ts';
import { describeLimits, parseRate } from '../../bin/ops/keys.ts';

const instant = fc
  .integer({ min: Date.UTC(2026, 0, 1), max: Date.UTC(2030, 0, 1) })
  .map((ms) => new Date(ms));

/** Limits with at least one counted limit, and a take consistent with them. */
const limitedTake = fc
  .record({
    rate: fc.option(fc.double({ min: 0.01, max: 1_000, noNaN: true }), { nil: null }),
    quota: fc.option(fc.integer({ min: 0, max: 100_000 }), { nil: null }),
    wanted: fc.integer({ min: 1, max: 100 }),
    fill: fc.double({ min: 0, max: 1, noNaN: true }),
    usedShare: fc.double({ min: 0, max: 1, noNaN: true }),
  })
  .filter((r) => r.rate !== null || r.quota !== null)
  .map(({ rate, quota, wanted, fill, usedShare }) => {
    const available = rate === null ? null : bucketCapacity(rate) * fill;
    const usedBefore = quota === null ? 0 : Math.floor(quota * usedShare);
    const granted = Math.max(
      0,
      Math.min(
        wanted,
        available === null ? wanted : Math.floor(available),
        quota === null ? wanted : quota - usedBefore,
      ),
    );
    const limits: ClientLimits = { ratePerSecond: rate, dailyQuota: quota, maxPriority: null };
    return {
      limits,
      take: {
        wanted,
        granted,
        tokensLeft: available === null ? null : available - granted,
        dayUsed: usedBefore + granted,
      },
    };
  });

describe('quotaAnswer', () => {
  it('names a policy for each limit the key has, with remaining values that are never negative', () => {
    fc.assert(
      fc.property(limitedTake, instant, ({ limits, take }, now) => {
        const { headers } = quotaAnswer(limits, take, now);
        const policies = headers['ratelimit-policy']!.split(', ');
        const states = headers.ratelimit!.split(', ');
        const expected = [
          ...(limits.ratePerSecond === null ? [] : ['"rate"']),
          ...(limits.dailyQuota === null ? [] : ['"daily"']),
        ];
        expect(policies.map((p) => p.split(';')[0])).toEqual(expected);
        expect(states.map((p) => p.split(';')[0])).toEqual(expected);
        for (const state of states) {
          // The draft's item: a quoted name, then r and t as non-negative integers.
          expect(state).toMatch(/^"(rate|daily)";r=\d+;t=\d+$/);
        }
        for (const policy of policies) expect(policy).toMatch(/^"(rate|daily)";q=\d+;w=\d+$/);
      }),
    );
  });

  it('says Retry-After exactly when something was refused, at least a second and at most until the UTC day turns', () => {
    fc.assert(
      fc.property(limitedTake, instant, ({ limits, take }, now) => {
        const answer = quotaAnswer(limits, take, now);
        if (take.granted >= take.wanted) {
          expect(answer.refusedBy).toBeNull();
          expect(answer.headers['retry-after']).toBeUndefined();
          return;
        }
        const retry = Number(answer.headers['retry-after']);
        expect(retry).toBe(answer.retryAfterSeconds);
        expect(retry).toBeGreaterThanOrEqual(1);
        if (answer.refusedBy === 'daily') {
          expect(retry).toBe(secondsToNextUtcDay(now));
        } else {
          // A wait for tokens: never longer than refilling the whole bucket.
          expect(retry).toBeLessThanOrEqual(BURST_SECONDS + Math.ceil(1 / limits.ratePerSecond!));
        }
      }),
    );
  });

  it('blames the daily quota only when it is spent, or when it is the only limit', () => {
    fc.assert(
      fc.property(limitedTake, instant, ({ limits, take }, now) => {
        const answer = quotaAnswer(limits, take, now);
        if (answer.refusedBy !== 'daily') return;
        const spent = limits.dailyQuota !== null && take.dayUsed >= limits.dailyQuota;
        expect(spent || limits.ratePerSecond === null).toBe(true);
      }),
    );
  });

  it('waits until the tokens for the refused items (up to a bucket) are back', () => {
    const answer = quotaAnswer(
      { ratePerSecond: 2, dailyQuota: null, maxPriority: null },
      { wanted: 10, granted: 3, tokensLeft: 0.5, dayUsed: 3 },
      new Date('2026-11-29T10:00:00Z'),
    );
    // 7 tokens missing, 0.5 there: 6.5 / 2 per second, rounded up.
    expect(answer).toMatchObject({ refusedBy: 'rate', retryAfterSeconds: 4 });
  });
});

describe('bulkLimits', () => {
  const caps = fc.option(fc.integer({ min: 0, max: 1_000_000 }), { nil: null });

  it('leaves high priority its share of every cap and of the bucket, and never more than the share', () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0.01, max: 10_000, noNaN: true }),
        caps,
        caps,
        (ratePerSecond, perMinuteCap, dailyCap) => {
          const bulk = bulkLimits({ ratePerSecond, perMinuteCap, dailyCap });
          for (const [all, forBulk] of [
            [perMinuteCap, bulk.perMinuteCap],
            [dailyCap, bulk.dailyCap],
          ] as const) {
            if (all === null) {
              expect(forBulk).toBeNull();
            } else {
              expect(forBulk!).toBeLessThanOrEqual(all);
              expect(all - forBulk!).toBeLessThanOrEqual(all * HIGH_PRIORITY_SHARE);
              expect(forBulk!).toBeGreaterThanOrEqual(0);
            }
          }
          expect(bulk.reserveTokens).toBeCloseTo(ratePerSecond * HIGH_PRIORITY_SHARE);
          expect(bulk.ratePerSecond).toBe(ratePerSecond);
        },
      ),
    );
  });

  it('keeps 8 of a daily cap of 40 for high priority', () => {
    expect(bulkLimits({ ratePerSecond: 80, perMinuteCap: null, dailyCap: 40 }).dailyCap).toBe(32);
  });
});

describe('decideForGrant', () => {
  const row = (id: string) => ({ id }) as NotificationRow;
  const now = new Date('2026-11-29T10:00:30Z');

  it('sends the granted rows in order and defers the rest to the next UTC day when the cap is reached', () => {
    const rows = ['a', 'b', 'c'].map(row);
    const decisions = decideForGrant(
      rows,
      { circuitOpen: false, granted: 1, available: 50, minuteUsed: 0, dayUsed: 31 },
      { ratePerSecond: 80, perMinuteCap: null, dailyCap: 32, reserveTokens: 16 },
      now,
    );
    expect([...decisions.entries()]).toEqual([
      ['b', { kind: 'defer', reason: 'daily_cap', until: new Date('2026-11-30T00:00:00Z') }],
      ['c', { kind: 'defer', reason: 'daily_cap', until: new Date('2026-11-30T00:00:00Z') }],
      ['a', { kind: 'send' }],
    ]);
  });

  it('holds the rows back for the tokens the reserve keeps from them', () => {
    const decisions = decideForGrant(
      ['a', 'b'].map(row),
      { circuitOpen: false, granted: 0, available: 2, minuteUsed: 0, dayUsed: 0 },
      { ratePerSecond: 10, perMinuteCap: null, dailyCap: null, reserveTokens: 2 },
      now,
    );
    expect(decisions.get('a')).toEqual({ kind: 'delay', reason: 'rate_limit', seconds: 1 });
  });
});

describe('parseKeyExpiry', () => {
  const now = new Date('2026-11-29T10:00:00Z');

  it.each([
    ['2h', '2026-11-29T12:00:00.000Z'],
    ['90d', '2027-02-27T10:00:00.000Z'],
    ['30m', '2026-11-29T10:30:00.000Z'],
    ['2027-03-01', '2027-03-01T00:00:00.000Z'],
    ['2027-03-01T08:00:00+02:00', '2027-03-01T06:00:00.000Z'],
  ])('reads %s as %s', (raw, expected) => {
    expect(parseKeyExpiry(raw, now)).toEqual({ ok: true, expiresAt: new Date(expected) });
  });

  it('answers any duration within the maximum lifetime with a time that far ahead, and refuses any beyond it', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 3 * MAX_KEY_LIFETIME_DAYS }),
        fc.constantFrom('d', 'h'),
        (n, unit) => {
          const ms = n * (unit === 'd' ? 86_400_000 : 3_600_000);
          const parsed = parseKeyExpiry(`${n}${unit}`, now);
          if (ms <= MAX_KEY_LIFETIME_DAYS * 86_400_000) {
            expect(parsed).toEqual({ ok: true, expiresAt: new Date(now.getTime() + ms) });
          } else {
            expect(parsed.ok).toBe(false);
          }
        },
      ),
    );
  });

  it.each(['0d', '2026-11-28', 'tomorrow', '2027-03-01T08:00', '90', '2027-02-30'])(
    'refuses %s with a message',
    (raw) => {
      const parsed = parseKeyExpiry(raw, now);
      expect(parsed.ok).toBe(false);
    },
  );
});

describe('ops keys limits', () => {
  it.each([
    ['5/s', 5],
    ['0.5/s', 0.5],
    ['12', 12],
  ])('reads --rate %s', (raw, rate) => {
    expect(parseRate(raw)).toBe(rate);
  });

  it.each(['0', '-1/s', 'fast', '5/m'])('refuses --rate %s', (raw) => {
    expect(() => parseRate(raw)).toThrow(/--rate/);
  });

  it('describes limits the way keys list prints them', () => {
    expect(describeLimits({ ratePerSecond: 5, dailyQuota: 20_000, maxPriority: 'bulk' })).toBe(
      '5/s, 20000/day, bulk only',
    );
    expect(describeLimits({ ratePerSecond: null, dailyQuota: null, maxPriority: null })).toBe(
      'none',
    );
  });
});
