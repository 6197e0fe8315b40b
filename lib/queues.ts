/**
 * The two delivery queues (high, bulk), each with its dead-letter queue, built from the settings
 * the local emulator also uses (lambdas/core/notifications/queue-settings.ts) so both behave alike.
 */
import { Duration } from 'aws-cdk-lib';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import type { Priority } from '#core/model/notification-request.ts';
import {
  DLQ_RETENTION_DAYS,
  deadLetterQueueName,
  MAX_RECEIVE_COUNT,
  PRIORITIES,
  QUEUE_RETENTION_DAYS,
  queueName,
  RECEIVE_WAIT_SECONDS,
  VISIBILITY_TIMEOUT_SECONDS,
} from '#core/notifications/queue-settings.ts';

export interface DeliveryQueue {
  queue: Queue;
  deadLetterQueue: Queue;
}

export class DeliveryQueues extends Construct {
  readonly byPriority: Record<Priority, DeliveryQueue>;

  constructor(scope: Construct, id: string, props: { stage: string }) {
    super(scope, id);
    const make = (priority: Priority): DeliveryQueue => {
      const deadLetterQueue = new Queue(this, `${priority}Dlq`, {
        queueName: deadLetterQueueName(priority, props.stage),
        retentionPeriod: Duration.days(DLQ_RETENTION_DAYS),
        encryption: QueueEncryption.SQS_MANAGED,
        enforceSSL: true,
      });
      const queue = new Queue(this, `${priority}Queue`, {
        queueName: queueName(priority, props.stage),
        retentionPeriod: Duration.days(QUEUE_RETENTION_DAYS),
        visibilityTimeout: Duration.seconds(VISIBILITY_TIMEOUT_SECONDS),
        receiveMessageWaitTime: Duration.seconds(RECEIVE_WAIT_SECONDS),
        encryption: QueueEncryption.SQS_MANAGED,
        enforceSSL: true,
        deadLetterQueue: { queue: deadLetterQueue, maxReceiveCount: MAX_RECEIVE_COUNT },
      });
      return { queue, deadLetterQueue };
    };
    const entries = PRIORITIES.map((p) => [p, make(p)] as const);
    this.byPriority = Object.fromEntries(entries) as Record<Priority, DeliveryQueue>;
  }
}
