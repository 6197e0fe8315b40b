/**
 * The one stack of a stage: network, database, queues, secrets, functions, API, alarms and
 * dashboard composed, plus the outputs the ops CLI and the deploy guide read.
 */
import { CfnOutput, RemovalPolicy, Stack, type StackProps, Tags } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { Alarms } from './alarms.ts';
import { Api } from './api.ts';
import { ApiLoggingRole } from './api-logging-role.ts';
import { CallbackDispatch } from './callbacks.ts';
import { type DeployContext, resourcePrefix, STAGE_CONFIG, type StageConfig } from './config.ts';
import { OperationsDashboard } from './dashboard.ts';
import { Database } from './database.ts';
import { Functions } from './functions.ts';
import { acknowledgeNagFindings } from './nag.ts';
import { Network } from './network.ts';
import { DeliveryQueues } from './queues.ts';
import { WhatsAppSecrets } from './secrets.ts';

export interface WhatsAppNotifStackProps extends StackProps {
  deploy: DeployContext;
}

export class WhatsAppNotifStack extends Stack {
  readonly config: StageConfig;
  readonly network: Network;
  readonly database: Database;
  readonly queues: DeliveryQueues;
  readonly secrets: WhatsAppSecrets;
  readonly functions: Functions;
  readonly callbacks: CallbackDispatch;
  readonly apiLoggingRole: ApiLoggingRole;
  readonly api: Api;
  readonly alarms: Alarms;
  readonly dashboard: OperationsDashboard;

  constructor(scope: Construct, id: string, props: WhatsAppNotifStackProps) {
    super(scope, id, props);
    const { deploy } = props;
    const stage = deploy.stage;
    const prefix = resourcePrefix(stage);
    const config = STAGE_CONFIG[stage];
    this.config = config;
    Tags.of(this).add('service', 'whatsapp-notif');
    Tags.of(this).add('stage', stage);
    // Logs outlive a prod stack (an investigation may need them); dev cleans up after itself. Not
    // plain RETAIN: that keeps the named log groups even when a first create rolls back, and the
    // retry then fails on names that already exist.
    const logRemovalPolicy =
      config.removalPolicy === 'retain'
        ? RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE
        : RemovalPolicy.DESTROY;

    this.network = new Network(this, 'Network', {
      natGateways: config.natGateways,
      logRemovalPolicy,
    });
    this.database = new Database(this, 'Database', {
      vpc: this.network.vpc,
      prefix,
      config,
      clientSecurityGroup: this.network.functionSecurityGroup,
      logRemovalPolicy,
    });
    this.queues = new DeliveryQueues(this, 'Queues', { stage });
    this.secrets = new WhatsAppSecrets(this, 'WhatsAppSecrets', { prefix });
    this.functions = new Functions(this, 'Functions', {
      prefix,
      config,
      deploy,
      network: this.network,
      database: this.database,
      queues: this.queues,
      secrets: this.secrets,
      logRemovalPolicy,
    });
    this.callbacks = new CallbackDispatch(this, 'Callbacks', {
      prefix,
      network: this.network,
      database: this.database,
      baseEnvironment: this.functions.baseEnvironment,
      logRemovalPolicy,
    });
    // New code never meets an old schema: the dispatcher waits for the migration like the others.
    this.callbacks.dispatcher.node.addDependency(this.functions.migration);
    this.apiLoggingRole = new ApiLoggingRole(this, 'ApiLoggingRole', {
      prefix,
      network: this.network,
      environment: this.functions.baseEnvironment,
      logRemovalPolicy,
    });
    this.api = new Api(this, 'Api', {
      prefix,
      loggingRole: this.apiLoggingRole,
      stage,
      config,
      apiFunction: this.functions.api,
      webhookFunction: this.functions.webhook,
      logRemovalPolicy,
    });
    const resources = {
      queues: this.queues,
      apiStage: this.api.restApi.deploymentStage,
      worker: this.functions.worker,
      scheduler: this.functions.scheduler,
      database: this.database.instance,
      callbacks: this.callbacks,
    };
    this.alarms = new Alarms(this, 'Alarms', {
      prefix,
      stage,
      config,
      resources,
      emails: deploy.alarmEmails,
    });
    this.dashboard = new OperationsDashboard(this, 'Dashboard', {
      prefix,
      config,
      resources,
      functions: [
        this.functions.api,
        this.functions.webhook,
        this.functions.worker,
        this.functions.scheduler,
        this.callbacks.dispatcher,
      ],
      alarms: this.alarms.byId,
      proxyName: this.database.proxy.dbProxyName,
    });

    this.addOutputs();
    acknowledgeNagFindings(this);
  }

