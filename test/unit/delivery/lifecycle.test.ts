/** The lifecycle's forward-only rule for webhook statuses (DESIGN §2), as properties over sequences. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DELIVERY_PROGRESS,
  type DeliveryProgress,
  isForwardMove,
  NOTIFICATION_STATUSES,
  type NotificationStatus,
  TERMINAL_STATUSES,
} from '#core/model/lifecycle.ts';

type WebhookStatus = DeliveryProgress | 'failed';

const RANK: Record<DeliveryProgress, number> = { sent: 0, delivered: 1, read: 2 };
const progress = fc.constantFrom(...DELIVERY_PROGRESS);
const webhookStatus = fc.constantFrom<WebhookStatus>(...DELIVERY_PROGRESS, 'failed');
/** Where a row can be when Meta's first status for it is applied. */
const start = fc.constantFrom<NotificationStatus>('sending', 'queued', 'deferred', 'sent');

/** Applies statuses as the guarded UPDATE does: a status lands only when it is a forward move. */
function applyAll(from: NotificationStatus, statuses: readonly WebhookStatus[]) {
  let current = from;
  for (const next of statuses) if (isForwardMove(current, next)) current = next;
  return current;
}

describe('isForwardMove', () => {
  it('ends any order of sent, delivered and read on the highest of them', () => {
    fc.assert(
      fc.property(start, fc.array(progress, { minLength: 1, maxLength: 20 }), (from, statuses) => {
        // prepare
        const highest = statuses.reduce((a, b) => (RANK[b] > RANK[a] ? b : a));

        // act
        const final = applyAll(from, statuses);

        // assess
        expect(final).toBe(highest);
      }),
    );
  });

  it('lets failed win only when it comes before any delivered or read', () => {
    fc.assert(
      fc.property(
        start,
        fc.array(webhookStatus, { minLength: 1, maxLength: 20 }),
        (from, statuses) => {
          // prepare: the expected end, computed without isForwardMove
          const firstFailed = statuses.indexOf('failed');
          const firstDelivery = statuses.findIndex((s) => s === 'delivered' || s === 'read');
          const progressOnly = statuses.filter((s): s is DeliveryProgress => s !== 'failed');
          const failedWins =
            firstFailed !== -1 && (firstDelivery === -1 || firstFailed < firstDelivery);
          const expected = failedWins
            ? 'failed'
            : progressOnly.reduce<DeliveryProgress>((a, b) => (RANK[b] > RANK[a] ? b : a), 'sent');

          // act
          const final = applyAll(from, statuses);

          // assess
          expect(final).toBe(expected);
        },
      ),
    );
  });

  it('never lets failed replace delivered or read', () => {
    fc.assert(
      fc.property(
        fc.constantFrom<NotificationStatus>('delivered', 'read'),
        fc.array(webhookStatus, { maxLength: 20 }),
        (reached, later) => {
          // act
          const final = applyAll(reached, [...later, 'failed']);

          // assess
          expect(final).not.toBe('failed');
          expect(isForwardMove(reached, 'failed')).toBe(false);
        },
      ),
    );
  });

  it('moves nothing out of a terminal status', () => {
    fc.assert(
      fc.property(fc.constantFrom(...TERMINAL_STATUSES), webhookStatus, (terminal, next) => {
        expect(isForwardMove(terminal, next)).toBe(false);
      }),
    );
  });

  it('never moves a row back to an earlier delivery status', () => {
    fc.assert(
      fc.property(fc.constantFrom(...NOTIFICATION_STATUSES), progress, (current, next) => {
        // prepare
        const currentRank = current in RANK ? RANK[current as DeliveryProgress] : -1;

        // act
        const moves = isForwardMove(current, next);

        // assess: a move always climbs, and the same status twice is not a move
        if (moves) expect(RANK[next]).toBeGreaterThan(currentRank);
        if (current === next) expect(moves).toBe(false);
      }),
    );
  });
});
