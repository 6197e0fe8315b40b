/**
 * What follows the recorded sends and has its own backstops: statuses that beat the worker to the
 * row, opt-outs Meta reported, the circuit's count, rate-limit tokens of lost claims, and tallies.
 * A failure here is logged; it does not undo sends (the scheduler re-applies pending statuses, the
 * next batch counts toward the circuit).
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import type { Kysely } from 'kysely';
import type { Database } from '#core/db/schema.ts';
import type { DeliveryGates } from '#core/delivery/delivery-gates.ts';
import { applyPendingStatuses } from '#core/notifications/apply-status-update.ts';
import { addOptOut } from '#core/notifications/opt-outs.ts';
import { addTallies } from '#core/notifications/tallies.ts';
import type { LostClaim } from './claim.ts';
import type { Recorded } from './record.ts';
import type { Verdict } from './verdict.ts';

export interface Books {
  recorded: readonly Recorded[];
  lost: readonly LostClaim[];
  /** Every verdict of the batch, for the daily tallies. */
  verdicts: readonly Verdict[];
}

export async function keepBooks(
  deps: { db: Kysely<Database>; gates: DeliveryGates; logger: Logger },
  { recorded, lost, verdicts }: Books,
  now: Date,
): Promise<void> {
  const count = (outcome: Verdict['outcome']) =>
    verdicts.filter((v) => v.outcome === outcome).length;
  await Promise.all([
    applyPendingStatuses(
      deps.db,
      recorded.flatMap((r) => (r.wamid ? [r.wamid] : [])),
    ),
    ...recorded.flatMap((r) =>
      r.optOutRecipient ? [addOptOut(deps.db, r.optOutRecipient, 'meta_131050')] : [],
    ),
    deps.gates.report(
      recorded.map((r) => r.report),
      now,
    ),
    deps.gates.release(
      lost.map((l) => l.row),
      now,
    ),
    addTallies(
      deps.db,
      { skipped_duplicate: count('skipped_duplicate'), skipped_rate_limit: count('delayed') },
      now,
    ),
  ]).catch((error: unknown) =>
    deps.logger.error('post-send bookkeeping failed', {
      error: error instanceof Error ? error.name : String(error),
    }),
  );
}
