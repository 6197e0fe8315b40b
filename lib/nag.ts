/**
 * Every policy finding this design accepts, in one place: the cdk-nag (AWS Solutions) findings,
 * each acknowledged on the narrowest construct, and the AWS Control Tower guard controls, each
 * with the resources it is accepted on; both with the reason a reviewer needs. Anything not
 * listed here fails the synth and the infrastructure tests.
 */
import { Stack, Validations } from 'aws-cdk-lib';
import type { Role } from 'aws-cdk-lib/aws-iam';
import {
  type CfnFunction,
  CfnPermission,
  type Function as LambdaFunction,
} from 'aws-cdk-lib/aws-lambda';
import { LogGroup } from 'aws-cdk-lib/aws-logs';
import type { IConstruct } from 'constructs';
import type { Stage } from './config.ts';
import type { WhatsAppNotifStack } from './stack.ts';

function acknowledge(scope: IConstruct, id: string, reason: string): void {
  Validations.of(scope).acknowledge({ id, reason });
}

export function acknowledgeNagFindings(stack: WhatsAppNotifStack): void {
  const { config, database, secrets, functions, api, apiLoggingRole } = stack;

  // Database.
  acknowledge(
    database.instance,
    'AwsSolutions-RDS11',
    'The instance is reachable only from the RDS proxy security group in isolated subnets, and ' +
      'RDS Proxy listens on 5432 whatever the target port; a non-default port would hide nothing.',
  );
  if (!config.multiAz) {
    acknowledge(
      database.instance,
      'AwsSolutions-RDS3',
      'dev only: a single-AZ instance has no availability target to meet; prod is Multi-AZ ' +
        '(lib/config.ts).',
    );
  }
  if (!config.deletionProtection) {
    acknowledge(
      database.instance,
      'AwsSolutions-RDS10',
      'dev only: the stack must be deletable; the removal policy still takes a final snapshot. ' +
        'prod has deletion protection (lib/config.ts).',
    );
  }

  const monitoringRole = database.instance.node.tryFindChild('MonitoringRole');
  if (monitoringRole) {
    acknowledge(
      monitoringRole,
      'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole]',
      'The role RDS assumes to publish Enhanced Monitoring figures; AWS maintains the policy so ' +
        'it follows what the monitoring agent writes, and it reaches only RDSOSMetrics logs.',
    );
  }

  // Secrets whose values Meta issues: Secrets Manager cannot rotate them by itself.
  acknowledge(
    secrets.accessToken,
    'AwsSolutions-SMG4',
    'A WhatsApp system-user token is issued in Meta Business Manager; rotation is a new token ' +
      'put with put-secret-value (runbooks/whatsapp-auth.md), not a Lambda rotation.',
  );
  acknowledge(
    secrets.appSecret,
    'AwsSolutions-SMG4',
    'The app secret is reset in the Meta app dashboard and then put here; a rotation function ' +
      'cannot change it on Meta’s side.',
  );
  acknowledge(
    secrets.verifyToken,
    'AwsSolutions-SMG4',
    'The verify token must equal the value typed into the Meta webhook settings; rotating it ' +
      'automatically would break webhook verification.',
  );

  // Lambda execution roles.
  for (const fn of [
    functions.api,
    functions.webhook,
    functions.worker,
    functions.scheduler,
    functions.migrate,
    apiLoggingRole.function,
    stack.callbacks.dispatcher,
  ]) {
    const role = fn.role!;
    acknowledge(
      role,
      'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
      'The AWS-maintained minimum for writing the function’s own logs; everything else the ' +
        'function may do is granted per resource with grant* calls.',
    );
    acknowledge(
      role,
      'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole]',
      'Needed to attach the function to the VPC (ENI management); the EC2 network-interface ' +
        'actions it holds do not support resource-level scoping anyway.',
    );
  }
  acknowledge(
    functions.migrate.role!,
    `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:rds:<AWS::Region>:<AWS::AccountId>:snapshot:${database.instanceIdentifier}-pre-migration-*]`,
    'Pre-migration snapshot names carry the time they are taken, so the permission is scoped ' +
      'to the name prefix of this instance’s snapshots and to nothing else.',
  );

  // The account's API Gateway logging role (lib/api-logging-role.ts).
  acknowledge(
    apiLoggingRole.fallbackRole,
    'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]',
    'The AWS-maintained policy API Gateway documents for its account logging role; it only ' +
      'creates and writes log groups, and tracks the service as API Gateway changes.',
  );
  acknowledge(
    apiLoggingRole.function.role!,
    'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:iam::<AWS::AccountId>:role/*]',
    'iam:GetRole only: the account setting may name any role of the account, and the check ' +
      'reads whether that role still exists; it changes no role.',
  );
  const frameworkRole = apiLoggingRole.provider.node
    .findAll()
    .find((c) => c.node.path.endsWith('framework-onEvent/ServiceRole'));
  if (frameworkRole) {
    acknowledge(
      frameworkRole,
      'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
      'CDK’s custom resource framework function writes its own logs with the AWS-maintained ' +
        'minimum; it holds no other managed policy.',
    );
    acknowledge(
      frameworkRole,
      'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole]',
      'The framework function runs in the VPC beside ours (Control Tower CT.LAMBDA.PR.3), which ' +
        'needs the ENI actions of this AWS-maintained policy; they allow no resource scoping.',
    );
    acknowledge(
      frameworkRole,
      `AwsSolutions-IAM5[Resource::<${Stack.of(apiLoggingRole).getLogicalId(apiLoggingRole.function.node.defaultChild as CfnFunction)}.Arn>:*]`,
      'CDK’s custom resource framework may invoke any version of the one handler function it ' +
        'fronts; the wildcard is the version suffix of that function’s ARN, nothing wider.',
    );
  }

  // The custom-resources provider framework behind the deploy-time migration (lib/functions.ts).
  const provider = functions.migrationProvider;
  for (const name of ['framework-onEvent', 'framework-isComplete', 'framework-onTimeout']) {
    const role = (provider.node.findChild(name) as LambdaFunction).role!;
    acknowledge(
      role,
      'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
      'The provider framework’s own function writes only its logs; CDK creates its role with ' +
        'this AWS-maintained minimum and it holds nothing else but the invoke below.',
    );
    acknowledge(
      role,
      'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole]',
      'The framework’s functions run in the VPC beside the migrate function (Control Tower ' +
        'CT.LAMBDA.PR.3); attaching to it needs these ENI actions, which allow no scoping.',
    );
    acknowledge(
      role,
      `AwsSolutions-IAM5[Resource::<${Stack.of(functions).getLogicalId(functions.migrate.node.defaultChild as CfnFunction)}.Arn>:*]`,
      'The framework invokes the migrate function by ARN; the trailing :* covers that one ' +
        'function’s versions and aliases, nothing else.',
    );
  }
  const waiterRole = provider.node.findChild('waiter-state-machine').node.findChild('Role') as Role;
  for (const step of ['framework-isComplete', 'framework-onTimeout']) {
    const fn = provider.node.findChild(step) as LambdaFunction;
    acknowledge(
      waiterRole,
      `AwsSolutions-IAM5[Resource::<${Stack.of(functions).getLogicalId(fn.node.defaultChild as CfnFunction)}.Arn>:*]`,
      'The waiter state machine invokes the framework’s own isComplete and onTimeout functions; ' +
        'the trailing :* covers their versions only.',
    );
  }
  acknowledge(
    waiterRole,
    'AwsSolutions-IAM5[Resource::*]',
    'Step Functions log delivery (logs:CreateLogDelivery, PutResourcePolicy, DescribeLogGroups ' +
      'and the like) does not support resource-level permissions; AWS documents "*" for them.',
  );
  acknowledge(
    provider.node.findChild('waiter-state-machine'),
    'AwsSolutions-SF2',
    'The waiter only polls isComplete every 30 s during a deploy; its steps are in its log ' +
      'group (level ALL) and the migrate function’s logs, and the provider offers no X-Ray switch.',
  );

  // API Gateway.
  acknowledge(
    api.restApi,
    'AwsSolutions-APIG2',
    'Bodies are validated in the functions with the zod schemas that also generate the OpenAPI ' +
      'document; a gateway model would be a second copy that drifts from them.',
  );
  acknowledge(
    api.restApi,
    'AwsSolutions-APIG4',
    'Clients authenticate with X-API-Key, checked in the api function against hashed keys with ' +
      'scopes and an audit log of denials; Meta webhooks are authenticated by their HMAC ' +
      'signature in the webhook function. /health is public by design.',
  );
  acknowledge(
    api.restApi,
    'AwsSolutions-COG4',
    'Callers are servers with API keys and Meta’s webhook, not Cognito users; see APIG4.',
  );
  acknowledge(
    api.restApi.deploymentStage,
    'AwsSolutions-APIG3',
    'WAF is optional in the design: stage throttling bounds the request rate and every route ' +
      'authenticates in the function. A platform team with a shared WebACL can associate it.',
  );
}

