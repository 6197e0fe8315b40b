/** How a notification looks to API clients: camelCase, the recipient masked, errors grouped. */
import type { NotificationRow } from '#core/db/schema.ts';
import { maskPhone } from '#core/platform/phone.ts';

export interface NotificationView {
  id: string;
  status: string;
  statusReason: string | null;
  to: string;
  priority: string;
  type: 'template' | 'text';
  template: string | null;
  /** The category the template had at acceptance, then at the send (from the registry). */
  templateCategory: string | null;
  sendAt: string | null;
  metadata: unknown;
  attempts: number;
  wamid: string | null;
  error: { class: string; code: number | null; message: string | null } | null;
  requestId: string;
  createdAt: string;
  updatedAt: string;
  queuedAt: string | null;
  sentAt: string | null;
  deliveredAt: string | null;
  readAt: string | null;
  failedAt: string | null;
  /** The fallback this notification carries, and whether it was found required; null: none. */
  fallback: {
    afterSeconds: number;
    dueAt: string | null;
    requiredAt: string | null;
    reason: string | null;
  } | null;
}

const iso = (d: Date | null) => (d ? d.toISOString() : null);

export function toNotificationView(row: NotificationRow): NotificationView {
  const message = row.message as { name?: string } | null;
  return {
    id: row.id,
    status: row.status,
    statusReason: row.status_reason,
    to: maskPhone(row.recipient),
    priority: row.priority,
    type: row.message_type,
    template: row.message_type === 'template' ? (message?.name ?? null) : null,
    templateCategory: row.template_category ?? null,
    sendAt: iso(row.send_at),
    metadata: row.metadata ?? null,
    attempts: row.attempts,
    wamid: row.wamid,
    error: row.error_class
      ? { class: row.error_class, code: row.error_code, message: row.error_message }
      : null,
    requestId: row.request_id,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
    queuedAt: iso(row.queued_at),
    sentAt: iso(row.sent_at),
    deliveredAt: iso(row.delivered_at),
    readAt: iso(row.read_at),
    failedAt: iso(row.failed_at),
    fallback:
      row.fallback_after_seconds === null || row.fallback_after_seconds === undefined
        ? null
        : {
            afterSeconds: row.fallback_after_seconds,
            dueAt: iso(row.fallback_due_at),
            requiredAt: iso(row.fallback_required_at),
            reason: row.fallback_reason,
          },
  };
}
