/**
 * Guarded status transitions written in one statement for a whole batch: each row moves only if it
 * is still in one of the statuses the caller expects, so concurrent writers cannot move it backwards.
 */
import { type Kysely, sql } from 'kysely';
import type { Database } from '#core/db/schema.ts';
import type { ErrorClass } from '#core/model/error-class.ts';
import type { NotificationStatus } from '#core/model/lifecycle.ts';

export interface Transition {
  id: string;
  to: NotificationStatus;
  from: readonly NotificationStatus[];
  reason?: string | null;
  wamid?: string | null;
  errorClass?: ErrorClass | null;
  errorCode?: number | null;
  errorMessage?: string | null;
  nextAttemptAt?: Date | null;
}

/** Applies the transitions that still hold; returns the ids that moved. One round trip. */
export async function applyTransitions(
  db: Kysely<Database>,
  transitions: readonly Transition[],
): Promise<Set<string>> {
  if (transitions.length === 0) return new Set();
  const rows = sql.join(
    transitions.map(
      (t) =>
        sql`(${t.id}::uuid, ${t.to}::text, ${sql.val(t.from)}::text[], ${t.reason ?? null}::text, ${t.wamid ?? null}::text, ${t.errorClass ?? null}::text, ${t.errorCode ?? null}::int, ${t.errorMessage ?? null}::text, ${t.nextAttemptAt ?? null}::timestamptz)`,
    ),
  );
  // A success keeps the last error on the row (clients see what the retries were about); the
  // timestamps are set by the status they belong to.
  const result = await sql<{ id: string }>`
    update notifications as n set
      status = v.status,
      status_reason = v.reason,
      wamid = coalesce(v.wamid, n.wamid),
      error_class = coalesce(v.error_class, n.error_class),
      error_code = case when v.error_class is null then n.error_code else v.error_code end,
      error_message = case when v.error_class is null then n.error_message else v.error_message end,
      next_attempt_at = v.next_attempt_at,
      sent_at = case when v.status = 'sent' then coalesce(n.sent_at, now()) else n.sent_at end,
      failed_at = case when v.status = 'failed' then now() else n.failed_at end,
      -- A send that parked its row for an auth or account block counts toward the cap of panic-mode.ts.
      circuit_opens = n.circuit_opens + case when v.status = 'deferred' and v.reason = 'circuit_open' then 1 else 0 end,
      updated_at = now()
    from (values ${rows}) as v(id, status, from_statuses, reason, wamid, error_class, error_code, error_message, next_attempt_at)
    where n.id = v.id and n.status = any(v.from_statuses)
    returning n.id`.execute(db);
  return new Set(result.rows.map((r) => r.id));
}
