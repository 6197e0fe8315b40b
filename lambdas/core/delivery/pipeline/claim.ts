/**
 * The claim, the third stage: admitted rows move to `sending` in one guarded statement before Meta
 * is called, so that a redelivery or a second worker sends nothing while this one may still send.
 */
import { type Kysely, sql } from 'kysely';
import type { Database } from '#core/db/schema.ts';
import { BUSY_RETRY_SECONDS } from './triage.ts';
import { type Candidate, CLAIMABLE, type LoadedRow, type Verdict } from './verdict.ts';

/** A candidate this worker now owns, with its attempt number (the claim counted it). */
export interface Claimed extends Candidate {
  attempt: number;
}

/** A row another worker claimed between the load and now: held back like a busy row. */
export interface LostClaim extends Verdict {
  row: LoadedRow;
}

export interface Claim {
  won: Claimed[];
  lost: LostClaim[];
}

export async function claim(
  db: Kysely<Database>,
  admitted: readonly Candidate[],
  senderId: string,
  /** Claim age after which a `sending` row may be taken over (triage's reclaimAfterSeconds). */
  reclaimAfter: number,
  /** The WABA of the template registry: the claim records the category the template is sent under. */
  wabaId?: string,
): Promise<Claim> {
  const attempts = await claimRows(
    db,
    admitted.map((c) => c.row.id),
    senderId,
    reclaimAfter,
    wabaId,
  );
  const won: Claimed[] = [];
  const lost: LostClaim[] = [];
  for (const candidate of admitted) {
    const attempt = attempts.get(candidate.row.id);
    if (attempt === undefined) {
      lost.push({
        record: candidate.record,
        row: candidate.row,
        outcome: 'busy',
        holdBackSeconds: BUSY_RETRY_SECONDS,
      });
    } else {
      won.push({ ...candidate, attempt });
    }
  }
  return { won, lost };
}

/** Moves rows to `sending` and counts the attempt; returns id → attempt number for those it won. */
async function claimRows(
  db: Kysely<Database>,
  ids: readonly string[],
  senderId: string,
  reclaimAfter: number,
  wabaId: string | undefined,
): Promise<Map<string, number>> {
  if (ids.length === 0) return new Map();
  // The guard repeats triage's rule (claimable, or `sending` with a stale claim) inside the
  // statement: the row may have moved since it was read, and only this check is atomic, so of two
  // workers one wins. A crash after this leaves `sending`, which a redelivery re-sends only once
  // the claim is older than a worker can live plus the grace for Meta's status webhook: a send
  // that reached Meta is settled by that webhook (callback data) and is then no longer `sending`.
  const rows = await db
    .updateTable('notifications')
    .set((eb) => ({
      status: 'sending',
      attempts: eb('attempts', '+', 1),
      sender_id: senderId,
      updated_at: sql`now()`,
      // The category the send goes out under, as the registry has it now (kept if unknown).
      ...(wabaId
        ? {
            template_category: sql<string | null>`coalesce((
              select t.category from message_templates t
              where t.waba_id = ${wabaId}
                and notifications.message_type = 'template'
                and t.name = notifications.message->>'name'
                and t.language = notifications.message->>'language'), notifications.template_category)`,
          }
        : {}),
    }))
    .where('id', 'in', ids)
    .where((eb) =>
      eb.or([
        eb('status', 'in', CLAIMABLE),
        eb.and([
          eb('status', '=', 'sending'),
          eb('updated_at', '<', sql<Date>`now() - make_interval(secs => ${reclaimAfter})`),
        ]),
      ]),
    )
    .returning(['id', 'attempts'])
    .execute();
  return new Map(rows.map((r) => [r.id, r.attempts]));
}
