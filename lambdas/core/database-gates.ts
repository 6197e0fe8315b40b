/**
 * The delivery gates backed by the database, in the order of DESIGN §4: rollout (kill switch,
 * pilot, dry run), the circuit, then the rate limits; and the circuit's bookkeeping after sends.
 */
import type { Metrics } from '@aws-lambda-powertools/metrics';
import type { Kysely } from 'kysely';
import type { Database, NotificationRow } from './db/schema.ts';
import type { DeliveryGates, GateDecision, SendReport } from './delivery-gates.ts';
import { ensureSender, openCircuit, recordSendResults } from './panic-mode.ts';
import {
  claimRecipientSlots,
  secondsToNextMinute,
  secondsUntilTokens,
  startOfNextUtcDay,
  takeSendTokens,
} from './rate-limits.ts';
import { inPilot, type Rollout } from './rollout.ts';

export interface DatabaseGatesOptions {
  db: Kysely<Database>;
  senderId: string;
  rollout: () => Promise<Rollout>;
  /** Consecutive upstream failures that open the circuit. */
  failureThreshold: number;
  metrics?: Metrics;
}

export function databaseGates(options: DatabaseGatesOptions): DeliveryGates {
  const { db, senderId } = options;
  let senderReady: Promise<void> | undefined;
  const ready = () => {
    senderReady ??= ensureSender(db, senderId).catch((error: unknown) => {
      senderReady = undefined;
      throw error;
    });
    return senderReady;
  };

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
      const grant = await takeSendTokens(db, senderId, remaining.length, rollout);
      if (grant.circuitOpen) {
        for (const row of remaining)
          decisions.set(row.id, { kind: 'defer', reason: 'panic_mode', until: null });
        return decisions;
      }
      const granted = remaining.slice(0, grant.granted);
      const denied = remaining.slice(grant.granted);
      const dailyReached =
        rollout.dailyCap !== null && grant.dayUsed + grant.granted >= rollout.dailyCap;
      const minuteReached =
        rollout.perMinuteCap !== null && grant.minuteUsed + grant.granted >= rollout.perMinuteCap;
      for (const row of denied) {
        if (dailyReached) {
          decisions.set(row.id, {
            kind: 'defer',
            reason: 'daily_cap',
            until: startOfNextUtcDay(now),
          });
        } else if (minuteReached) {
          decisions.set(row.id, {
            kind: 'delay',
            reason: 'per_minute_cap',
            seconds: secondsToNextMinute(now),
          });
        } else {
          const missing = denied.length - Math.max(0, grant.available - grant.granted);
          decisions.set(row.id, {
            kind: 'delay',
            reason: 'rate_limit',
            seconds: secondsUntilTokens(missing, rollout.ratePerSecond),
          });
        }
      }
      // Two notifications for one recipient in one batch: only the first can get the slot.
      const slots = await claimRecipientSlots(db, granted, rollout.recipientSpacingSeconds);
      for (const row of granted) {
        decisions.set(
          row.id,
          slots.has(row.id)
            ? { kind: 'send' }
            : {
                kind: 'delay',
                reason: 'recipient_spacing',
                seconds: Math.max(1, rollout.recipientSpacingSeconds),
              },
        );
      }
      return decisions;
    },

    async report(results: readonly SendReport[]) {
      if (results.length === 0) return;
      await ready();
      const blocking = results.find(
        (r) => r.errorClass === 'auth' || r.errorClass === 'account_blocked',
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
