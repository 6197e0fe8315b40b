/**
 * Triage, the first stage and a pure one: from the records and their stored rows alone, settles
 * every record that must not be sent (bad body, missing row, duplicate in the batch, already
 * handled, cancelled, scheduled, claimed by another worker, opted out, template no longer
 * APPROVED) and passes the rest on as candidates.
 */

import { ALREADY_SENT_STATUSES } from '#core/model/lifecycle.ts';
import { WORKER_TIMEOUT_SECONDS } from '#core/notifications/queue-settings.ts';
import { SENDABLE_TEMPLATE_STATUS } from '#core/notifications/template-registry.ts';
import { isUuid } from '#core/platform/ids.ts';
import { Metric } from '#core/platform/metric-names.ts';
import {
  type Candidate,
  CLAIMABLE,
  type DeliveryRecord,
  infoLine,
  type LoadedRow,
  type Verdict,
} from './verdict.ts';

/** A `sending` claim younger than this belongs to a worker that may still be alive. */
export const STALE_CLAIM_SECONDS = WORKER_TIMEOUT_SECONDS + 5;
/**
 * How long, beyond STALE_CLAIM_SECONDS, a dead worker's claim waits for Meta's status webhook
 * (which settles it through the callback data) before the row is sent again. The default of the
 * CLAIM_GRACE_SECONDS setting; why two minutes is in the README (delivery guarantees).
 */
export const DEFAULT_CLAIM_GRACE_SECONDS = 120;

/** The age at which a `sending` claim may be taken over and the row sent again. */
export function reclaimAfterSeconds(graceSeconds: number = DEFAULT_CLAIM_GRACE_SECONDS): number {
  return STALE_CLAIM_SECONDS + graceSeconds;
}
/** How long a record waits when another worker claimed the same row between its load and claim. */
export const BUSY_RETRY_SECONDS = 30;

export interface Triage {
  /** Records decided here, in the order they were met. */
  settled: Verdict[];
  candidates: Candidate[];
}

export function triage(
  records: readonly DeliveryRecord[],
  rows: ReadonlyMap<string, LoadedRow>,
  now: Date,
  /** Claim age after which a `sending` row is sent again (reclaimAfterSeconds). */
  reclaimAfter: number = reclaimAfterSeconds(),
): Triage {
  const settled: Verdict[] = [];
  const candidates: Candidate[] = [];
  const valid = records.filter((record) => {
    if (isUuid(record.body)) return true;
    // Nothing we wrote looks like this; let it reach the DLQ where someone can look at it.
    settled.push({
      record,
      outcome: 'bad_body',
      log: {
        level: 'error',
        message: 'queue message body is not a notification id',
        fields: { messageId: record.messageId, requestId: record.requestId },
      },
    });
    return false;
  });
  const seen = new Set<string>();
  for (const record of valid) {
    const row = rows.get(record.body);
    if (!row) {
      settled.push({
        record,
        outcome: 'missing',
        log: {
          level: 'warn',
          message: 'no notification for queue message',
          fields: { notificationId: record.body, requestId: record.requestId },
        },
      });
      continue;
    }
    // Two messages for one row in a batch (a redelivery beside its original): only the first counts.
    if (seen.has(row.id)) {
      settled.push({ record, outcome: 'skipped_duplicate' });
      continue;
    }
    seen.add(row.id);
    const verdict = triageRow({ record, row }, now, reclaimAfter);
    if (verdict) settled.push(verdict);
    else candidates.push({ record, row });
  }
  return { settled, candidates };
}

