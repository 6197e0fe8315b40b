import { Match } from 'aws-cdk-lib/assertions';
import type { Method } from 'aws-cdk-lib/aws-apigateway';
import { describe, expect, it } from 'vitest';
import { MIGRATION_NAMES } from '#core/db/migrations/index.ts';
import {
  DLQ_RETENTION_DAYS,
  MAX_RECEIVE_COUNT,
  QUEUE_RETENTION_DAYS,
  WORKER_BATCH_SIZE,
  WORKER_TIMEOUT_SECONDS,
} from '#core/notifications/queue-settings.ts';
import { apiRoutes } from '../../lambdas/api/routes/index.ts';
import { API_ROUTES, WEBHOOK_ROUTES } from '../../lib/api.ts';
import { buildApp } from '../../lib/app.ts';
import { STAGE_CONFIG, STAGES } from '../../lib/config.ts';
import { builtStage, logicalId } from './stages.ts';

const FUNCTIONS = ['api', 'webhook', 'worker', 'scheduler', 'migrate'] as const;
/** The database user each function connects as: its own role, the master for migrate only. */
const DATABASE_USERS: Record<(typeof FUNCTIONS)[number], string> = {
  api: 'notif_api',
  webhook: 'notif_webhook',
  worker: 'notif_worker',
  scheduler: 'notif_scheduler',
  migrate: 'notif_admin',
};
const DAY = 24 * 60 * 60;

