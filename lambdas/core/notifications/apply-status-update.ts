/**
 * Applying Meta's status webhooks to notifications: forward only (sent < delivered < read, failed
 * before delivery), harmless twice, and kept aside when the wamid is not stored yet, unless the
 * echoed callback data names the claim that sent it (a worker that died before recording).
 */
import { type Kysely, sql } from 'kysely';
import type { Database } from '#core/db/schema.ts';
import { webhookPredecessors } from '#core/model/lifecycle.ts';
import { addOptOut } from '#core/notifications/opt-outs.ts';
import { decodeCallbackData, type SendTag } from '#core/whatsapp/callback-data.ts';
import { classifyGraphError } from '#core/whatsapp/classify-graph-error.ts';

export interface StatusReport {
  wamid: string;
  status: 'sent' | 'delivered' | 'read' | 'failed';
  timestamp: Date;
  errorCode?: number | undefined;
  errorTitle?: string | undefined;
  /** The echoed `biz_opaque_callback_data`, and the sender number the status came through. */
  callbackData?: string | undefined;
  phoneNumberId?: string | undefined;
}

export type StatusOutcome =
  /**
   * The notification moved forward; `recovered` when its wamid was unknown and the callback data
   * tied it to a claim whose outcome was never recorded (it is stored now, and nothing is resent).
   */
  | {
      kind: 'applied';
      notificationId: string;
      recipient: string;
      clientId: string;
      recovered?: true;
    }
  /** A duplicate or a status older than what the row already has. */
  | { kind: 'ignored' }
  /** No notification has this wamid yet; kept until the worker stores it. */
  | { kind: 'pending' };

type Moved = { id: string; recipient: string; clientId: string };

/**
 * Moves every row whose wamid is in `reports` (all of one status) to that status, in one
 * statement; returns wamid → row for those that moved. The guard `status = any(predecessors)` is
 * what makes this monotonic and idempotent: a late `sent` finds the row already `read` and
 * changes nothing. A wamid must appear once in `reports`.
 */
async function moveForwardMany(
  db: Kysely<Database>,
  status: StatusReport['status'],
  reports: readonly StatusReport[],
): Promise<Map<string, Moved>> {
  if (reports.length === 0) return new Map();
  const wamids = reports.map((r) => r.wamid);
  const ats = reports.map((r) => r.timestamp.toISOString());
  const failed = status === 'failed';
  const codes = reports.map((r) => (failed ? (r.errorCode ?? null) : null));
  const classes = reports.map((r) => (failed ? classifyGraphError({ code: r.errorCode }) : null));
  const titles = reports.map((r) => (failed && r.errorTitle ? r.errorTitle.slice(0, 300) : null));
  const columns = {
    sent: sql`sent_at = coalesce(n.sent_at, u.at)`,
    delivered: sql`delivered_at = coalesce(n.delivered_at, u.at)`,
    read: sql`delivered_at = coalesce(n.delivered_at, u.at), read_at = u.at`,
    failed: sql`failed_at = u.at, error_class = u.error_class, error_code = u.error_code, error_message = u.error_message`,
  }[status];
  const result = await sql<{ wamid: string; id: string; recipient: string; client_id: string }>`
    update notifications n set status = ${status}, updated_at = now(), ${columns}
    from unnest(
      ${sql.val(wamids)}::text[], ${sql.val(ats)}::timestamptz[], ${sql.val(codes)}::int[],
      ${sql.val(classes)}::text[], ${sql.val(titles)}::text[]
    ) as u(wamid, at, error_code, error_class, error_message)
    where n.wamid = u.wamid and n.status = any(${sql.val([...webhookPredecessors(status)])}::text[])
    returning n.wamid, n.id, n.recipient, n.client_id`.execute(db);
  return new Map(
    result.rows.map((r) => [r.wamid, { id: r.id, recipient: r.recipient, clientId: r.client_id }]),
  );
}

async function moveForward(db: Kysely<Database>, report: StatusReport): Promise<Moved | undefined> {
  return (await moveForwardMany(db, report.status, [report])).get(report.wamid);
}

export async function applyStatusUpdate(
  db: Kysely<Database>,
  report: StatusReport,
): Promise<StatusOutcome> {
  let moved = await moveForward(db, report);
  let recovered = false;
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
      // One transaction: a wamid stored on a row left `sending` would let the claim go stale and
      // be sent again while Meta redelivers a status that then finds the row by its wamid.
      const tag = decodeCallbackData(report.callbackData);
      if (tag && report.phoneNumberId) {
        const sender = report.phoneNumberId;
        moved = await db
          .transaction()
          .execute(async (trx) =>
            (await adoptThroughCallback(trx, report.wamid, tag, sender))
              ? await moveForward(trx, report)
              : undefined,
          );
      }
      recovered = moved !== undefined;
      moved ??= await keepUntilStored(db, report);
      if (!moved) return { kind: 'pending' };
    }
  }
  if (report.status === 'failed' && report.errorCode === 131050) {
    await addOptOut(db, moved.recipient, 'meta_131050', report.timestamp);
  }
  return {
    kind: 'applied',
    notificationId: moved.id,
    recipient: moved.recipient,
    clientId: moved.clientId,
    ...(recovered ? { recovered } : {}),
  };
}