/** What the row's own state says about one record: a verdict, or nothing when it may be sent. */
function triageRow(
  { record, row }: Candidate,
  now: Date,
  reclaimAfter: number,
): Verdict | undefined {
  if (
    (ALREADY_SENT_STATUSES as readonly string[]).includes(row.status) ||
    row.status === 'failed' ||
    row.status === 'skipped'
  ) {
    return {
      record,
      outcome: 'skipped_duplicate',
      metrics: [{ name: Metric.SkippedDuplicate, unit: 'Count', value: 1 }],
      log: infoLine(record, 'already handled; nothing sent', { status: row.status }),
    };
  }
  if (row.status === 'cancelled') {
    // The client cancelled it (or fallback did) after its message was queued: the message is
    // dropped here, and the claim's guard would refuse the row anyway.
    return { record, outcome: 'skipped', log: infoLine(record, 'cancelled; nothing sent') };
  }
  if (row.status === 'scheduled') {
    // The scheduler enqueues scheduled rows when they fall due; an early message is dropped.
    return { record, outcome: 'skipped' };
  }
  const claimAgeMs = now.getTime() - row.updated_at.getTime();
  if (row.status === 'sending' && claimAgeMs < reclaimAfter * 1000) {
    // Either a live worker is sending it, or a dead one's send awaits Meta's status, which settles
    // the row. Come back when the claim may be taken over (a second early: the claim's clock is
    // the database's), not before: a row a live worker records is then found settled.
    const untilReclaim = Math.ceil((reclaimAfter * 1000 - claimAgeMs) / 1000) + 1;
    return { record, outcome: 'busy', holdBackSeconds: Math.max(1, untilReclaim) };
  }
  if (row.opted_out) {
    return optedOut(record, row.id, 'opted_out', 'recipient opted out; skipped');
  }
  if (row.registry_status && row.registry_status !== SENDABLE_TEMPLATE_STATUS) {
    return templateBlocked(record, row, row.registry_status);
  }
  if (row.marketing_opted_out && isMarketingTemplate(row)) {
    return optedOut(
      record,
      row.id,
      'opted_out_marketing',
      'recipient stopped marketing messages; marketing template skipped',
    );
  }
  return undefined;
}

/** A send the recipient's opt-out stops: `skipped` with the opt-out's reason, counted alike. */
function optedOut(
  record: DeliveryRecord,
  id: string,
  reason: 'opted_out' | 'opted_out_marketing',
  message: string,
): Verdict {
  return {
    record,
    outcome: 'skipped',
    transition: { id, to: 'skipped', from: [...CLAIMABLE, 'sending'], reason },
    metrics: [{ name: Metric.SkippedOptOut, unit: 'Count', value: 1 }],
    log: infoLine(record, message),
  };
}

/**
 * A template Meta stopped after the notification was accepted (paused, disabled, deleted…): the
 * send would fail with 132001/132015/132016, so it ends `failed` now without a Graph API call. A
 * paused template is not waited for: a quality pause says recipients are blocking or reporting it,
 * it lasts hours (3 h, then 6 h, then the template is disabled), and a reminder or code sent that
 * late does more harm than good; the client hears at once and can send another template.
 */
function templateBlocked(record: DeliveryRecord, row: LoadedRow, status: string): Verdict {
  const template = row.message as { name?: unknown; language?: unknown } | null;
  const name = `${String(template?.name)} (${String(template?.language)})`;
  return {
    record,
    outcome: 'failed',
    transition: {
      id: row.id,
      to: 'failed',
      from: [...CLAIMABLE, 'sending'],
      reason: `template_${status.toLowerCase()}`,
      errorClass: 'template',
      errorCode: null,
      errorMessage: `template ${name} is ${status} in the template registry; not sent`,
    },
    metrics: [
      { name: Metric.NotificationsFailed, unit: 'Count', value: 1 },
      { name: Metric.NotificationsFailedByClass, unit: 'Count', value: 1, errorClass: 'template' },
      { name: Metric.TemplateFailures, unit: 'Count', value: 1 },
    ],
    log: {
      level: 'warn',
      message: 'template no longer approved; failed without a send',
      fields: {
        requestId: record.requestId,
        messageId: record.messageId,
        notificationId: row.id,
        templateStatus: status,
        errorClass: 'template',
      },
    },
  };
}

/** Whether a row sends a template the registry knows to be MARKETING. */
export function isMarketingTemplate(
  row: Pick<LoadedRow, 'message_type' | 'registry_category'>,
): boolean {
  return row.message_type === 'template' && row.registry_category === 'MARKETING';
}
