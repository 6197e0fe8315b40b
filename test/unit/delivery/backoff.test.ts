/** Full-jitter backoff (DESIGN §4) as properties over attempts, policies and random draws. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_BACKOFF,
  MAX_VISIBILITY_SECONDS,
  nextBackoffDelay,
} from '#core/delivery/backoff.ts';

const attempt = fc.integer({ min: 0, max: 200 });
const policy = fc.record({
  baseSeconds: fc.integer({ min: 1, max: 3_600 }),
  capSeconds: fc.integer({ min: 0, max: 1_000_000 }),
});
/** What Math.random can return: [0, 1). */
const draw = fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true });

/** The window the design promises: [0, min(cap, base · 2^attempt)], and never over SQS's 12 h. */
const window = (a: number, p: { baseSeconds: number; capSeconds: number }) =>
  Math.min(p.capSeconds, p.baseSeconds * 2 ** a, MAX_VISIBILITY_SECONDS);

describe('nextBackoffDelay', () => {
  it('is a whole number of seconds within [0, min(cap, base · 2^attempt)] and at most 12 h', () => {
    fc.assert(
      fc.property(attempt, policy, draw, (a, p, r) => {
        // act
        const delay = nextBackoffDelay(a, p, () => r);

        // assess
        expect(Number.isInteger(delay)).toBe(true);
        expect(delay).toBeGreaterThanOrEqual(0);
        expect(delay).toBeLessThanOrEqual(window(a, p));
        expect(delay).toBeLessThanOrEqual(12 * 60 * 60);
      }),
    );
  });

  it('never exceeds 12 h, whatever the cap', () => {
    fc.assert(
      fc.property(
        attempt,
        fc.integer({ min: 1, max: 1_000_000 }),
        fc.integer({ min: MAX_VISIBILITY_SECONDS, max: 2 ** 31 }),
        draw,
        (a, baseSeconds, capSeconds, r) => {
          const delay = nextBackoffDelay(a, { baseSeconds, capSeconds }, () => r);
          expect(delay).toBeLessThanOrEqual(43_200);
        },
      ),
    );
  });

  it('is zero when the draw is zero', () => {
    fc.assert(
      fc.property(attempt, policy, (a, p) => {
        expect(nextBackoffDelay(a, p, () => 0)).toBe(0);
      }),
    );
  });

  it('spreads over the whole window: a draw near 1 lands within a second of its top', () => {
    fc.assert(
      fc.property(attempt, policy, (a, p) => {
        // prepare
        const top = window(a, p);

        // act
        const delay = nextBackoffDelay(a, p, () => 1 - Number.EPSILON);

        // assess
        expect(delay).toBeGreaterThanOrEqual(Math.max(0, top - 1));
      }),
    );
  });

  it('grows with the draw, and its ceiling grows with the attempt', () => {
    fc.assert(
      fc.property(attempt, attempt, policy, draw, draw, (a1, a2, p, r1, r2) => {
        // prepare
        const [lowA, highA] = a1 <= a2 ? [a1, a2] : [a2, a1];
        const [lowR, highR] = r1 <= r2 ? [r1, r2] : [r2, r1];

        // assess
        expect(nextBackoffDelay(lowA, p, () => lowR)).toBeLessThanOrEqual(
          nextBackoffDelay(lowA, p, () => highR),
        );
        expect(nextBackoffDelay(lowA, p, () => highR)).toBeLessThanOrEqual(
          nextBackoffDelay(highA, p, () => highR),
        );
      }),
    );
  });

  it('doubles the window per attempt under the default policy until the 5 min cap', () => {
    // act
    const tops = [1, 2, 3, 4, 5, 6, 10].map((a) =>
      nextBackoffDelay(a, DEFAULT_BACKOFF, () => 1 - Number.EPSILON),
    );

    // assess: base 5 s → 10, 20, 40, 80, 160, then capped at 300
    expect(tops).toEqual([9, 19, 39, 79, 159, 299, 299]);
  });
});
