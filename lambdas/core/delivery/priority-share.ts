/**
 * The share of the sender's limits kept for high priority (issue 16): bulk notifications may use
 * the sender's rate, per-minute cap and daily cap only up to what leaves this share free, so a
 * bulk backlog — one client's batch of thousands — can never spend what another client's
 * one-time password needs. High priority may use everything, the share included.
 */
import type { BucketLimits } from '#core/delivery/rate-limits.ts';

/** A fifth of each limit: enough for the high traffic a bulk day leaves room for, small enough not to idle bulk. */
export const HIGH_PRIORITY_SHARE = 0.2;

/**
 * Pure: the limits a bulk take gets. The caps lose their high share (rounded down, so a cap too
 * small to split is not taken from bulk altogether) and the bucket must keep the high share of a
 * second's tokens.
 */
export function bulkLimits(limits: BucketLimits, share = HIGH_PRIORITY_SHARE): BucketLimits {
  const keep = (cap: number | null) => (cap === null ? null : cap - Math.floor(cap * share));
  return {
    ratePerSecond: limits.ratePerSecond,
    perMinuteCap: keep(limits.perMinuteCap),
    dailyCap: keep(limits.dailyCap),
    reserveTokens: limits.ratePerSecond * share,
  };
}
