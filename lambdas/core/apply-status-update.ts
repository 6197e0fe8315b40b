/**
 * Applying Meta's status webhooks to notifications: forward only (sent < delivered < read, failed
 * before delivery), harmless twice, and kept aside when the wamid is not stored yet.
 */
import { type Kysely, sql } from 'kysely';
import { classifyGraphError } from './classify-graph-error.ts';
import type { Database } from './db/schema.ts';
import { webhookPredecessors } from './lifecycle.ts';
import { addOptOut } from './opt-outs.ts';

export interface StatusReport {
  wamid: string;
  status: 'sent' | 'delivered' | 'read' | 'failed';
  timestamp: Date;
  errorCode?: number | undefined;
  errorTitle?: string | undefined;
}

export type StatusOutcome =
  /** The notification moved forward. */
  | { kind: 'applied'; notificationId: string; recipient: string }
  /** A duplicate or a status older than what the row already has. */
  | { kind: 'ignored' }
  /** No notification has this wamid yet; kept until the worker stores it. */
  | { kind: 'pending' };

async function moveForward(
  db: Kysely<Database>,
  report: StatusReport,
): Promise<{ id: string; recipient: string } | undefined> {
  const at = report.timestamp;
  const failed = report.status === 'failed';
  const errorClass = failed ? classifyGraphError({ code: report.errorCode }) : undefined;
  // The guard `status in (predecessors)` is what makes this monotonic and idempotent: a late
  // `sent` finds the row already `read` and changes nothing.
  return db
    .updateTable('notifications')
    .set((eb) => ({
      status: report.status,
      updated_at: sql`now()`,
      ...(report.status === 'sent' ? { sent_at: eb.fn.coalesce('sent_at', sql<Date>`${at}`) } : {}),
      ...(report.status === 'delivered' || report.status === 'read'
        ? { delivered_at: eb.fn.coalesce('delivered_at', sql<Date>`${at}`) }
        : {}),
      ...(report.status === 'read' ? { read_at: at } : {}),
      ...(failed
        ? {
            failed_at: at,
            error_class: errorClass ?? null,
            error_code: report.errorCode ?? null,
            error_message: report.errorTitle ? report.errorTitle.slice(0, 300) : null,
          }
        : {}),
    }))
    .where('wamid', '=', report.wamid)
    .where('status', 'in', webhookPredecessors(report.status))
    .returning(['id', 'recipient'])
    .executeTakeFirst();
}

export async function applyStatusUpdate(
  db: Kysely<Database>,
  report: StatusReport,
): Promise<StatusOutcome> {
  let moved = await moveForward(db, report);
  if (!moved) {
    const known = await db
      .selectFrom('notifications')
      .select('status')
      .where('wamid', '=', report.wamid)
      .executeTakeFirst();
    if (known) {
      // Usually the row is already at or past this status (a repeated webhook). But the worker
      // may have stored the wamid between our UPDATE and this SELECT, which then finds the row
      // where the UPDATE found none: if it could still move, one more try settles it.
      if (!webhookPredecessors(report.status).includes(known.status)) return { kind: 'ignored' };
      moved = await moveForward(db, report);
      if (!moved) return { kind: 'ignored' };
    } else {
      moved = await keepUntilStored(db, report);
      if (!moved) return { kind: 'pending' };
    }
  }
  if (report.status === 'failed' && report.errorCode === 131050) {
    await addOptOut(db, moved.recipient, 'meta_131050');
  }
  return { kind: 'applied', notificationId: moved.id, recipient: moved.recipient };
}

/** Parks a status whose wamid no row has yet, then looks once more (see the comment inside). */
async function keepUntilStored(
  db: Kysely<Database>,
  report: StatusReport,
): Promise<{ id: string; recipient: string } | undefined> {
  await db
    .insertInto('pending_statuses')
    .values({
      wamid: report.wamid,
      status: report.status,
      occurred_at: report.timestamp,
      error_code: report.errorCode ?? null,
      error_title: report.errorTitle ?? null,
    })
    .onConflict((oc) => oc.columns(['wamid', 'status']).doNothing())
    .execute();
  // The worker stores the wamid and then looks for pending statuses; we store the pending status
  // and then look for the wamid. Whichever runs second sees the other's write, so no status is lost.
  const moved = await moveForward(db, report);
  if (moved) {
    await db
      .deleteFrom('pending_statuses')
      .where('wamid', '=', report.wamid)
      .where('status', '=', report.status)
      .execute();
  }
  return moved;
}

const PROGRESS_ORDER = { sent: 0, delivered: 1, read: 2, failed: 3 } as const;

/**
 * Applies the statuses that arrived before the worker stored these wamids. Called by the worker
 * right after it records sends; one query when there is nothing pending.
 */
export async function applyPendingStatuses(
  db: Kysely<Database>,
  wamids: readonly string[],
): Promise<StatusOutcome[]> {
  if (wamids.length === 0) return [];
  const pending = await db
    .deleteFrom('pending_statuses')
    .where('wamid', 'in', wamids)
    .returningAll()
    .execute();
  pending.sort((a, b) => PROGRESS_ORDER[a.status] - PROGRESS_ORDER[b.status]);
  const outcomes: StatusOutcome[] = [];
  for (const p of pending) {
    outcomes.push(
      await applyStatusUpdate(db, {
        wamid: p.wamid,
        status: p.status,
        timestamp: p.occurred_at,
        errorCode: p.error_code ?? undefined,
        errorTitle: p.error_title ?? undefined,
      }),
    );
  }
  return outcomes;
}
