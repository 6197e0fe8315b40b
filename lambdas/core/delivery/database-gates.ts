/**
 * The delivery gates backed by the database, in the order of DESIGN §4: rollout (kill switch,
 * pilot, dry run), the circuit, then the rate limits; and the circuit's bookkeeping after sends.
 */
import type { Metrics } from '@aws-lambda-powertools/metrics';
import type { Kysely } from 'kysely';
import type { Database, NotificationRow } from '#core/db/schema.ts';
import type { DeliveryGates, GateDecision, SendReport } from '#core/delivery/delivery-gates.ts';
import {
  cachedNumberHealth,
  effectiveLimits,
  type NumberHealth,
} from '#core/delivery/number-health.ts';
import { ensureSender, openCircuit, recordSendResults } from '#core/delivery/panic-mode.ts';
import { bulkLimits } from '#core/delivery/priority-share.ts';
import {
  type BucketLimits,
  claimRecipientSlots,
  releaseRecipientSlots,
  returnSendTokens,
  secondsToNextMinute,
  secondsUntilTokens,
  startOfNextUtcDay,
  type TokenGrant,
  takeSendTokens,
} from '#core/delivery/rate-limits.ts';
import { inPilot, type Rollout } from '#core/delivery/rollout.ts';
import { memoizeUntilFailure } from '#core/platform/memoize.ts';

export interface DatabaseGatesOptions {
  db: Kysely<Database>;
  senderId: string;
  rollout: () => Promise<Rollout>;
  /** Consecutive upstream failures that open the circuit. */
  failureThreshold: number;
  metrics?: Metrics;
  /**
   * The number's health, for the default rate and daily cap (number-health.ts); by default the
   * table's row, cached for a few seconds like the rollout.
   */
  numberHealth?: () => Promise<NumberHealth | null>;
}

export function databaseGates(options: DatabaseGatesOptions): DeliveryGates {
  const { db, senderId } = options;
  const ready = memoizeUntilFailure(() => ensureSender(db, senderId));
  const health = options.numberHealth ?? cachedNumberHealth(db, senderId);
  const limits = async (rollout: Rollout) => effectiveLimits(rollout, await health());

  return {
    async admit(rows: readonly NotificationRow[], now: Date) {
      const decisions = new Map<string, GateDecision>();
      if (rows.length === 0) return decisions;
      const rollout = await options.rollout();
      if (!rollout.deliveryEnabled) {
        for (const row of rows)
          decisions.set(row.id, { kind: 'defer', reason: 'kill_switch', until: null });
        return decisions;
      }
      const remaining: NotificationRow[] = [];
      for (const row of rows) {
        if (!inPilot(row.recipient, rollout.pilotPrefixes)) {
          decisions.set(row.id, { kind: 'skip', reason: 'outside_pilot' });
        } else if (rollout.dryRun) {
          decisions.set(row.id, { kind: 'skip', reason: 'dry_run' });
        } else {
          remaining.push(row);
        }
      }
      if (remaining.length === 0) return decisions;

      await ready();
      // Recipient spacing first, so that a row held back for its recipient takes no token and
      // counts toward no cap. Two notifications for one recipient in a batch: the first gets it.
      const slots = await claimRecipientSlots(db, remaining, rollout.recipientSpacingSeconds);
      const spaced: NotificationRow[] = [];
      for (const row of remaining) {
        if (slots.has(row.id)) {
          spaced.push(row);
        } else {
          decisions.set(row.id, {
            kind: 'delay',
            reason: 'recipient_spacing',
            seconds: Math.max(1, rollout.recipientSpacingSeconds),
          });
        }
      }
      if (spaced.length === 0) return decisions;

      // The operator's rate and caps, else what Meta allows the number (throughput, tier).
      const limit = await limits(rollout);
      // High priority takes first and may use every token and the whole caps; bulk then takes
      // what leaves the high share free (priority-share.ts), so a bulk backlog cannot spend it.
      const high = spaced.filter((row) => row.priority !== 'bulk');
      const bulk = spaced.filter((row) => row.priority === 'bulk');
      for (const [rows, rowLimits] of [
        [high, limit],
        [bulk, bulkLimits(limit)],
      ] as const) {
        if (rows.length === 0) continue;
        const grant = await takeSendTokens(db, senderId, rows.length, rowLimits);
        for (const [id, decision] of decideForGrant(rows, grant, rowLimits, now)) {
          decisions.set(id, decision);
        }
        // The slots of rows that will not be sent now are given back for their next turn.
        await releaseRecipientSlots(db, grant.circuitOpen ? rows : rows.slice(grant.granted));
      }
      return decisions;
    },

    async release(rows: readonly NotificationRow[]) {
      if (rows.length === 0) return;
      const limit = await limits(await options.rollout());
      await Promise.all([
        returnSendTokens(db, senderId, rows.length, limit.ratePerSecond),
        releaseRecipientSlots(db, rows),
      ]);
    },

    async report(results: readonly SendReport[]) {
      if (results.length === 0) return;
      await ready();
      const blocking = results.find(
        (r) =>
          (r.errorClass === 'auth' || r.errorClass === 'account_blocked') &&
          r.opensCircuit !== false,
      );
      if (blocking) {
        await openCircuit(db, {
          senderId,
          actor: 'system:worker',
          reason: `WhatsApp answered ${blocking.errorClass}: every send would fail`,
          ...(options.metrics ? { metrics: options.metrics } : {}),
        });
        return;
      }
      await recordSendResults(db, {
        senderId,
        successes: results.filter((r) => r.ok).length,
        upstreamFailures: results.filter((r) => r.errorClass === 'upstream').length,
        threshold: options.failureThreshold,
        ...(options.metrics ? { metrics: options.metrics } : {}),
      });
    },
  };
}

/** Pure: what a take from the bucket means for each of the rows it was taken for, in order. */
export function decideForGrant(
  rows: readonly NotificationRow[],
  grant: TokenGrant,
  limits: BucketLimits,
  now: Date,
): Map<string, GateDecision> {
  const decisions = new Map<string, GateDecision>();
  if (grant.circuitOpen) {
    for (const row of rows)
      decisions.set(row.id, { kind: 'defer', reason: 'panic_mode', until: null });
    return decisions;
  }
  const granted = rows.slice(0, grant.granted);
  const denied = rows.slice(grant.granted);
  const dailyReached = limits.dailyCap !== null && grant.dayUsed + grant.granted >= limits.dailyCap;
  const minuteReached =
    limits.perMinuteCap !== null && grant.minuteUsed + grant.granted >= limits.perMinuteCap;
  const usable = Math.max(0, grant.available - (limits.reserveTokens ?? 0) - grant.granted);
  for (const row of denied) {
    if (dailyReached) {
      decisions.set(row.id, { kind: 'defer', reason: 'daily_cap', until: startOfNextUtcDay(now) });
    } else if (minuteReached) {
      decisions.set(row.id, {
        kind: 'delay',
        reason: 'per_minute_cap',
        seconds: secondsToNextMinute(now),
      });
    } else {
      decisions.set(row.id, {
        kind: 'delay',
        reason: 'rate_limit',
        seconds: secondsUntilTokens(denied.length - usable, limits.ratePerSecond),
      });
    }
  }
  for (const row of granted) decisions.set(row.id, { kind: 'send' });
  return decisions;
}
