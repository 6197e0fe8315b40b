/**
 * Queue feedback, the last stage: held-back records go back on their queue as new delayed
 * messages, retries are hidden for their backoff, and the batch answer names the records SQS must
 * keep (`batchItemFailures`); everything else is deleted by the event source.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import { ChangeMessageVisibilityBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { MAX_VISIBILITY_SECONDS } from '#core/delivery/backoff.ts';
import { sendToQueues } from '#core/notifications/enqueue.ts';
import { SQS_MAX_DELAY_SECONDS } from '#core/notifications/queue-settings.ts';
import type { DeliveryRecord, Verdict } from './verdict.ts';

export interface BatchItemFailure {
  itemIdentifier: string;
}

export interface QueueFeedbackPlan {
  /** messageId → seconds the message stays hidden before SQS offers it again. */
  visibility: Map<string, number>;
  batchItemFailures: BatchItemFailure[];
}

export async function feedBackToQueue(
  deps: { sqs: SQSClient; logger: Logger },
  records: readonly DeliveryRecord[],
  verdicts: readonly Verdict[],
): Promise<BatchItemFailure[]> {
  const requeued = await requeue(deps, records, verdicts);
  const plan = planQueueFeedback(records, verdicts, requeued);
  await changeVisibility(deps, records, plan.visibility);
  return plan.batchItemFailures;
}

/**
 * Pure. A record stays on the queue (reported failed) when it is retried, when it was held back
 * and could not be re-queued, or when its body is bad (so that it reaches the DLQ). A held-back
 * record that stays keeps its wait as visibility, the last resort, within SQS's 12 h ceiling.
 */
export function planQueueFeedback(
  records: readonly DeliveryRecord[],
  verdicts: readonly Verdict[],
  requeued: ReadonlySet<string>,
): QueueFeedbackPlan {
  const byMessage = new Map(verdicts.map((v) => [v.record.messageId, v]));
  const visibility = new Map<string, number>();
  const batchItemFailures: BatchItemFailure[] = [];
  for (const record of records) {
    const verdict = byMessage.get(record.messageId);
    if (!verdict) continue;
    const stranded = verdict.holdBackSeconds !== undefined && !requeued.has(record.messageId);
    if (verdict.retryAfterSeconds !== undefined) {
      visibility.set(record.messageId, verdict.retryAfterSeconds);
    } else if (stranded) {
      visibility.set(
        record.messageId,
        Math.min(MAX_VISIBILITY_SECONDS, verdict.holdBackSeconds ?? 0),
      );
    }
    if (stranded || verdict.outcome === 'retry' || verdict.outcome === 'bad_body') {
      batchItemFailures.push({ itemIdentifier: record.messageId });
    }
  }
  return { visibility, batchItemFailures };
}

/**
 * Puts held-back records back on their queue as new messages delayed by their wait; returns the
 * message ids that made it (the originals are then deleted). If the send succeeds and the delete
 * does not, two messages carry one id, and the second finds the row sent or claimed.
 */
async function requeue(
  deps: { sqs: SQSClient; logger: Logger },
  records: readonly DeliveryRecord[],
  verdicts: readonly Verdict[],
): Promise<Set<string>> {
  const waits = new Map(verdicts.map((v) => [v.record.messageId, v.holdBackSeconds]));
  const held = records.filter((r) => waits.get(r.messageId) !== undefined);
  if (held.length === 0) return new Set();
  const failed = await sendToQueues(
    deps.sqs,
    held.map((record) => ({
      queueUrl: record.queueUrl,
      body: record.body,
      requestId: record.requestId,
      delaySeconds: Math.min(SQS_MAX_DELAY_SECONDS, Math.max(1, waits.get(record.messageId)!)),
    })),
  );
  if (failed.size > 0) {
    deps.logger.warn('could not re-queue held-back records; they stay on the queue', {
      count: failed.size,
    });
  }
  return new Set(held.filter((_, index) => !failed.has(index)).map((r) => r.messageId));
}

/** One ChangeMessageVisibilityBatch call per queue and ten messages, SQS's batch limit. */
async function changeVisibility(
  deps: { sqs: SQSClient; logger: Logger },
  records: readonly DeliveryRecord[],
  visibility: ReadonlyMap<string, number>,
) {
  const byQueue = new Map<
    string,
    { Id: string; ReceiptHandle: string; VisibilityTimeout: number }[]
  >();
  for (const record of records) {
    const seconds = visibility.get(record.messageId);
    if (seconds === undefined) continue;
    const entries = byQueue.get(record.queueUrl) ?? [];
    entries.push({
      Id: String(entries.length),
      ReceiptHandle: record.receiptHandle,
      VisibilityTimeout: seconds,
    });
    byQueue.set(record.queueUrl, entries);
  }
  await Promise.all(
    [...byQueue].flatMap(([queueUrl, entries]) => {
      const calls = [];
      for (let i = 0; i < entries.length; i += 10) {
        calls.push(
          deps.sqs
            .send(
              new ChangeMessageVisibilityBatchCommand({
                QueueUrl: queueUrl,
                Entries: entries.slice(i, i + 10),
              }),
            )
            .catch((error: unknown) =>
              // The record is still reported failed, so it comes back after the queue's own visibility timeout.
              deps.logger.warn('could not set the retry delay', {
                error: error instanceof Error ? error.name : String(error),
              }),
            ),
        );
      }
      return calls;
    }),
  );
}