  private addOutputs(): void {
    const output = (id: string, value: string, description: string) =>
      new CfnOutput(this, id, { value, description });
    const { high, bulk } = this.queues.byPriority;
    output('ApiUrl', this.api.url, 'Base URL of the REST API (append v1/...)');
    output(
      'WebhookUrl',
      `${this.api.url}webhook/whatsapp`,
      'Callback URL for the Meta app webhook',
    );
    output('HighQueueUrl', high.queue.queueUrl, 'High-priority delivery queue');
    output('BulkQueueUrl', bulk.queue.queueUrl, 'Bulk delivery queue');
    output('HighDlqUrl', high.deadLetterQueue.queueUrl, 'High-priority dead-letter queue');
    output('HighDlqArn', high.deadLetterQueue.queueArn, 'For StartMessageMoveTask (DLQ redrive)');
    output('HighQueueArn', high.queue.queueArn, 'Redrive destination of the high DLQ');
    output('BulkDlqUrl', bulk.deadLetterQueue.queueUrl, 'Bulk dead-letter queue');
    output('BulkDlqArn', bulk.deadLetterQueue.queueArn, 'For StartMessageMoveTask (DLQ redrive)');
    output('BulkQueueArn', bulk.queue.queueArn, 'Redrive destination of the bulk DLQ');
    output('DatabaseSecretArn', this.database.secret.secretArn, 'Master credentials (rotated)');
    output('DatabaseProxyEndpoint', this.database.proxy.endpoint, 'RDS proxy (IAM auth, TLS)');
    output('DatabaseInstanceIdentifier', this.database.instanceIdentifier, 'RDS instance');
    output('WhatsAppAccessTokenSecretArn', this.secrets.accessToken.secretArn, 'Set out of band');
    output('WhatsAppAppSecretSecretArn', this.secrets.appSecret.secretArn, 'Set out of band');
    output('WhatsAppVerifyTokenSecretArn', this.secrets.verifyToken.secretArn, 'Generated');
    output('CriticalTopicArn', this.alarms.topics.critical.topicArn, 'Paging alarms');
    output('WarningTopicArn', this.alarms.topics.warning.topicArn, 'Notifying alarms');
    output('DashboardName', this.dashboard.dashboard.dashboardName, 'CloudWatch dashboard');
    output('CallbackQueueUrl', this.callbacks.queue.queueUrl, 'Callback dispatcher queue');
    output('CallbackDlqUrl', this.callbacks.deadLetterQueue.queueUrl, 'Callback dead-letter queue');
    output('CallbackDlqArn', this.callbacks.deadLetterQueue.queueArn, 'For StartMessageMoveTask');
    output(
      'CallbackQueueArn',
      this.callbacks.queue.queueArn,
      'Redrive destination of the callback DLQ',
    );
    output('EventBusName', this.callbacks.bus.eventBusName, 'Client events for EventBridge rules');
    output('WorkerFunctionName', this.functions.worker.functionName, 'Delivery worker');
    output(
      'MigrateFunctionName',
      this.functions.migrate.functionName,
      'Migrations on deploy; invoke with {"action":"create-admin-key"} for the first admin key',
    );
    // Issue 17: `ops scheduler run --stage` invokes the scheduler; the log-level runbook names all.
    output(
      'SchedulerFunctionName',
      this.functions.scheduler.functionName,
      'Scheduler (ops scheduler run)',
    );
    output('ApiFunctionName', this.functions.api.functionName, 'API function');
    output('WebhookFunctionName', this.functions.webhook.functionName, 'Webhook function');
    output(
      'HighEventSourceMappingId',
      this.functions.workerEventSources.high.eventSourceMappingId,
      'Worker concurrency knob for the high queue (update-event-source-mapping)',
    );
    output(
      'BulkEventSourceMappingId',
      this.functions.workerEventSources.bulk.eventSourceMappingId,
      'Worker concurrency knob for the bulk queue (update-event-source-mapping)',
    );
  }
}