/**
 * Where a send with no stored wamid can be: still claimed (its worker died before the record), or
 * put back for a retry (`queued`; `deferred` when panic mode parked it) after an answer lost once
 * Meta had accepted.
 */
const UNRECORDED = ['sending', 'queued', 'deferred'] as const;

/**
 * Stores the wamid of a status nobody recorded on the notification its callback data names (`tag`,
 * already decoded: anything not in our format never gets here), when
 * that is the exact send: same claim (attempt), no wamid yet, in one of UNRECORDED, and claimed for
 * the sender number the status came through. The webhook is signed by Meta, but any
 * sender on a business account our app is subscribed to can write any text in this field: a
 * value naming another sender's number, another attempt, a settled row or a row that does not
 * exist changes nothing, and the status is kept aside like any other unknown wamid.
 * The row leaves `sending` in the caller's next statement, in the same transaction: that clears the claim.
 */
async function adoptThroughCallback(
  db: Kysely<Database>,
  wamid: string,
  tag: SendTag,
  phoneNumberId: string,
): Promise<boolean> {
  const result = await db
    .updateTable('notifications')
    .set({ wamid, updated_at: sql`now()` })
    .where('id', '=', tag.notificationId)
    .where('attempts', '=', tag.attempt)
    .where('wamid', 'is', null)
    .where('status', 'in', UNRECORDED)
    .where('sender_id', '=', phoneNumberId)
    .executeTakeFirst();
  return result.numUpdatedRows === 1n;
}

/** Parks a status whose wamid no row has yet, then looks once more (see the comment inside). */
async function keepUntilStored(
  db: Kysely<Database>,
  report: StatusReport,
): Promise<Moved | undefined> {
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

/** The order statuses are applied in when several arrive together. */
const IN_PROGRESS_ORDER = ['sent', 'delivered', 'read', 'failed'] as const;
const progress = (status: StatusReport['status']) => IN_PROGRESS_ORDER.indexOf(status);

/**
 * Applies the statuses of one webhook delivery (Meta puts many in one POST under load) with one
 * UPDATE per status present, in progress order, so a `delivered` and a `read` of one message in
 * one body both apply. Statuses that moved nothing are sorted out with one SELECT: a row already
 * at or past the status is `ignored`; the rest (a race with the worker, a wamid not stored yet,
 * a repeat within the body) take the one-by-one path. Outcomes come back in input order.
 */
export async function applyStatusUpdates(
  db: Kysely<Database>,
  reports: readonly StatusReport[],
): Promise<StatusOutcome[]> {
  const outcomes: (StatusOutcome | undefined)[] = reports.map(() => undefined);
  const leftover: number[] = [];
  for (const status of IN_PROGRESS_ORDER) {
    const seen = new Set<string>();
    const batch: number[] = [];
    for (const [index, report] of reports.entries()) {
      if (report.status !== status) continue;
      if (seen.has(report.wamid)) leftover.push(index);
      else {
        seen.add(report.wamid);
        batch.push(index);
      }
    }
    const moved = await moveForwardMany(
      db,
      status,
      batch.map((index) => reports[index]!),
    );
    for (const index of batch) {
      const row = moved.get(reports[index]!.wamid);
      if (!row) {
        leftover.push(index);
        continue;
      }
      const report = reports[index]!;
      if (report.status === 'failed' && report.errorCode === 131050) {
        await addOptOut(db, row.recipient, 'meta_131050', report.timestamp);
      }
      outcomes[index] = {
        kind: 'applied',
        notificationId: row.id,
        recipient: row.recipient,
        clientId: row.clientId,
      };
    }
  }
  if (leftover.length > 0) {
    const known = await db
      .selectFrom('notifications')
      .select(['wamid', 'status'])
      .where('wamid', 'in', [...new Set(leftover.map((index) => reports[index]!.wamid))])
      .execute();
    const statusOf = new Map(known.map((row) => [row.wamid, row.status]));
    leftover.sort((a, b) => progress(reports[a]!.status) - progress(reports[b]!.status));
    for (const index of leftover) {
      const report = reports[index]!;
      const current = statusOf.get(report.wamid);
      outcomes[index] =
        current !== undefined && !webhookPredecessors(report.status).includes(current)
          ? { kind: 'ignored' }
          : await applyStatusUpdate(db, report);
    }
  }
  return outcomes.map((outcome) => outcome ?? { kind: 'ignored' });
}

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
  return applyStatusUpdates(
    db,
    pending.map((p) => ({
      wamid: p.wamid,
      status: p.status,
      timestamp: p.occurred_at,
      errorCode: p.error_code ?? undefined,
      errorTitle: p.error_title ?? undefined,
    })),
  );
}
