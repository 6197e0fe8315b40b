/** The notification lifecycle: statuses, their order, and which moves are allowed (DESIGN §2). */

export const NOTIFICATION_STATUSES = [
  'scheduled',
  'accepted',
  'queued',
  'sending',
  'sent',
  'delivered',
  'read',
  'failed',
  'skipped',
  'deferred',
  'cancelled',
] as const;

export type NotificationStatus = (typeof NOTIFICATION_STATUSES)[number];

/** Statuses Meta reports on the webhook, in the order a message moves through them. */
export const DELIVERY_PROGRESS = ['sent', 'delivered', 'read'] as const;
export type DeliveryProgress = (typeof DELIVERY_PROGRESS)[number];

/** Rows in these statuses may be claimed by the worker for a send attempt. */
export const SENDABLE_STATUSES = ['accepted', 'queued', 'sending', 'deferred'] as const;

/** Once a row is here, a redelivered queue message must not send it again. */
export const ALREADY_SENT_STATUSES = ['sent', 'delivered', 'read'] as const;

/** Nothing moves a row out of these. */
export const TERMINAL_STATUSES = ['read', 'failed', 'skipped', 'cancelled'] as const;

/**
 * A client may cancel a notification only while nothing has started sending it: from `sending` on,
 * Meta may already have the message, and a cancel could not keep its promise.
 */
export const CANCELLABLE_STATUSES = ['scheduled', 'accepted', 'queued', 'deferred'] as const;

/**
 * The statuses from which a webhook status may move a row to `target`. Moves only go forward:
 * a late `sent` never overwrites `delivered` or `read`, and `failed` from Meta can only land on a
 * message that has not yet been delivered.
 */
export function webhookPredecessors(
  target: DeliveryProgress | 'failed',
): readonly NotificationStatus[] {
  // `deferred` is here for a send Meta accepted whose answer was lost, parked by panic mode before
  // its status came: the callback data ties the status to it (apply-status-update.ts). No other
  // deferred row has a wamid, so no other status can match one.
  switch (target) {
    case 'sent':
      return ['sending', 'queued', 'deferred'];
    case 'delivered':
      return ['sending', 'queued', 'deferred', 'sent'];
    case 'read':
      return ['sending', 'queued', 'deferred', 'sent', 'delivered'];
    case 'failed':
      return ['sending', 'queued', 'deferred', 'sent'];
  }
}

/** True when a webhook status `next` may replace `current`. */
export function isForwardMove(
  current: NotificationStatus,
  next: DeliveryProgress | 'failed',
): boolean {
  return webhookPredecessors(next).includes(current);
}
