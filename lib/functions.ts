/**
 * The five functions, what starts them (API Gateway is wired in api.ts; here the SQS event sources,
 * the one-minute schedule and the deploy-time migration trigger) and what each may touch.
 */
import { ArnFormat, Duration, type RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Rule, Schedule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import { Grant } from 'aws-cdk-lib/aws-iam';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import { InvocationType, Trigger } from 'aws-cdk-lib/triggers';
import { Construct } from 'constructs';
import { METRICS_NAMESPACE } from '../lambdas/core/metric-names.ts';
import type { Priority } from '../lambdas/core/notification-request.ts';
import { PRIORITIES, WORKER_BATCH_SIZE, WORKER_TIMEOUT_SECONDS } from '../lambdas/core/queues.ts';
import { preMigrationSnapshotPrefix } from '../lambdas/migrate/snapshot-name.ts';
import type { DeployContext, StageConfig } from './config.ts';
import type { Database } from './database.ts';
import type { Network } from './network.ts';
import { NotifFunction } from './notif-function.ts';
import type { DeliveryQueues } from './queues.ts';
import type { WhatsAppSecrets } from './secrets.ts';

/** Powertools' `service` dimension; the alarms filter on it. */
export const SERVICE_NAME = 'whatsapp-notif';

/** The migrate function's own budget; the trigger waits a little less than Lambda's 15 minutes. */
const MIGRATE_TIMEOUT = Duration.minutes(14);

export interface FunctionsProps {
  prefix: string;
  config: StageConfig;
  deploy: DeployContext;
  network: Network;
  database: Database;
  queues: DeliveryQueues;
  secrets: WhatsAppSecrets;
  logRemovalPolicy: RemovalPolicy;
}

export class Functions extends Construct {
  readonly api: NotifFunction;
  readonly webhook: NotifFunction;
  readonly worker: NotifFunction;
  readonly scheduler: NotifFunction;
  readonly migrate: NotifFunction;
  readonly workerEventSources: Record<Priority, SqsEventSource>;
  readonly migrationTrigger: Trigger;
  /** What every function's environment starts with (service name, stage, log level, ...). */
  readonly baseEnvironment: Record<string, string>;

  constructor(scope: Construct, id: string, props: FunctionsProps) {
    super(scope, id);
    const { config, deploy, database, queues, secrets } = props;
    const high = queues.byPriority.high;
    const bulk = queues.byPriority.bulk;

    this.baseEnvironment = {
      STAGE: deploy.stage,
      SERVICE_VERSION: deploy.serviceVersion,
      POWERTOOLS_SERVICE_NAME: SERVICE_NAME,
      POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
      POWERTOOLS_LOG_LEVEL: config.logLevel,
      ...(deploy.sentryDsn ? { SENTRY_DSN: deploy.sentryDsn } : {}),
    };
    const common: Record<string, string> = {
      ...this.baseEnvironment,
      ...database.connectionEnvironment(),
    };
    const queueUrls = { HIGH_QUEUE_URL: high.queue.queueUrl, BULK_QUEUE_URL: bulk.queue.queueUrl };
    const deadLetterUrls = {
      HIGH_DLQ_URL: high.deadLetterQueue.queueUrl,
      BULK_DLQ_URL: bulk.deadLetterQueue.queueUrl,
    };
    const whatsapp: Record<string, string> = {
      WHATSAPP_GRAPH_VERSION: deploy.whatsapp.graphVersion,
      ...(deploy.whatsapp.apiUrl ? { WHATSAPP_API_URL: deploy.whatsapp.apiUrl } : {}),
      ...(deploy.whatsapp.phoneNumberId
        ? { WHATSAPP_PHONE_NUMBER_ID: deploy.whatsapp.phoneNumberId }
        : {}),
      ...(deploy.whatsapp.wabaId ? { WHATSAPP_WABA_ID: deploy.whatsapp.wabaId } : {}),
    };
    const fn = (
      name: 'api' | 'webhook' | 'worker' | 'scheduler' | 'migrate',
      description: string,
      environment: Record<string, string>,
      timeout: Duration,
      memorySize: number,
    ) =>
      new NotifFunction(this, name, {
        name,
        prefix: props.prefix,
        description,
        vpc: props.network.vpc,
        securityGroup: props.network.functionSecurityGroup,
        environment: { ...common, ...environment },
        timeout,
        memorySize,
        logRemovalPolicy: props.logRemovalPolicy,
      });

    this.api = fn(
      'api',
      'REST API: accepts notifications, reports status, admin routes',
      {
        ...queueUrls,
        ...deadLetterUrls,
        ...whatsapp,
        // The admin routes list templates and check the token's expiry with the Graph API.
        WHATSAPP_ACCESS_TOKEN_SECRET_ARN: secrets.accessToken.secretArn,
      },
      Duration.seconds(15),
      1024,
    );
    for (const { queue, deadLetterQueue } of [high, bulk]) {
      queue.grantSendMessages(this.api);
      // Queue depths for /v1/health and /v1/admin/status.
      queue.grant(this.api, 'sqs:GetQueueAttributes');
      deadLetterQueue.grant(this.api, 'sqs:GetQueueAttributes');
    }
    secrets.accessToken.grantRead(this.api);
    database.grantConnect(this.api);

    this.webhook = fn(
      'webhook',
      'Meta webhook: verification handshake, signed status updates, inbound opt-outs',
      {
        ...whatsapp,
        WHATSAPP_APP_SECRET_SECRET_ARN: secrets.appSecret.secretArn,
        WHATSAPP_VERIFY_TOKEN_SECRET_ARN: secrets.verifyToken.secretArn,
      },
      Duration.seconds(10),
      512,
    );
    secrets.appSecret.grantRead(this.webhook);
    secrets.verifyToken.grantRead(this.webhook);
    database.grantConnect(this.webhook);

    this.worker = fn(
      'worker',
      'Delivery worker: SQS batches to the WhatsApp Cloud API',
      {
        ...queueUrls,
        ...whatsapp,
        WHATSAPP_ACCESS_TOKEN_SECRET_ARN: secrets.accessToken.secretArn,
      },
      Duration.seconds(WORKER_TIMEOUT_SECONDS),
      1024,
    );
    secrets.accessToken.grantRead(this.worker);
    database.grantConnect(this.worker);
    // A record held back by the rate limits goes back on its queue as a new, delayed message.
    high.queue.grantSendMessages(this.worker);
    bulk.queue.grantSendMessages(this.worker);
    this.workerEventSources = Object.fromEntries(
      PRIORITIES.map((priority) => {
        const source = new SqsEventSource(queues.byPriority[priority].queue, {
          batchSize: WORKER_BATCH_SIZE,
          reportBatchItemFailures: true,
          maxConcurrency: config.workerMaxConcurrency[priority],
          // Bulk traffic tolerates two seconds to fill a batch; high-priority messages go at once.
          ...(priority === 'bulk' ? { maxBatchingWindow: Duration.seconds(2) } : {}),
        });
        // Grants receive, delete and ChangeMessageVisibility (the backoff) on this queue.
        this.worker.addEventSource(source);
        return [priority, source];
      }),
    ) as Record<Priority, SqsEventSource>;

    this.scheduler = fn(
      'scheduler',
      'Every minute: due scheduled rows, outbox sweep, panic-mode probes, deferred drain',
      {
        ...queueUrls,
        ...whatsapp,
        WHATSAPP_ACCESS_TOKEN_SECRET_ARN: secrets.accessToken.secretArn,
      },
      // Three probes at the 10 s Graph timeout with two 15 s waits take a minute on their own; the
      // run before them and the drain, late statuses and token check after them need the rest. The
      // core also budgets each probe on the time left, so a slow Meta shortens the probing, never
      // the drain. A run past the next minute's tick is fine: that tick finds the advisory lock
      // taken and returns `skipped` at once.
      Duration.seconds(120),
      512,
    );
    high.queue.grantSendMessages(this.scheduler);
    bulk.queue.grantSendMessages(this.scheduler);
    // The panic-mode probes call the Graph API with the same token as the worker.
    secrets.accessToken.grantRead(this.scheduler);
    database.grantConnect(this.scheduler);
    // A missed minute is made up by the next one; retrying an old tick would only overlap it.
    this.scheduler.configureAsyncInvoke({ retryAttempts: 0, maxEventAge: Duration.minutes(1) });
    new Rule(this, 'SchedulerTick', {
      ruleName: `${props.prefix}-scheduler-tick`,
      description: 'Runs the scheduler function every minute',
      schedule: Schedule.rate(Duration.minutes(1)),
      targets: [new LambdaFunction(this.scheduler, { retryAttempts: 0 })],
    });

    this.migrate = fn(
      'migrate',
      'Deploy-time migrations: RDS snapshot when migrations are pending, then Kysely migrations',
      { DB_INSTANCE_IDENTIFIER: database.instanceIdentifier },
      MIGRATE_TIMEOUT,
      512,
    );
    database.grantConnect(this.migrate);
    const snapshotArn = Stack.of(this).formatArn({
      service: 'rds',
      resource: 'snapshot',
      resourceName: `${preMigrationSnapshotPrefix(database.instanceIdentifier)}*`,
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });
    Grant.addToPrincipal({
      grantee: this.migrate,
      actions: ['rds:DescribeDBInstances'],
      resourceArns: [database.instance.instanceArn],
    });
    Grant.addToPrincipal({
      grantee: this.migrate,
      actions: ['rds:CreateDBSnapshot'],
      resourceArns: [database.instance.instanceArn, snapshotArn],
    });
    Grant.addToPrincipal({
      grantee: this.migrate,
      actions: ['rds:AddTagsToResource', 'rds:DescribeDBSnapshots'],
      resourceArns: [snapshotArn],
    });

    // Runs when the migrate bundle changes (a new migration changes it), after the database and
    // its proxy exist and before the other functions get their new code, so new code never meets
    // an old schema. A failure fails the deployment, which CloudFormation rolls back.
    this.migrationTrigger = new Trigger(this, 'MigrateOnDeploy', {
      handler: this.migrate,
      invocationType: InvocationType.REQUEST_RESPONSE,
      timeout: MIGRATE_TIMEOUT,
      executeAfter: [database],
      executeBefore: [this.api, this.webhook, this.worker, this.scheduler],
    });
  }
}
