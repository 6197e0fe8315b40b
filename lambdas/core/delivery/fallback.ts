/**
 * The fallback sweep: notifications past their fallback time that WhatsApp has not delivered are
 * marked fallback-required once, with the reason, and those not yet sent are cancelled in the same
 * statement so the person is not reached twice (the client now sends push, SMS or email instead).
 */
import { type Kysely, sql } from 'kysely';
import type { Database } from '#core/db/schema.ts';
import { CANCELLABLE_STATUSES } from '#core/model/lifecycle.ts';

/**
 * Statuses the sweep marks. `sending` waits for the next run: Meta may be taking the message right
 * now, and a minute later the row is sent, failed or back to waiting. Delivered, read, skipped (the
 * service chose not to send) and cancelled rows never need a fallback.
 */
export const FALLBACK_SWEPT_STATUSES = [...CANCELLABLE_STATUSES, 'sent', 'failed'] as const;

export interface FallbackMark {
  id: string;
  /** The status after the sweep: `cancelled` when it had not been sent. */
  status: string;
  reason: string;
}

export async function markDueFallbacks(
  db: Kysely<Database>,
  now: Date,
  limit: number,
): Promise<FallbackMark[]> {
  const cancellable = sql.val([...CANCELLABLE_STATUSES]);
  // Rows are taken with `for update skip locked` and the update re-checks `fallback_required_at is
  // null` on the row it locked, so of two sweeps (or a sweep and a worker failing the row) each
  // row is marked by one only, once. The status and reason are read from that same locked row: a
  // claim that won the race leaves `sending`, which the guard then refuses. The order of the
  // columns in SET does not matter: every right-hand side sees the row as it was before the update.
  const result = await sql<FallbackMark>`
    with due as (
      select id from notifications
      where fallback_due_at <= ${now}
        and fallback_required_at is null
        -- Spelled out (not a parameter) so the planner matches notifications_fallback_due_idx.
        and status in ('scheduled', 'accepted', 'queued', 'deferred', 'sent', 'failed')
      order by fallback_due_at
      limit ${limit}
      for update skip locked
    )
    update notifications n set
      fallback_required_at = ${now},
      fallback_reason = case
        when n.status = 'failed' then 'failed'
        when n.status = 'sent' then 'not_delivered'
        when n.status = 'deferred' then 'deferred_' || coalesce(n.status_reason, 'unknown')
        else 'not_sent'
      end,
      status = case when n.status = any(${cancellable}::text[]) then 'cancelled' else n.status end,
      status_reason = case
        when n.status = any(${cancellable}::text[]) then 'fallback_required'
        else n.status_reason
      end,
      next_attempt_at = case when n.status = any(${cancellable}::text[]) then null else n.next_attempt_at end,
      updated_at = now()
    from due
    where n.id = due.id
      and n.fallback_required_at is null
      and n.status = any(${sql.val([...FALLBACK_SWEPT_STATUSES])}::text[])
    returning n.id, n.status, n.fallback_reason as reason`.execute(db);
  return result.rows;
}
