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

/**
 * Enqueues many notifications, ten to a SendMessageBatch call per queue. Returns the ids that did
 * not make it onto a queue, so the caller leaves those rows for the outbox sweep.
 */
export async function enqueueNotifications(
  targets: QueueTargets,
  items: readonly QueuedNotification[],
): Promise<Set<string>> {
  const failed = new Set<string>();
  const calls: Promise<void>[] = [];
  for (const priority of ['high', 'bulk'] as const) {
    const forQueue = items.filter((i) => i.priority === priority);
    for (let start = 0; start < forQueue.length; start += 10) {
      const chunk = forQueue.slice(start, start + 10);
      calls.push(
        targets.sqs
          .send(
            new SendMessageBatchCommand({
              QueueUrl: targets.queueUrls[priority],
              Entries: chunk.map((item, index) => ({
                Id: String(index),
                MessageBody: item.id,
                MessageAttributes: messageAttributes(item.requestId),
                ...(item.delaySeconds ? { DelaySeconds: item.delaySeconds } : {}),
              })),
            }),
          )
          .then((result) => {
            for (const f of result.Failed ?? []) {
              const item = chunk[Number(f.Id)];
              if (item) failed.add(item.id);
            }
          })
          .catch(() => {
            for (const item of chunk) failed.add(item.id);
          }),
      );
    }
  }
  await Promise.all(calls);
  return failed;
}
