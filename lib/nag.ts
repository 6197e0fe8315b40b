/**
 * The cdk-nag (AWS Solutions) findings this design accepts, each acknowledged on the narrowest
 * construct with the reason a reviewer needs. Anything not listed here fails the synth and the
 * infrastructure test.
 */
import { Stack, Validations } from 'aws-cdk-lib';
import type { Role } from 'aws-cdk-lib/aws-iam';
import type { CfnFunction, Function as LambdaFunction } from 'aws-cdk-lib/aws-lambda';
import type { IConstruct } from 'constructs';
import type { WhatsAppNotifStack } from './stack.ts';

function acknowledge(scope: IConstruct, id: string, reason: string): void {
  Validations.of(scope).acknowledge({ id, reason });
}

export function acknowledgeNagFindings(stack: WhatsAppNotifStack): void {
  const { config, database, secrets, functions, api } = stack;

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
    'AwsSolutions-APIG6',
    'Execution logging needs the account-wide API Gateway CloudWatch role, which this stack ' +
      'does not own; the JSON access log (/whatsapp-notif/api-access) and the function logs ' +
      'record every request.',
  );
  acknowledge(
    api.restApi.deploymentStage,
    'AwsSolutions-APIG3',
    'WAF is optional in the design: stage throttling bounds the request rate and every route ' +
      'authenticates in the function. A platform team with a shared WebACL can associate it.',
  );
}
