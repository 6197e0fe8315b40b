/** Small factories for the delivery pipeline's pure stages: a queue record, a stored row, a claim. */
import type { Claimed } from '#core/delivery/pipeline/claim.ts';
import type { Sent } from '#core/delivery/pipeline/send.ts';
import type { DeliveryRecord, LoadedRow } from '#core/delivery/pipeline/verdict.ts';
import type { SendResult } from '#core/whatsapp/graph-client.ts';

export const NOW = new Date('2026-03-02T10:00:00.000Z');
/** A sandbox test number: never a real person's. */
export const RECIPIENT = '+573000000099';

let counter = 0;

/** A notification id in the shape the API makes (a version 7 UUID). */
export function notificationId(): string {
  counter += 1;
  return `0195f0c4-1c2b-7a3d-8e4f-${counter.toString(16).padStart(12, '0')}`;
}

export function queueRecord(overrides: Partial<DeliveryRecord> = {}): DeliveryRecord {
  counter += 1;
  return {
    messageId: `message-${counter}`,
    receiptHandle: `receipt-${counter}`,
    body: notificationId(),
    receiveCount: 1,
    requestId: `request-${counter}`,
    queueUrl: 'http://localhost:9324/000000000000/notifications-high',
    ...overrides,
  };
}

export function storedRow(id: string, overrides: Partial<LoadedRow> = {}): LoadedRow {
  return {
    id,
    client_id: 'client-1',
    idempotency_key: null,
    request_hash: null,
    response: null,
    request_id: 'request-1',
    recipient: RECIPIENT,
    sender_id: null,
    priority: 'high',
    message_type: 'template',
    message: { name: 'hello_world', language: 'en_US' },
    metadata: null,
    status: 'queued',
    status_reason: null,
    send_at: null,
    attempts: 0,
    circuit_opens: 0,
    wamid: null,
    error_class: null,
    error_code: null,
    error_message: null,
    next_attempt_at: null,
    created_at: NOW,
    updated_at: NOW,
    queued_at: NOW,
    template_category: null,
    sent_at: null,
    delivered_at: null,
    read_at: null,
    redacted_at: null,
    failed_at: null,
    fallback_after_seconds: null,
    fallback_due_at: null,
    event_sequence: 1,
    fallback_required_at: null,
    fallback_reason: null,
    opted_out: false,
    ...overrides,
  };
}

/** A record and its row, as triage passes them on. */
export function candidate(
  overrides: { record?: Partial<DeliveryRecord>; row?: Partial<LoadedRow> } = {},
) {
  const record = queueRecord(overrides.record);
  return { record, row: storedRow(record.body, overrides.row) };
}

export function claimed(attempt = 1, receiveCount = 1): Claimed {
  return { ...candidate({ record: { receiveCount } }), attempt };
}

export function sent(
  result: SendResult,
  options: { attempt?: number; receiveCount?: number } = {},
): Sent {
  return { ...claimed(options.attempt, options.receiveCount), result };
}
