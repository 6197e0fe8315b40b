/**
 * Runs the fauxqs SQS emulator in process and creates the delivery queues and their DLQs with the
 * same attributes as the deployed ones, through the real AWS SDK.
 */
import { CreateQueueCommand, GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { startFauxqs } from 'fauxqs';
import type { Priority } from '#core/model/notification-request.ts';
import {
  DLQ_RETENTION_DAYS,
  deadLetterQueueName,
  MAX_RECEIVE_COUNT,
  PRIORITIES,
  QUEUE_RETENTION_DAYS,
  queueName,
  VISIBILITY_TIMEOUT_SECONDS,
} from '#core/notifications/queue-settings.ts';

export interface LocalQueues {
  endpoint: string;
  region: string;
  queueUrls: Record<Priority, string>;
  queueArns: Record<Priority, string>;
  deadLetterQueueUrls: Record<Priority, string>;
  stop(): Promise<void>;
}

export interface LocalSqsOptions {
  port?: number;
  /** Keeps queued messages across restarts (SQLite files under this folder). */
  dataDir?: string;
  stage?: string;
}

const REGION = 'us-east-1';
const DAY_SECONDS = 24 * 60 * 60;

/** Credentials the emulator accepts; it does not check them, the SDK just needs some. */
export const LOCAL_AWS_CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' };

export function localSqsClient(endpoint: string): SQSClient {
  return new SQSClient({ endpoint, region: REGION, credentials: LOCAL_AWS_CREDENTIALS });
}

export async function startLocalSqs(options: LocalSqsOptions = {}): Promise<LocalQueues> {
  const server = await startFauxqs({
    port: options.port ?? 0,
    logger: false,
    host: '127.0.0.1',
    ...(options.dataDir ? { dataDir: options.dataDir } : {}),
  });
  const endpoint = `http://127.0.0.1:${server.port}`;
  const sqs = localSqsClient(endpoint);
  const stage = options.stage ?? 'local';
  const queueUrls = {} as Record<Priority, string>;
  const queueArns = {} as Record<Priority, string>;
  const deadLetterQueueUrls = {} as Record<Priority, string>;
  try {
    for (const priority of PRIORITIES) {
      const dlq = await sqs.send(
        new CreateQueueCommand({
          QueueName: deadLetterQueueName(priority, stage),
          Attributes: { MessageRetentionPeriod: String(DLQ_RETENTION_DAYS * DAY_SECONDS) },
        }),
      );
      const dlqArn = await queueArn(sqs, dlq.QueueUrl!);
      const queue = await sqs.send(
        new CreateQueueCommand({
          QueueName: queueName(priority, stage),
          Attributes: {
            VisibilityTimeout: String(VISIBILITY_TIMEOUT_SECONDS),
            MessageRetentionPeriod: String(QUEUE_RETENTION_DAYS * DAY_SECONDS),
            RedrivePolicy: JSON.stringify({
              deadLetterTargetArn: dlqArn,
              maxReceiveCount: MAX_RECEIVE_COUNT,
            }),
          },
        }),
      );
      queueUrls[priority] = onEndpoint(queue.QueueUrl!, endpoint);
      queueArns[priority] = await queueArn(sqs, queue.QueueUrl!);
      deadLetterQueueUrls[priority] = onEndpoint(dlq.QueueUrl!, endpoint);
    }
  } finally {
    sqs.destroy();
  }
  return {
    endpoint,
    region: REGION,
    queueUrls,
    queueArns,
    deadLetterQueueUrls,
    stop: () => server.stop(),
  };
}

/** The emulator names queues `sqs.<region>.<host>`; keep the path, address the emulator directly. */
function onEndpoint(queueUrl: string, endpoint: string): string {
  return `${endpoint}${queueUrl.replace(/^[a-z]+:\/\/[^/]+/, '')}`;
}

async function queueArn(sqs: SQSClient, queueUrl: string): Promise<string> {
  const attributes = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }),
  );
  return attributes.Attributes!.QueueArn!;
}
