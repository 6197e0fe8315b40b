/**
 * What a client receives: the event types, and the body built from an outbox row, with the
 * notification exactly as `GET /v1/notifications/{id}` shows it at the time of the event.
 */
import type { CallbackEventRow, NotificationRow } from '#core/db/schema.ts';
import { NOTIFICATION_STATUSES } from '#core/model/lifecycle.ts';
import {
  type NotificationView,
  toNotificationView,
} from '#core/notifications/notification-view.ts';

/** Statuses that are the service's own retry mechanics; the trigger (0010) emits no event for them. */
const INTERNAL_STATUSES = ['queued', 'sending'] as const;

/**
 * Every event type: `notification.<status>` for each client-visible status (a new status gets its
 * event without a change here or in the trigger), plus `notification.fallback_required`.
 */
export const CALLBACK_EVENT_TYPES: readonly string[] = [
  ...NOTIFICATION_STATUSES.filter((s) => !(INTERNAL_STATUSES as readonly string[]).includes(s)).map(
    (s) => `notification.${s}`,
  ),
  'notification.cancelled',
  'notification.fallback_required',
].filter((t, i, all) => all.indexOf(t) === i);

export interface CallbackEventBody {
  id: string;
  type: string;
  createdAt: string;
  /** Per notification, from 1, one step per event: order by it, not by arrival. */
  sequence: number;
  data: {
    notification: NotificationView;
    previousStatus: string | null;
    errorClass?: string;
    errorCode?: number;
    reason?: string;
  };
}

/**
 * `to_jsonb` wrote timestamps as text; the view wants the row as Kysely reads it. Every timestamp
 * column of notifications is named `*_at`, so a column added later is read right without a list
 * to keep in step (a missing entry once broke every event of a row with a fallback).
 */
function rowFromSnapshot(snapshot: Record<string, unknown>): NotificationRow {
  const row: Record<string, unknown> = { ...snapshot };
  for (const [column, value] of Object.entries(row)) {
    if (column.endsWith('_at')) row[column] = typeof value === 'string' ? new Date(value) : null;
  }
  return row as unknown as NotificationRow;
}

export function callbackEventBody(event: CallbackEventRow): CallbackEventBody {
  const row = rowFromSnapshot(event.snapshot);
  const failing = ['notification.failed', 'notification.deferred'].includes(event.type);
  return {
    id: event.id,
    type: event.type,
    createdAt: event.created_at.toISOString(),
    sequence: event.sequence,
    data: {
      notification: toNotificationView(row),
      previousStatus: event.previous_status,
      ...(failing && row.error_class ? { errorClass: row.error_class } : {}),
      ...(failing && row.error_code !== null ? { errorCode: row.error_code } : {}),
      ...(event.reason ? { reason: event.reason } : {}),
    },
  };
}
