/**
 * The five functions, what starts them (API Gateway is wired in api.ts; here the SQS event sources,
 * the one-minute schedule and the deploy-time migration custom resource) and what each may touch.
 */
import { ArnFormat, CustomResource, Duration, type RemovalPolicy, Stack } from 'aws-cdk-lib';
import { SubnetType } from 'aws-cdk-lib/aws-ec2';
import { Rule, Schedule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import { Grant } from 'aws-cdk-lib/aws-iam';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import { LogGroup } from 'aws-cdk-lib/aws-logs';
import { LogLevel } from 'aws-cdk-lib/aws-stepfunctions';
import { Provider } from 'aws-cdk-lib/custom-resources';
import { Construct } from 'constructs';
import { MIGRATION_NAMES } from '#core/db/migrations/index.ts';
import type { Priority } from '#core/model/notification-request.ts';
import {
  PRIORITIES,
  WORKER_BATCH_SIZE,
  WORKER_TIMEOUT_SECONDS,
} from '#core/notifications/queue-settings.ts';
import { METRICS_NAMESPACE } from '#core/platform/metric-names.ts';
import { preMigrationSnapshotPrefix } from '../lambdas/migrate/snapshot-name.ts';
import type { DeployContext, StageConfig } from './config.ts';
import type { Database } from './database.ts';
import type { Network } from './network.ts';
import { LOG_RETENTION, NotifFunction } from './notif-function.ts';
import type { DeliveryQueues } from './queues.ts';
import type { WhatsAppSecrets } from './secrets.ts';
import { SentryLayer } from './sentry-layer.ts';

/** Powertools' `service` dimension; the alarms filter on it. */
export const SERVICE_NAME = 'whatsapp-notif';

/**
 * One step of the migrate function (the first connection to a new proxy, or the migrations
 * themselves); the snapshot wait happens between steps, outside this budget.
 */
const MIGRATE_TIMEOUT = Duration.minutes(14);
/** How often the provider asks isComplete whether the pre-migration snapshot is available. */
const MIGRATION_QUERY_INTERVAL = Duration.seconds(30);
/**
 * The longest the provider framework allows (its d.ts: "The maximum timeout is 1 hour"). A first
 * manual snapshot copies every allocated block, and RDS publishes no rate: 100 GiB may take
 * longer than an hour. Later snapshots are incremental and take minutes. If the hour runs out the
 * resource fails and the deployment rolls back with the schema untouched; the snapshot keeps
 * going in RDS, and the next deploy's onEvent reuses it while it is still `creating` (or takes a
 * quick incremental one once it is available), so a retry completes.
 */
const MIGRATION_TOTAL_TIMEOUT = Duration.hours(1);

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
  readonly migration: CustomResource;
  readonly migrationProvider: Provider;
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
        // Each function connects as its own database user (lib/database.ts).
        environment: {
          ...this.baseEnvironment,
          ...database.connectionEnvironment(name),
          ...environment,
        },
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
    database.grantConnect(this.api, 'api');

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
    database.grantConnect(this.webhook, 'webhook');

    this.worker = fn(
      'worker',
      'Delivery worker: SQS batches to the WhatsApp Cloud API',
      {
        ...queueUrls,
        ...whatsapp,
        WHATSAPP_ACCESS_TOKEN_SECRET_ARN: secrets.accessToken.secretArn,
        ...(deploy.claimGraceSeconds ? { CLAIM_GRACE_SECONDS: deploy.claimGraceSeconds } : {}),
      },
      Duration.seconds(WORKER_TIMEOUT_SECONDS),
      1024,
    );
    secrets.accessToken.grantRead(this.worker);
    database.grantConnect(this.worker, 'worker');
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
        // The retention the scheduler applies (issue 16): personal data, then the audit log.
        PII_RETENTION_DAYS: String(config.piiRetentionDays),
        AUDIT_RETENTION_DAYS: String(config.auditRetentionDays),
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
    database.grantConnect(this.scheduler, 'scheduler');
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
    database.grantConnect(this.migrate, 'migrate');
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
      actions: ['rds:AddTagsToResource'],
      resourceArns: [snapshotArn],
    });
    // By name, and by instance to find a snapshot an earlier attempt left `creating`.
    Grant.addToPrincipal({
      grantee: this.migrate,
      actions: ['rds:DescribeDBSnapshots'],
      resourceArns: [database.instance.instanceArn, snapshotArn],
    });

    // A custom resource whose onEvent starts the pre-migration snapshot and whose isComplete
    // migrates once it is available (lambdas/migrate/deploy-migration.ts). It updates when the
    // bundle brings a new migration (Target), after the database and its proxy exist and before
    // the other functions get their new code, so new code never meets an old schema. A failure
    // fails the deployment, which CloudFormation rolls back; the rollback's update with the old
    // Target, and a delete, succeed without touching the database.
    this.migrationProvider = new Provider(this, 'MigrationProvider', {
      onEventHandler: this.migrate,
      isCompleteHandler: this.migrate,
      queryInterval: MIGRATION_QUERY_INTERVAL,
      totalTimeout: MIGRATION_TOTAL_TIMEOUT,
      // The framework's own functions run where ours do, not on the public Lambda network.
      vpc: props.network.vpc,
      vpcSubnets: { subnetType: SubnetType.PRIVATE_WITH_EGRESS },
      securityGroups: [props.network.functionSecurityGroup],
      logGroup: new LogGroup(this, 'MigrationProviderLogs', {
        retention: LOG_RETENTION,
        removalPolicy: props.logRemovalPolicy,
      }),
      // Every poll of the wait, so a deploy stuck on a snapshot can be followed step by step
      // (the framework turns this logging off unless told otherwise).
      disableWaiterStateMachineLogging: false,
      waiterStateMachineLogOptions: {
        level: LogLevel.ALL,
        destination: new LogGroup(this, 'MigrationWaiterLogs', {
          retention: LOG_RETENTION,
          removalPolicy: props.logRemovalPolicy,
        }),
      },
    });
    this.migration = new CustomResource(this, 'SchemaMigration', {
      serviceToken: this.migrationProvider.serviceToken,
      resourceType: 'Custom::SchemaMigration',
      properties: { Target: MIGRATION_NAMES.at(-1)! },
    });
    this.migration.node.addDependency(database);
    for (const dependent of [this.api, this.webhook, this.worker, this.scheduler]) {
      dependent.node.addDependency(this.migration);
    }

    // A DSN alone turns Sentry on: the functions find the SDK in Sentry's layer (issue 17).
    if (deploy.sentryDsn) {
      new SentryLayer(this, 'Sentry', {
        version: deploy.sentryLayerVersion,
        functions: [this.api, this.webhook, this.worker, this.scheduler, this.migrate],
      });
    }
  }
}