/**
 * AWS Control Tower's proactive controls (cfn-guard rules bundled with
 * @cdklabs/cdk-validator-cfnguard) that this design does not meet, each with the resources it
 * accepts them on and why. test/infra/policy.test.ts runs every rule on both stages and fails on a
 * finding not listed here, or on an entry that no longer matches anything; `cdk synth` runs the
 * rules with these controls switched off, since guard cannot be told about single resources.
 */
export interface GuardException {
  /** The control id as Control Tower names it, e.g. `CT.SQS.PR.1`. */
  control: string;
  /** What it is accepted on; the test compares this with what the rule reports. */
  resources: (stack: WhatsAppNotifStack) => IConstruct[];
  /** Only on these stages; every stage when absent. */
  stages?: readonly Stage[];
  reason: string;
}

const logGroups = (stack: WhatsAppNotifStack): IConstruct[] =>
  stack.node.findAll().filter((c) => c instanceof LogGroup);

export const GUARD_EXCEPTIONS: readonly GuardException[] = [
  {
    control: 'CT.CLOUDWATCH.PR.2',
    resources: logGroups,
    reason:
      'Logs are kept 30 days, the period the runbooks and DESIGN promise: they carry request ids ' +
      'and masked recipients, and keeping personal data a year for an audit rule is the worse ' +
      'trade. A team that needs a year exports to its log archive account.',
  },
  {
    control: 'CT.CLOUDWATCH.PR.3',
    resources: logGroups,
    reason:
      'CloudWatch Logs encrypts every log group at rest with keys it manages; nothing secret is ' +
      'logged (keys by prefix, numbers masked), and a customer key would add a key policy that ' +
      'RDS, API Gateway and VPC flow logs must all be allowed through.',
  },
  {
    control: 'CT.LAMBDA.PR.2',
    resources: (stack) =>
      stack.api.restApi.node.findAll().filter((c) => c instanceof CfnPermission),
    reason:
      'Each permission names apigateway.amazonaws.com with SourceArn set to this API’s ' +
      'execute-api ARN and SourceAccount to this account; the rule accepts only literal strings ' +
      'there, and both are CloudFormation references.',
  },
  {
    control: 'CT.RDS.PR.20',
    resources: (stack) => [stack.database.instance],
    reason:
      'See AwsSolutions-RDS11: only the RDS proxy reaches the instance, inside isolated subnets, ' +
      'and the proxy listens on 5432 whatever the instance port is.',
  },
  {
    control: 'CT.RDS.PR.30',
    resources: (stack) => [stack.database.instance],
    reason:
      'Encrypted at rest with the AWS managed key for RDS. A customer key is needed only for ' +
      'cross-account snapshot copies, and losing it would make every snapshot unreadable.',
  },
  {
    control: 'CT.SQS.PR.1',
    resources: (stack) => [
      ...Object.values(stack.queues.byPriority).map((pair) => pair.deadLetterQueue),
      stack.callbacks.deadLetterQueue,
    ],
    reason:
      'These are the dead-letter queues: the last stop, watched by the dlq-not-empty alarms ' +
      '(callback-dlq-not-empty for the callback one) and emptied with ops dlq redrive or a ' +
      'purge; a queue behind them would only hide messages.',
  },
  {
    control: 'CT.STEPFUNCTIONS.PR.2',
    resources: (stack) => [
      stack.functions.migrationProvider.node.findChild('waiter-state-machine'),
    ],
    reason:
      'As AwsSolutions-SF2: CDK’s provider framework builds this waiter with no tracing switch; ' +
      'it only polls the migration every 30 s during a deploy and logs every step (level ALL).',
  },
  {
    control: 'CT.RDS.PR.1',
    stages: ['dev'],
    resources: (stack) => [stack.database.instance],
    reason: 'dev only, as AwsSolutions-RDS3: prod is Multi-AZ (lib/config.ts).',
  },
  {
    control: 'CT.RDS.PR.13',
    stages: ['dev'],
    resources: (stack) => [stack.database.instance],
    reason: 'dev only, as AwsSolutions-RDS10: prod has deletion protection (lib/config.ts).',
  },
  {
    control: 'CT.RDS.PR.8',
    stages: ['dev'],
    resources: (stack) => [stack.database.instance],
    reason:
      'dev keeps one day of automated backups (the rule asks for seven); prod keeps 14 ' +
      '(lib/config.ts).',
  },
];

/** cfn-guard rule file names (`ct-sqs-pr-1`) of the controls accepted on a stage. */
export function guardRulesDisabledAtSynth(stage: Stage): string[] {
  return GUARD_EXCEPTIONS.filter((e) => !e.stages || e.stages.includes(stage)).map((e) =>
    e.control.toLowerCase().replaceAll('.', '-'),
  );
}
