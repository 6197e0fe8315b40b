/** Putting notifications on the delivery queues: the message body is the id, the request id rides along. */
import { SendMessageBatchCommand, SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { Priority } from './notification-request.ts';

export interface QueueTargets {
  sqs: SQSClient;
  queueUrls: Record<Priority, string>;
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

export async function enqueueNotification(
  targets: QueueTargets,
  item: QueuedNotification,
): Promise<void> {
  await targets.sqs.send(
    new SendMessageCommand({
      QueueUrl: targets.queueUrls[item.priority],
      MessageBody: item.id,
      MessageAttributes: messageAttributes(item.requestId),
      ...(item.delaySeconds ? { DelaySeconds: item.delaySeconds } : {}),
    }),
  );
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
 * Sends messages ten to a SendMessageBatch call per queue. Returns the indexes of the messages
 * that did not make it onto their queue (a rejected entry or a failed call).
 */
export async function sendToQueues(
  sqs: SQSClient,
  messages: readonly QueueMessage[],
): Promise<Set<number>> {
  const failed = new Set<number>();
  const byQueue = new Map<string, number[]>();
  for (const [index, message] of messages.entries()) {
    const indexes = byQueue.get(message.queueUrl) ?? [];
    indexes.push(index);
    byQueue.set(message.queueUrl, indexes);
  }
  const calls: Promise<void>[] = [];
  for (const [queueUrl, indexes] of byQueue) {
    for (let start = 0; start < indexes.length; start += 10) {
      const chunk = indexes.slice(start, start + 10);
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
            for (const f of result.Failed ?? []) failed.add(Number(f.Id));
          })
          .catch(() => {
            for (const index of chunk) failed.add(index);
          }),
      );
    }
  }
  await Promise.all(calls);
  return failed;
}

/**
 * Enqueues many notifications on their priority's queue. Returns the ids that did not make it
 * onto a queue, so the caller leaves those rows for the outbox sweep.
 */
export async function enqueueNotifications(
  targets: QueueTargets,
  items: readonly QueuedNotification[],
): Promise<Set<string>> {
  const failed = await sendToQueues(
    targets.sqs,
    items.map((item) => ({
      queueUrl: targets.queueUrls[item.priority],
      body: item.id,
      requestId: item.requestId,
      delaySeconds: item.delaySeconds,
    })),
  );
  return new Set([...failed].map((index) => items[index]!.id));
}
