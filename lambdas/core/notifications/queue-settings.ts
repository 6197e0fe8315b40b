/**
 * Queue settings shared by the CDK stack and the local stack, so the emulator behaves like the
 * deployed queues: names, batch size, visibility and redrive.
 */
import type { Priority } from '#core/model/notification-request.ts';

export const PRIORITIES = ['high', 'bulk'] as const satisfies readonly Priority[];

/** The worker Lambda's timeout. The queue's visibility timeout must be at least six times this. */
export const WORKER_TIMEOUT_SECONDS = 30;
export const VISIBILITY_TIMEOUT_SECONDS = 6 * WORKER_TIMEOUT_SECONDS;
/** Receives before SQS moves a message to its DLQ. */
export const MAX_RECEIVE_COUNT = 5;
export const WORKER_BATCH_SIZE = 10;
/** SQS's longest message delay (DelaySeconds). */
export const SQS_MAX_DELAY_SECONDS = 900;
/** Long-polling wait of the event source. */
export const RECEIVE_WAIT_SECONDS = 20;
export const QUEUE_RETENTION_DAYS = 4;
/** DLQs keep messages longer than their source so a redrive is never too late. */
export const DLQ_RETENTION_DAYS = 14;

export function queueName(priority: Priority, stage: string): string {
  return `whatsapp-notif-${stage}-${priority}`;
}

export function deadLetterQueueName(priority: Priority, stage: string): string {
  return `whatsapp-notif-${stage}-${priority}-dlq`;
}

/** The source queue's RedrivePolicy attribute: after MAX_RECEIVE_COUNT receives, to the DLQ. */
export function redrivePolicy(deadLetterQueueArn: string): string {
  return JSON.stringify({
    deadLetterTargetArn: deadLetterQueueArn,
    maxReceiveCount: MAX_RECEIVE_COUNT,
  });
}
