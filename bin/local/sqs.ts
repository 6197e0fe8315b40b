/**
 * Runs the fauxqs SQS emulator in process and creates the delivery queues and their DLQs with the
 * same attributes as the deployed ones, through the real AWS SDK.
 */
import { CreateQueueCommand, SQSClient } from '@aws-sdk/client-sqs';
import { startFauxqs } from 'fauxqs';
import type { Priority } from '#core/model/notification-request.ts';
import {
  DLQ_RETENTION_DAYS,
  deadLetterQueueName,
  PRIORITIES,
  QUEUE_RETENTION_DAYS,
  queueName,
  redrivePolicy,
  VISIBILITY_TIMEOUT_SECONDS,
} from '#core/notifications/queue-settings.ts';
import { queueArn } from '#core/platform/sqs.ts';
import { listenOnLoopback } from './loopback.ts';

export interface LocalQueues {
  endpoint: string;
  region: string;
  queueUrls: Record<Priority, string>;
  queueArns: Record<Priority, string>;
  deadLetterQueueUrls: Record<Priority, string>;
  /** Where the emulator's server is bound: loopback only (see loopback.ts). */
  listenAddresses: string[];
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
  // fauxqs binds 0.0.0.0 whatever `host` says (that option names the host in queue URLs only):
  // started through the loopback guard, or not at all.
  const { started: server, addresses } = await listenOnLoopback(
    'the SQS emulator (fauxqs)',
    () =>
      startFauxqs({
        port: options.port ?? 0,
        logger: false,
        host: '127.0.0.1',
        ...(options.dataDir ? { dataDir: options.dataDir } : {}),
      }),
    (started) => started.stop(),
  );
  const endpoint = `http://127.0.0.1:${server.port}`;
  const sqs = localSqsClient(endpoint);
  const stage = options.stage ?? 'local';
  const queueUrls = {} as Record<Priority, string>;
  const queueArns = {} as Record<Priority, string>;
  const deadLetterQueueUrls = {} as Record<Priority, string>;
  try {
    for (const priority of PRIORITIES) {
      const queue = await createQueueWithDeadLetter(sqs, endpoint, {
        name: queueName(priority, stage),
        deadLetterName: deadLetterQueueName(priority, stage),
        attributes: { MessageRetentionPeriod: String(QUEUE_RETENTION_DAYS * DAY_SECONDS) },
        deadLetterAttributes: { MessageRetentionPeriod: String(DLQ_RETENTION_DAYS * DAY_SECONDS) },
      });
      queueUrls[priority] = queue.url;
      queueArns[priority] = queue.arn;
      deadLetterQueueUrls[priority] = queue.dlqUrl;
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
    listenAddresses: addresses,
    stop: () => server.stop(),
  };
}

/** The emulator names queues `sqs.<region>.<host>`; keep the path, address the emulator directly. */
export function onEndpoint(queueUrl: string, endpoint: string): string {
  return `${endpoint}${queueUrl.replace(/^[a-z]+:\/\/[^/]+/, '')}`;
}

export interface QueueWithDeadLetter {
  url: string;
  arn: string;
  dlqUrl: string;
  dlqArn: string;
}

/**
 * A queue and its DLQ on the emulator, redriven after MAX_RECEIVE_COUNT receives as the deployed
 * queues are (queue-settings.ts): the local stack's queues and each delivery test's own.
 */
export async function createQueueWithDeadLetter(
  sqs: SQSClient,
  endpoint: string,
  options: {
    name: string;
    deadLetterName: string;
    attributes?: Record<string, string>;
    deadLetterAttributes?: Record<string, string>;
  },
): Promise<QueueWithDeadLetter> {
  const dlq = await sqs.send(
    new CreateQueueCommand({
      QueueName: options.deadLetterName,
      ...(options.deadLetterAttributes ? { Attributes: options.deadLetterAttributes } : {}),
    }),
  );
  const dlqUrl = onEndpoint(dlq.QueueUrl!, endpoint);
  const dlqArn = await queueArn(sqs, dlqUrl);
  const queue = await sqs.send(
    new CreateQueueCommand({
      QueueName: options.name,
      Attributes: {
        VisibilityTimeout: String(VISIBILITY_TIMEOUT_SECONDS),
        ...options.attributes,
        RedrivePolicy: redrivePolicy(dlqArn),
      },
    }),
  );
  const url = onEndpoint(queue.QueueUrl!, endpoint);
  return { url, arn: await queueArn(sqs, url), dlqUrl, dlqArn };
}
