/**
 * A client cancels its own notification before anything has started sending it: one guarded
 * update moves it to `cancelled`, with its audit entry in the same transaction.
 */
import { type Kysely, sql } from 'kysely';
import type { Database, NotificationRow } from '#core/db/schema.ts';
import { inTransaction } from '#core/db/transaction.ts';
import { CANCELLABLE_STATUSES, type NotificationStatus } from '#core/model/lifecycle.ts';
import { writeAudit } from '#core/notifications/audit.ts';
import {
  type NotificationView,
  toNotificationView,
} from '#core/notifications/notification-view.ts';

export interface CancelInput {
  clientId: string;
  id: string;
  actor: string;
  requestId: string | null;
  sourceIp: string | null;
}

export type CancelOutcome =
  | { kind: 'cancelled'; notification: NotificationView; previousStatus: NotificationStatus }
  /** Absent, or another client's: the two look the same. */
  | { kind: 'not_found' }
  /** Already sending or past it: the notification as it stands. */
  | { kind: 'not_cancellable'; notification: NotificationView };

export async function cancelNotification(
  db: Kysely<Database>,
  input: CancelInput,
): Promise<CancelOutcome> {
  return inTransaction(db, async (trx) => {
    // The row is locked by the CTE and moved only if it is still cancellable when the lock is
    // ours: a worker's claim (to `sending`) or the scheduler's enqueue either happened first,
    // and the guard sees it, or waits for this. The CTE also hands back the status it had.
    const moved = await sql<NotificationRow & { previous_status: NotificationStatus }>`
      with target as (
        select id, status from notifications
        where id = ${input.id} and client_id = ${input.clientId}
        for update
      )
      update notifications n set
        status = 'cancelled',
        status_reason = 'cancelled_by_client',
        next_attempt_at = null,
        updated_at = now()
      from target
      where n.id = target.id and target.status = any(${sql.val([...CANCELLABLE_STATUSES])}::text[])
      returning n.*, target.status as previous_status`.execute(trx);
    const row = moved.rows[0];
    if (row) {
      const { previous_status: previousStatus, ...notification } = row;
      await writeAudit(trx, {
        actor: input.actor,
        action: 'notification.cancel',
        outcome: 'ok',
        requestId: input.requestId,
        sourceIp: input.sourceIp,
        detail: { notificationId: input.id, previousStatus },
      });
      return {
        kind: 'cancelled',
        notification: toNotificationView(notification),
        previousStatus,
      };
    }
    const current = await trx
      .selectFrom('notifications')
      .selectAll()
      .where('id', '=', input.id)
      .where('client_id', '=', input.clientId)
      .executeTakeFirst();
    if (!current) return { kind: 'not_found' };
    return { kind: 'not_cancellable', notification: toNotificationView(current) };
  });
}
