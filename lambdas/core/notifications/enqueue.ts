/** Putting notifications on the delivery queues: the message body is the id, the request id rides along. */
import { SendMessageBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { Priority } from '#core/model/notification-request.ts';
import type { QueueConfig } from '#core/platform/config.ts';
import { inSqsBatches } from '#core/platform/sqs.ts';

export interface QueueTargets {
  sqs: SQSClient;
  queueUrls: Record<Priority, string>;
}

/** The delivery queues named by the configuration, reached with the given client. */
export function queueTargets(sqs: SQSClient, config: QueueConfig): QueueTargets {
  return { sqs, queueUrls: { high: config.HIGH_QUEUE_URL, bulk: config.BULK_QUEUE_URL } };
}

export interface QueuedNotification {
  id: string;
  priority: Priority;
  requestId: string;
  /** Seconds SQS holds the message back (0–900), for scheduled sends that fall due within minutes. */
  delaySeconds?: number;
}

function messageAttributes(requestId: string) {
  return { requestId: { DataType: 'String', StringValue: requestId } };
}

/** One message for any of the delivery queues. */
export interface QueueMessage {
  queueUrl: string;
  /** The notification id. */
  body: string;
  requestId?: string | undefined;
  /** 0–900 seconds. */
  delaySeconds?: number | undefined;
}

/**
 * Sends messages ten to a SendMessageBatch call per queue. Returns the messages that did not make
 * it onto their queue, by index, with why: the entry's error code, or the failed call's error name.
 */
export async function sendToQueues(
  sqs: SQSClient,
  messages: readonly QueueMessage[],
): Promise<Map<number, string>> {
  const failed = new Map<number, string>();
  const byQueue = new Map<string, number[]>();
  for (const [index, message] of messages.entries()) {
    const indexes = byQueue.get(message.queueUrl) ?? [];
    indexes.push(index);
    byQueue.set(message.queueUrl, indexes);
  }
  const calls: Promise<void>[] = [];
  for (const [queueUrl, indexes] of byQueue) {
    for (const chunk of inSqsBatches(indexes)) {
      calls.push(
        sqs
          .send(
            new SendMessageBatchCommand({
              QueueUrl: queueUrl,
              Entries: chunk.map((index) => {
                const message = messages[index]!;
                return {
                  Id: String(index),
                  MessageBody: message.body,
                  ...(message.requestId
                    ? { MessageAttributes: messageAttributes(message.requestId) }
                    : {}),
                  ...(message.delaySeconds ? { DelaySeconds: message.delaySeconds } : {}),
                };
              }),
            }),
          )
          .then((result) => {
            for (const f of result.Failed ?? []) failed.set(Number(f.Id), f.Code ?? 'Failed');
          })
          .catch((error: unknown) => {
            const reason = error instanceof Error ? error.name : String(error);
            for (const index of chunk) failed.set(index, reason);
          }),
      );
    }
  }
  await Promise.all(calls);
  return failed;
}

/**
 * Enqueues many notifications on their priority's queue. Returns the ids that did not make it
 * onto a queue, with why, so the caller leaves those rows for the outbox sweep.
 */
export async function enqueueNotifications(
  targets: QueueTargets,
  items: readonly QueuedNotification[],
): Promise<Map<string, string>> {
  const failed = await sendToQueues(
    targets.sqs,
    items.map((item) => ({
      queueUrl: targets.queueUrls[item.priority],
      body: item.id,
      requestId: item.requestId,
      delaySeconds: item.delaySeconds,
    })),
  );
  return new Map([...failed].map(([index, reason]) => [items[index]!.id, reason]));
}
