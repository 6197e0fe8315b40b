/**
 * The local stand-in for Lambda's SQS event source: long-polls a queue, hands batches to the worker
 * handler as SQS events, deletes only what succeeded (honouring `batchItemFailures`), and leaves the
 * rest to come back after their visibility timeout, as AWS does.
 */
import {
  DeleteMessageBatchCommand,
  type Message,
  ReceiveMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { RECEIVE_WAIT_SECONDS, WORKER_BATCH_SIZE } from '../../lambdas/core/queues.ts';
import { localLambdaContext } from './lambda-context.ts';

export type SqsHandler = (event: SQSEvent, context: Context) => Promise<SQSBatchResponse | void>;

export interface EventSourceOptions {
  sqs: SQSClient;
  queueUrl: string;
  queueArn: string;
  handler: SqsHandler;
  /** Concurrent pollers, like the event source's maximum concurrency. */
  concurrency: number;
  batchSize?: number;
  waitSeconds?: number;
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
  const loop = async () => {
    while (!controller.signal.aborted) {
      try {
        const received = await options.sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: options.queueUrl,
            MaxNumberOfMessages: options.batchSize ?? WORKER_BATCH_SIZE,
            WaitTimeSeconds: options.waitSeconds ?? RECEIVE_WAIT_SECONDS,
            MessageSystemAttributeNames: ['All'],
            MessageAttributeNames: ['All'],
          }),
          { abortSignal: controller.signal },
        );
        const messages = received.Messages ?? [];
        if (messages.length === 0) continue;
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
        if (done.length > 0) {
          await options.sqs.send(
            new DeleteMessageBatchCommand({
              QueueUrl: options.queueUrl,
              Entries: done.map((r, i) => ({ Id: String(i), ReceiptHandle: r.receiptHandle })),
            }),
          );
        }
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
