/**
 * Client callbacks in AWS: the dispatcher function on its own SQS queue (with a DLQ), the
 * one-minute schedule that drops a drain message on that queue, and the stack's EventBridge bus
 * the dispatcher also puts every client event on. Separate from the delivery queues and worker, so
 * a slow or dead client endpoint never holds up a send.
 */
import { Duration, type RemovalPolicy } from 'aws-cdk-lib';
import { EventBus, Rule, RuleTargetInput, Schedule } from 'aws-cdk-lib/aws-events';
import { SqsQueue } from 'aws-cdk-lib/aws-events-targets';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import type { Database } from './database.ts';
import type { Network } from './network.ts';
import { NotifFunction } from './notif-function.ts';

/** How long one invocation keeps draining; the schedule starts the next one a minute later. */
export const CALLBACK_DRAIN_SECONDS = 50;
/** A drain, its last post (10 s) and the margin the handler keeps before its deadline. */
export const DISPATCHER_TIMEOUT_SECONDS = 90;
/** A drain message that failed this many times goes to the DLQ (and the alarm fires). */
export const CALLBACK_MAX_RECEIVE_COUNT = 3;

export interface CallbackDispatchProps {
  prefix: string;
  network: Network;
  database: Database;
  /** The environment every function starts with (Functions.baseEnvironment). */
  baseEnvironment: Record<string, string>;
  logRemovalPolicy: RemovalPolicy;
}

export class CallbackDispatch extends Construct {
  readonly queue: Queue;
  readonly deadLetterQueue: Queue;
  readonly bus: EventBus;
  readonly dispatcher: NotifFunction;
  readonly eventSource: SqsEventSource;

  constructor(scope: Construct, id: string, props: CallbackDispatchProps) {
    super(scope, id);
    this.bus = new EventBus(this, 'Bus', { eventBusName: props.prefix });
    this.deadLetterQueue = new Queue(this, 'Dlq', {
      queueName: `${props.prefix}-callbacks-dlq`,
      retentionPeriod: Duration.days(14),
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
    });
    this.queue = new Queue(this, 'Queue', {
      queueName: `${props.prefix}-callbacks`,
      // A drain tick is worth nothing after a few minutes: the next one is already on its way.
      retentionPeriod: Duration.hours(1),
      // Lambda's advice for an SQS source: six times the function timeout.
      visibilityTimeout: Duration.seconds(6 * DISPATCHER_TIMEOUT_SECONDS),
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: CALLBACK_MAX_RECEIVE_COUNT },
    });

    this.dispatcher = new NotifFunction(this, 'dispatcher', {
      name: 'dispatcher',
      prefix: props.prefix,
      description: 'Client callbacks: signed posts from the outbox, EventBridge events',
      vpc: props.network.vpc,
      securityGroup: props.network.functionSecurityGroup,
      environment: {
        ...props.baseEnvironment,
        ...props.database.connectionEnvironment('dispatcher'),
        EVENT_BUS_NAME: this.bus.eventBusName,
        CALLBACK_DRAIN_SECONDS: String(CALLBACK_DRAIN_SECONDS),
      },
      timeout: Duration.seconds(DISPATCHER_TIMEOUT_SECONDS),
      memorySize: 512,
      logRemovalPolicy: props.logRemovalPolicy,
    });
    props.database.grantConnect(this.dispatcher, 'dispatcher');
    this.bus.grantPutEventsTo(this.dispatcher);
    this.eventSource = new SqsEventSource(this.queue, {
      batchSize: 1,
      // Two drains at most: SKIP LOCKED lets them share the outbox, more would only add connections.
      maxConcurrency: 2,
      reportBatchItemFailures: false,
    });
    this.dispatcher.addEventSource(this.eventSource);

    new Rule(this, 'DrainTick', {
      ruleName: `${props.prefix}-callbacks-tick`,
      description: 'Drops a drain message on the callback queue every minute',
      schedule: Schedule.rate(Duration.minutes(1)),
      targets: [
        new SqsQueue(this.queue, { message: RuleTargetInput.fromObject({ kind: 'drain' }) }),
      ],
    });
  }
}
