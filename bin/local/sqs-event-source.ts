/**
 * The local stand-in for Lambda's SQS event source: long-polls a queue, hands batches to the worker
 * handler as SQS events, deletes only what succeeded (honouring `batchItemFailures`), and leaves the
 * rest to come back after their visibility timeout, as AWS does.
 */
import { type Message, ReceiveMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { RECEIVE_WAIT_SECONDS, WORKER_BATCH_SIZE } from '#core/notifications/queue-settings.ts';
import { deleteMessages } from '#core/platform/sqs.ts';
import { localLambdaContext } from './lambda-context.ts';

export type SqsHandler = (
  event: SQSEvent,
  context: Context,
) => Promise<SQSBatchResponse | undefined>;

export interface EventSourceOptions {
  sqs: SQSClient;
  queueUrl: string;
  queueArn: string;
  handler: SqsHandler;
  /** Concurrent pollers, like the event source's maximum concurrency. */
  concurrency: number;
  batchSize?: number;
  waitSeconds?: number;
  /**
   * Like the event source's MaximumBatchingWindowInSeconds: after a receive that brought fewer
   * than batchSize messages, keep receiving for up to this long to fill the batch. Fuller batches
   * at low traffic mean fewer database round trips per notification, at up to this much latency.
   * Default 0: hand over whatever the first receive brought.
   */
  batchWindowMs?: number;
  onError?: (error: unknown) => void;
}

export interface EventSource {
  stop(): Promise<void>;
  /** Batches handed to the handler so far. */
  invocations(): number;
}

export function toSqsRecord(message: Message, queueArn: string): SQSRecord {
  const attributes = message.Attributes ?? {};
  const messageAttributes: SQSRecord['messageAttributes'] = {};
  for (const [name, value] of Object.entries(message.MessageAttributes ?? {})) {
    messageAttributes[name] = {
      dataType: value.DataType ?? 'String',
      ...(value.StringValue !== undefined ? { stringValue: value.StringValue } : {}),
    } as SQSRecord['messageAttributes'][string];
  }
  return {
    messageId: message.MessageId!,
    receiptHandle: message.ReceiptHandle!,
    body: message.Body ?? '',
    attributes: {
      ApproximateReceiveCount: attributes.ApproximateReceiveCount ?? '1',
      SentTimestamp: attributes.SentTimestamp ?? String(Date.now()),
      SenderId: attributes.SenderId ?? 'local',
      ApproximateFirstReceiveTimestamp:
        attributes.ApproximateFirstReceiveTimestamp ?? String(Date.now()),
    },
    messageAttributes,
    md5OfBody: message.MD5OfBody ?? '',
    eventSource: 'aws:sqs',
    eventSourceARN: queueArn,
    awsRegion: queueArn.split(':')[3] ?? 'us-east-1',
  };
}

export function startSqsEventSource(options: EventSourceOptions): EventSource {
  const controller = new AbortController();
  let invocations = 0;
  const batchSize = options.batchSize ?? WORKER_BATCH_SIZE;
  const receive = (max: number, waitSeconds: number, abortSignal?: AbortSignal) =>
    options.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: options.queueUrl,
        MaxNumberOfMessages: max,
        WaitTimeSeconds: waitSeconds,
        MessageSystemAttributeNames: ['All'],
        MessageAttributeNames: ['All'],
      }),
      abortSignal ? { abortSignal } : {},
    );
  /** Tops a batch up within the batching window; every message received is handed over. */
  const fillBatch = async (messages: Message[]) => {
    const windowMs = options.batchWindowMs ?? 0;
    if (windowMs <= 0) return;
    const deadline = Date.now() + windowMs;
    while (messages.length < batchSize && !controller.signal.aborted) {
      const left = deadline - Date.now();
      if (left <= 0) break;
      let more: Awaited<ReturnType<typeof receive>>;
      try {
        // Whole seconds only: wait 1 s at most, or not at all when less than that is left.
        more = await receive(batchSize - messages.length, left >= 1000 ? 1 : 0);
      } catch {
        // The messages in hand go to the handler; the failure shows on the next receive.
        return;
      }
      messages.push(...(more.Messages ?? []));
      if (!more.Messages?.length && left < 1000) {
        await new Promise((resolve) => setTimeout(resolve, Math.min(left, 50)));
      }
    }
  };
  const loop = async () => {
    while (!controller.signal.aborted) {
      try {
        const received = await receive(
          batchSize,
          options.waitSeconds ?? RECEIVE_WAIT_SECONDS,
          controller.signal,
        );
        const messages = received.Messages ?? [];
        if (messages.length === 0) continue;
        await fillBatch(messages);
        invocations += 1;
        const records = messages.map((m) => toSqsRecord(m, options.queueArn));
        let failed: Set<string>;
        try {
          const response = await options.handler(
            { Records: records },
            localLambdaContext('worker'),
          );
          failed = new Set((response?.batchItemFailures ?? []).map((f) => f.itemIdentifier));
        } catch (error) {
          // A thrown handler fails the whole batch: nothing is deleted.
          options.onError?.(error);
          continue;
        }
        const done = records.filter((r) => !failed.has(r.messageId));
        await deleteMessages(
          options.sqs,
          options.queueUrl,
          done.map((r) => r.receiptHandle),
        );
      } catch (error) {
        if (controller.signal.aborted) return;
        options.onError?.(error);
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    }
  };
  const loops = Array.from({ length: options.concurrency }, () => loop());
  return {
    invocations: () => invocations,
    stop: async () => {
      controller.abort();
      await Promise.allSettled(loops);
    },
  };
}
