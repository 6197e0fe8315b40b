/**
 * The SQS chores written once for the functions, the ops CLI, the local stack, the benchmark and
 * the tests: a queue's depth, its ARN, SQS's batch calls cut into calls of ten (deleting what a
 * batch handled), and moving a message from one queue to another (a DLQ redrive).
 */
import {
  DeleteMessageBatchCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  type Message,
  type MessageAttributeValue,
  SendMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';

/** The most entries one SendMessageBatch, DeleteMessageBatch or ChangeMessageVisibilityBatch takes. */
export const SQS_BATCH_LIMIT = 10;

/** `items` cut into runs of SQS_BATCH_LIMIT, in order, one run per batch call. */
export function inSqsBatches<T>(items: readonly T[]): T[][] {
  const batches: T[][] = [];
  for (let start = 0; start < items.length; start += SQS_BATCH_LIMIT) {
    batches.push(items.slice(start, start + SQS_BATCH_LIMIT));
  }
  return batches;
}

/**
 * Deletes received messages by their receipt handles, ten to a call, as Lambda's event source does
 * with the records a batch did not report as failed. Entries SQS refuses stay on the queue and come
 * back after their visibility timeout, like any message not deleted.
 */
export async function deleteMessages(
  sqs: SQSClient,
  queueUrl: string,
  receiptHandles: readonly string[],
): Promise<void> {
  for (const batch of inSqsBatches(receiptHandles)) {
    await sqs.send(
      new DeleteMessageBatchCommand({
        QueueUrl: queueUrl,
        Entries: batch.map((handle, i) => ({ Id: String(i), ReceiptHandle: handle })),
      }),
    );
  }
}

/** SQS's approximate counts: waiting now, received and not yet deleted, waiting out a delay. */
export interface QueueDepth {
  visible: number;
  inFlight: number;
  delayed: number;
}

/** One GetQueueAttributes call for all three counts (each is approximate, as SQS says). */
export async function queueDepth(sqs: SQSClient, queueUrl: string): Promise<QueueDepth> {
  const answer = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: queueUrl,
      AttributeNames: [
        'ApproximateNumberOfMessages',
        'ApproximateNumberOfMessagesNotVisible',
        'ApproximateNumberOfMessagesDelayed',
      ],
    }),
  );
  const a = answer.Attributes ?? {};
  return {
    visible: Number(a.ApproximateNumberOfMessages ?? 0),
    inFlight: Number(a.ApproximateNumberOfMessagesNotVisible ?? 0),
    delayed: Number(a.ApproximateNumberOfMessagesDelayed ?? 0),
  };
}

/** Every message a queue holds, whatever its state. */
export function messagesOnQueue(depth: QueueDepth): number {
  return depth.visible + depth.inFlight + depth.delayed;
}

export async function queueArn(sqs: SQSClient, queueUrl: string): Promise<string> {
  const answer = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }),
  );
  const arn = answer.Attributes?.QueueArn;
  if (!arn) throw new Error(`SQS gave no ARN for the queue ${queueUrl}`);
  return arn;
}

/** A received message's attributes in the form SendMessage takes (string and binary values only). */
export function resendableAttributes(
  message: Message,
): Record<string, MessageAttributeValue> | undefined {
  const out: Record<string, MessageAttributeValue> = {};
  for (const [name, value] of Object.entries(message.MessageAttributes ?? {})) {
    if (value.StringValue !== undefined) {
      out[name] = { DataType: value.DataType ?? 'String', StringValue: value.StringValue };
    } else if (value.BinaryValue !== undefined) {
      out[name] = { DataType: value.DataType ?? 'Binary', BinaryValue: value.BinaryValue };
    }
  }
  return Object.keys(out).length ? out : undefined;
}

/**
 * Moves one received message (body and attributes) from `fromUrl` to `toUrl`: sent first, then
 * deleted, so a failure in between leaves it on both queues rather than on none (the worker sends
 * nothing twice for one notification).
 */
export async function moveMessage(
  sqs: SQSClient,
  message: Message,
  fromUrl: string,
  toUrl: string,
): Promise<void> {
  const attributes = resendableAttributes(message);
  await sqs.send(
    new SendMessageCommand({
      QueueUrl: toUrl,
      MessageBody: message.Body ?? '',
      ...(attributes ? { MessageAttributes: attributes } : {}),
    }),
  );
  await sqs.send(
    new DeleteMessageCommand({ QueueUrl: fromUrl, ReceiptHandle: message.ReceiptHandle! }),
  );
}