describe.each(STAGES)('the %s stack', (stage) => {
  const { stack, template } = builtStage(stage);
  const config = STAGE_CONFIG[stage];
  const fnId = (name: (typeof FUNCTIONS)[number]) => logicalId(stack, stack.functions[name]);

  describe('log groups', () => {
    it.each(FUNCTIONS)('gives the %s function its own log group kept 30 days', (name) => {
      template.hasResourceProperties('AWS::Logs::LogGroup', {
        LogGroupName: `/whatsapp-notif/${name}`,
        RetentionInDays: 30,
      });
      const fn = template.toJSON().Resources[fnId(name)];
      expect(fn.Properties.LoggingConfig.LogGroup).toEqual({
        Ref: logicalId(stack, stack.functions[name].logGroupRef),
      });
    });

    it('writes the API access log as JSON to its own log group kept 30 days', () => {
      template.hasResourceProperties('AWS::Logs::LogGroup', {
        LogGroupName: '/whatsapp-notif/api-access',
        RetentionInDays: 30,
      });
      const stages = template.findResources('AWS::ApiGateway::Stage');
      const apiStage = Object.values(stages)[0]!;
      // Unquoted variables are numbers (or a quoted string) once API Gateway fills them in.
      const filled = (apiStage.Properties.AccessLogSetting.Format as string).replace(
        /:(\$context\.[\w.]+)/g,
        ':0',
      );
      expect(JSON.parse(filled)).toMatchObject({
        requestId: '$context.requestId',
        resource: '$context.resourcePath',
        status: 0,
        latencyMs: 0,
      });
      expect(apiStage.Properties.AccessLogSetting.Format).toContain('"status":$context.status');
      expect(apiStage.Properties.AccessLogSetting.DestinationArn).toEqual({
        'Fn::GetAtt': [logicalId(stack, stack.api.accessLogGroup), 'Arn'],
      });
    });
  });

  describe('queues', () => {
    it.each(['high', 'bulk'] as const)(
      'gives the %s queue a DLQ, SSE and a TLS-only policy',
      (priority) => {
        const { queue, deadLetterQueue } = stack.queues.byPriority[priority];
        const queueId = logicalId(stack, queue);
        const dlqId = logicalId(stack, deadLetterQueue);
        template.hasResource('AWS::SQS::Queue', {
          Properties: Match.objectLike({
            QueueName: `whatsapp-notif-${stage}-${priority}`,
            SqsManagedSseEnabled: true,
            MessageRetentionPeriod: QUEUE_RETENTION_DAYS * DAY,
            RedrivePolicy: {
              deadLetterTargetArn: { 'Fn::GetAtt': [dlqId, 'Arn'] },
              maxReceiveCount: MAX_RECEIVE_COUNT,
            },
          }),
        });
        const dlq = template.toJSON().Resources[dlqId];
        expect(dlq.Properties).toMatchObject({
          QueueName: `whatsapp-notif-${stage}-${priority}-dlq`,
          SqsManagedSseEnabled: true,
          MessageRetentionPeriod: DLQ_RETENTION_DAYS * DAY,
        });
        expect(dlq.Properties.MessageRetentionPeriod).toBeGreaterThan(QUEUE_RETENTION_DAYS * DAY);
        for (const id of [queueId, dlqId]) {
          template.hasResourceProperties('AWS::SQS::QueuePolicy', {
            Queues: [{ Ref: id }],
            PolicyDocument: {
              Statement: Match.arrayWith([
                Match.objectLike({
                  Effect: 'Deny',
                  Action: 'sqs:*',
                  Condition: { Bool: { 'aws:SecureTransport': 'false' } },
                }),
              ]),
            },
          });
        }
      },
    );

    it('keeps messages invisible for at least six worker timeouts', () => {
      for (const queue of Object.values(template.findResources('AWS::SQS::Queue'))) {
        if (queue.Properties.RedrivePolicy) {
          expect(queue.Properties.VisibilityTimeout).toBeGreaterThanOrEqual(
            6 * WORKER_TIMEOUT_SECONDS,
          );
        }
      }
      template.hasResourceProperties('AWS::Lambda::Function', {
        FunctionName: `whatsapp-notif-${stage}-worker`,
        Timeout: WORKER_TIMEOUT_SECONDS,
      });
    });
  });

  describe('database', () => {
    it('runs PostgreSQL 18 encrypted, backed up, with Performance Insights, in isolated subnets', () => {
      template.hasResourceProperties('AWS::RDS::DBInstance', {
        Engine: 'postgres',
        // The major only: RDS picks the minor, and auto minor upgrades keep it current.
        EngineVersion: '18',
        AutoMinorVersionUpgrade: true,
        StorageEncrypted: true,
        BackupRetentionPeriod: config.backupRetentionDays,
        EnablePerformanceInsights: true,
        EnableIAMDatabaseAuthentication: true,
        PubliclyAccessible: false,
        MasterUsername: 'notif_admin',
      });
      const isolated = stack.network.vpc.isolatedSubnets.map((s) => ({
        Ref: logicalId(stack, s),
      }));
      template.hasResourceProperties('AWS::RDS::DBSubnetGroup', { SubnetIds: isolated });
      template.hasResourceProperties('AWS::RDS::DBParameterGroup', {
        Family: 'postgres18',
        Parameters: Match.objectLike({ max_connections: String(config.maxConnections) }),
      });
    });

    it('keeps the credentials in a rotated Secrets Manager secret', () => {
      template.hasResourceProperties('AWS::SecretsManager::Secret', {
        Name: `whatsapp-notif-${stage}/database`,
        GenerateSecretString: Match.objectLike({ GenerateStringKey: 'password' }),
      });
      template.hasResourceProperties('AWS::SecretsManager::RotationSchedule', {
        RotationRules: { ScheduleExpression: 'rate(30 days)' },
      });
    });

    it('puts an RDS proxy with IAM auth and TLS in front of the instance', () => {
      template.hasResourceProperties('AWS::RDS::DBProxy', {
        DBProxyName: `whatsapp-notif-${stage}`,
        EngineFamily: 'POSTGRESQL',
        RequireTLS: true,
        Auth: [Match.objectLike({ IAMAuth: 'REQUIRED', AuthScheme: 'SECRETS' })],
      });
      template.hasResourceProperties('AWS::RDS::DBProxyTargetGroup', {
        DBInstanceIdentifiers: [{ Ref: logicalId(stack, stack.database.instance) }],
      });
    });
  });

  describe('functions', () => {
    it.each(FUNCTIONS)('runs %s on Node.js 24, arm64, in the private subnets', (name) => {
      const fn = template.toJSON().Resources[fnId(name)].Properties;
      expect(fn).toMatchObject({
        FunctionName: `whatsapp-notif-${stage}-${name}`,
        Runtime: 'nodejs24.x',
        Architectures: ['arm64'],
      });
      const privateSubnets = stack.network.vpc.privateSubnets.map((s) => ({
        Ref: logicalId(stack, s),
      }));
      expect(fn.VpcConfig.SubnetIds).toEqual(privateSubnets);
      expect(fn.Environment.Variables).toMatchObject({
        DB_HOST: { 'Fn::GetAtt': [logicalId(stack, stack.database.proxy), 'Endpoint'] },
        DB_USER: DATABASE_USERS[name],
        DB_IAM_AUTH: 'true',
        STAGE: stage,
        POWERTOOLS_SERVICE_NAME: 'whatsapp-notif',
        POWERTOOLS_METRICS_NAMESPACE: 'WhatsAppNotif',
      });
    });

    it.each(FUNCTIONS)(
      'lets %s connect through the proxy as its own database user only',
      (name) => {
        const policy =
          template.toJSON().Resources[
            logicalId(stack, stack.functions[name].role!.node.findChild('DefaultPolicy'))
          ];
        const statements = policy.Properties.PolicyDocument.Statement as {
          Action: string | string[];
          Resource: unknown;
        }[];
        const connects = statements.filter((s) => s.Action === 'rds-db:connect');
        expect(connects).toHaveLength(1);
        const users = [...JSON.stringify(connects[0]?.Resource).matchAll(/\/(notif_\w+)/g)].map(
          (m) => m[1],
        );
        expect(users).toEqual([DATABASE_USERS[name]]);
        // Least privilege: every statement names its resources.
        for (const statement of statements) expect(statement.Resource).not.toEqual('*');
      },
    );

    it('lets the worker put held-back records back on both delivery queues', () => {
      const policy =
        template.toJSON().Resources[
          logicalId(stack, stack.functions.worker.role!.node.findChild('DefaultPolicy'))
        ];
      const sends = (
        policy.Properties.PolicyDocument.Statement as {
          Action: string | string[];
          Resource: unknown;
        }[]
      ).filter((s) => [s.Action].flat().includes('sqs:SendMessage'));
      const targets = JSON.stringify(sends.map((s) => s.Resource));
      for (const queue of [
        stack.queues.byPriority.high.queue,
        stack.queues.byPriority.bulk.queue,
      ]) {
        expect(targets).toContain(logicalId(stack, queue));
      }
    });

    it('gives each function only the queue URLs and secrets it uses', () => {
      const env = (name: (typeof FUNCTIONS)[number]) =>
        template.toJSON().Resources[fnId(name)].Properties.Environment.Variables;
      expect(Object.keys(env('api'))).toEqual(
        expect.arrayContaining([
          'HIGH_QUEUE_URL',
          'BULK_QUEUE_URL',
          'HIGH_DLQ_URL',
          'BULK_DLQ_URL',
        ]),
      );
      expect(Object.keys(env('worker'))).toEqual(
        expect.arrayContaining([
          'HIGH_QUEUE_URL',
          'BULK_QUEUE_URL',
          'WHATSAPP_ACCESS_TOKEN_SECRET_ARN',
        ]),
      );
      expect(env('worker').WHATSAPP_GRAPH_VERSION).toBe('v25.0');
      expect(Object.keys(env('webhook'))).toEqual(
        expect.arrayContaining([
          'WHATSAPP_APP_SECRET_SECRET_ARN',
          'WHATSAPP_VERIFY_TOKEN_SECRET_ARN',
        ]),
      );
      expect(Object.keys(env('webhook'))).not.toContain('WHATSAPP_ACCESS_TOKEN_SECRET_ARN');
      // The admin routes read templates and the token's expiry from the Graph API.
      expect(Object.keys(env('api'))).toContain('WHATSAPP_ACCESS_TOKEN_SECRET_ARN');
      expect(Object.keys(env('scheduler'))).toEqual(
        expect.arrayContaining([
          'HIGH_QUEUE_URL',
          'BULK_QUEUE_URL',
          'WHATSAPP_ACCESS_TOKEN_SECRET_ARN',
        ]),
      );
      expect(env('migrate').DB_INSTANCE_IDENTIFIER).toBe(`whatsapp-notif-${stage}`);
    });

    it.each(['high', 'bulk'] as const)(
      'feeds the worker from the %s queue in batches with partial failures and a concurrency cap',
      (priority) => {
        template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
          EventSourceArn: {
            'Fn::GetAtt': [logicalId(stack, stack.queues.byPriority[priority].queue), 'Arn'],
          },
          FunctionName: { Ref: fnId('worker') },
          BatchSize: WORKER_BATCH_SIZE,
          FunctionResponseTypes: ['ReportBatchItemFailures'],
          ScalingConfig: { MaximumConcurrency: config.workerMaxConcurrency[priority] },
          ...(priority === 'bulk'
            ? { MaximumBatchingWindowInSeconds: 2 }
            : { MaximumBatchingWindowInSeconds: Match.absent() }),
        });
      },
    );

    it('runs the scheduler every minute without retrying an old tick', () => {
      template.hasResourceProperties('AWS::Events::Rule', {
        ScheduleExpression: 'rate(1 minute)',
        Targets: [
          Match.objectLike({
            Arn: { 'Fn::GetAtt': [fnId('scheduler'), 'Arn'] },
            RetryPolicy: { MaximumRetryAttempts: 0 },
          }),
        ],
      });
    });

    it('lets the migrate function snapshot only its own instance', () => {
      const policy =
        template.toJSON().Resources[
          logicalId(stack, stack.functions.migrate.role!.node.findChild('DefaultPolicy'))
        ];
      const text = JSON.stringify(policy.Properties.PolicyDocument);
      expect(text).toContain('rds:CreateDBSnapshot');
      expect(text).toContain(`:snapshot:whatsapp-notif-${stage}-pre-migration-*`);
      expect(text).toContain('rds:DescribeDBSnapshots');
    });
  });

  describe('migrations at deploy', () => {
    const migrationId = () => logicalId(stack, stack.functions.migration.node.findChild('Default'));

    it('migrates through a custom resource that waits for the snapshot up to the provider maximum', () => {
      const resources = template.toJSON().Resources;
      const migration = resources[migrationId()];
      expect(migration.Type).toBe('Custom::SchemaMigration');
      // The newest migration of the bundle: a new one updates the resource, a rollback restores
      // the older name, which the function recognises and leaves alone.
      expect(migration.Properties.Target).toBe(MIGRATION_NAMES.at(-1));
      expect(migration.DependsOn).toEqual(
        expect.arrayContaining([
          logicalId(stack, stack.database.instance),
          logicalId(stack, stack.database.proxy),
          logicalId(stack, stack.database.proxy.node.findChild('ProxyTargetGroup')),
        ]),
      );
      // onEvent and isComplete are both the migrate function.
      const provider = stack.functions.migrationProvider;
      const framework = resources[logicalId(stack, provider.node.findChild('framework-onEvent'))];
      expect(JSON.stringify(framework.Properties.Environment.Variables)).toContain(fnId('migrate'));
      // The waiter polls every 30 s for an hour (the framework's maximum): 120 attempts.
      const waiter = Object.values(resources).find(
        (r) => (r as { Type: string }).Type === 'AWS::StepFunctions::StateMachine',
      ) as { Properties: { DefinitionString: unknown } };
      const definition = JSON.stringify(waiter.Properties.DefinitionString);
      expect(definition).toContain('\\"IntervalSeconds\\":30');
      expect(definition).toContain('\\"MaxAttempts\\":120');
    });

    it('gives the other functions their new code only after the migration', () => {
      const resources = template.toJSON().Resources;
      for (const name of ['api', 'webhook', 'worker', 'scheduler'] as const) {
        expect(resources[fnId(name)].DependsOn).toContain(migrationId());
      }
    });
  });

  describe('API', () => {
    const routes = [
      ...Object.entries(API_ROUTES).map(([path, methods]) => ({
        path,
        methods,
        fn: 'api' as const,
      })),
      ...Object.entries(WEBHOOK_ROUTES).map(([path, methods]) => ({
        path,
        methods,
        fn: 'webhook' as const,
      })),
    ];
    it.each(routes)('routes $path to the $fn function', ({ path, methods, fn }) => {
      const resource = stack.api.restApi.root.resourceForPath(path);
      for (const method of methods) {
        const construct = resource.node.tryFindChild(method) as Method | undefined;
        expect(construct, `${method} ${path}`).toBeDefined();
        const cfn = template.toJSON().Resources[logicalId(stack, construct!)];
        expect(cfn.Properties.Integration.Type).toBe('AWS_PROXY');
        expect(JSON.stringify(cfn.Properties.Integration.Uri)).toContain(fnId(fn));
      }
    });

    it('routes exactly what the API function serves, so no route 403s at the gateway', () => {
      const served = apiRoutes.map((r) => `${r.method} ${r.path}`).sort();
      const gateway = Object.entries(API_ROUTES)
        .flatMap(([path, methods]) => methods.map((m) => `${m} ${path}`))
        .sort();
      expect(gateway).toEqual(served);
    });

    it('throttles the stage as configured', () => {
      template.hasResourceProperties('AWS::ApiGateway::Stage', {
        StageName: stage,
        MethodSettings: Match.arrayWith([
          Match.objectLike({
            ThrottlingRateLimit: config.apiThrottle.rateLimit,
            ThrottlingBurstLimit: config.apiThrottle.burstLimit,
          }),
        ]),
      });
    });

    it('answers unknown routes with 404 in the service error shape', () => {
      template.hasResourceProperties('AWS::ApiGateway::GatewayResponse', {
        ResponseType: 'MISSING_AUTHENTICATION_TOKEN',
        StatusCode: '404',
        ResponseTemplates: {
          'application/json': Match.stringLikeRegexp('"code":"not_found"'),
        },
      });
    });
  });

  it('exports what the ops CLI and the deploy guide read', () => {
    const outputs = Object.keys(template.toJSON().Outputs);
    expect(outputs).toEqual(
      expect.arrayContaining([
        'ApiUrl',
        'HighQueueUrl',
        'BulkQueueUrl',
        'HighDlqUrl',
        'HighDlqArn',
        'BulkDlqUrl',
        'BulkDlqArn',
        'DatabaseSecretArn',
        'WhatsAppAccessTokenSecretArn',
        'WhatsAppAppSecretSecretArn',
        'WhatsAppVerifyTokenSecretArn',
        'CriticalTopicArn',
        'WarningTopicArn',
        'HighEventSourceMappingId',
        'BulkEventSourceMappingId',
      ]),
    );
  });
});

describe('prod and dev differ only where lib/config.ts says', () => {
  const dev = builtStage('dev').template;
  const prod = builtStage('prod').template;
  const instance = (t: typeof dev) => Object.values(t.findResources('AWS::RDS::DBInstance'))[0]!;

  it('makes prod Multi-AZ, deletion-protected and retained, dev neither', () => {
    expect(instance(prod).Properties).toMatchObject({
      MultiAZ: true,
      DeletionProtection: true,
      DBInstanceClass: `db.${STAGE_CONFIG.prod.databaseInstanceType}`,
    });
    expect(instance(prod).DeletionPolicy).toBe('RetainExceptOnCreate');
    expect(instance(dev).Properties).toMatchObject({
      MultiAZ: false,
      DeletionProtection: false,
      DBInstanceClass: `db.${STAGE_CONFIG.dev.databaseInstanceType}`,
    });
    expect(instance(dev).DeletionPolicy).toBe('Snapshot');
  });

  it('keeps backups longer in prod', () => {
    expect(instance(prod).Properties.BackupRetentionPeriod).toBeGreaterThan(
      instance(dev).Properties.BackupRetentionPeriod,
    );
  });

  it('runs one NAT gateway per AZ in prod and one in dev', () => {
    prod.resourceCountIs('AWS::EC2::NatGateway', STAGE_CONFIG.prod.natGateways);
    dev.resourceCountIs('AWS::EC2::NatGateway', STAGE_CONFIG.dev.natGateways);
    expect(STAGE_CONFIG.prod.natGateways).toBeGreaterThan(STAGE_CONFIG.dev.natGateways);
  });

  it('retains log groups in prod and deletes them with a dev stack', () => {
    for (const group of Object.values(prod.findResources('AWS::Logs::LogGroup'))) {
      expect(group.DeletionPolicy).toBe('RetainExceptOnCreate');
    }
    for (const group of Object.values(dev.findResources('AWS::Logs::LogGroup'))) {
      expect(group.DeletionPolicy).toBe('Delete');
    }
  });
});

describe('deploy-time context', () => {
  it('subscribes the alarm emails to their topics', () => {
    const { template, stack } = builtStage('prod', {
      criticalAlarmEmails: 'oncall@acme.test, lead@acme.test',
      warningAlarmEmails: 'team@acme.test',
    });
    const topic = (severity: 'critical' | 'warning') => ({
      Ref: logicalId(stack, stack.alarms.topics[severity]),
    });
    template.resourceCountIs('AWS::SNS::Subscription', 3);
    template.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: 'oncall@acme.test',
      TopicArn: topic('critical'),
    });
    template.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: 'team@acme.test',
      TopicArn: topic('warning'),
    });
  });

  it('passes the WhatsApp identifiers to the functions that call Meta', () => {
    const { template, stack } = builtStage('dev', {
      whatsappPhoneNumberId: '123456789012345',
      whatsappWabaId: '987654321',
    });
    const worker = template.toJSON().Resources[logicalId(stack, stack.functions.worker)];
    expect(worker.Properties.Environment.Variables).toMatchObject({
      WHATSAPP_PHONE_NUMBER_ID: '123456789012345',
      WHATSAPP_WABA_ID: '987654321',
    });
  });

  it("gives the worker the claim's grace only when the deploy sets one, and refuses a bad one", () => {
    const { template, stack } = builtStage('dev', { claimGraceSeconds: '900' });
    const env = (t: typeof template) =>
      t.toJSON().Resources[logicalId(stack, stack.functions.worker)].Properties.Environment
        .Variables;
    expect(env(template).CLAIM_GRACE_SECONDS).toBe('900');
    expect(env(builtStage('dev').template).CLAIM_GRACE_SECONDS).toBeUndefined();
    expect(() =>
      buildApp({
        context: { stage: 'dev', claimGraceSeconds: '2m', 'aws:cdk:bundling-stacks': [] },
        nag: false,
      }),
    ).toThrow(/claimGraceSeconds: "2m"/);
  });

  it('refuses an unknown stage by name', () => {
    expect(() =>
      buildApp({ context: { stage: 'staging', 'aws:cdk:bundling-stacks': [] }, nag: false }),
    ).toThrow(/stage: "staging"/);
  });
});
