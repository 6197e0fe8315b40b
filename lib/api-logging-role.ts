/**
 * The account's API Gateway CloudWatch Logs role, as the stage's access logs need it. One setting
 * serves every REST API of the account and Region, so the stack neither creates it blindly (which
 * would take it over from whoever set it) nor assumes it (a fresh account has none, and the stage
 * would fail to create). A custom resource runs before the stage: it keeps a role that is set and
 * exists, and otherwise sets the role made here, which is retained so that deleting this stack
 * never breaks logging for other APIs (aws-cdk issues 10878 and 12769 describe that trap).
 */
import { ArnFormat, CustomResource, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { SubnetType } from 'aws-cdk-lib/aws-ec2';
import { ManagedPolicy, PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { LogGroup } from 'aws-cdk-lib/aws-logs';
import { Provider } from 'aws-cdk-lib/custom-resources';
import { Construct } from 'constructs';
import type { Network } from './network.ts';
import { LOG_RETENTION, logGroupName, NotifFunction } from './notif-function.ts';

export interface ApiLoggingRoleProps {
  prefix: string;
  network: Network;
  environment: Record<string, string>;
  logRemovalPolicy: RemovalPolicy;
}

export class ApiLoggingRole extends Construct {
  /** Offered to the account when it has no working role; kept when the stack goes. */
  readonly fallbackRole: Role;
  readonly function: NotifFunction;
  readonly provider: Provider;
  /** The stage depends on this. */
  readonly resource: CustomResource;

  constructor(scope: Construct, id: string, props: ApiLoggingRoleProps) {
    super(scope, id);
    const stack = Stack.of(this);
    this.fallbackRole = new Role(this, 'FallbackRole', {
      description:
        'API Gateway writes CloudWatch Logs for REST APIs of this account (whatsapp-notif)',
      assumedBy: new ServicePrincipal('apigateway.amazonaws.com'),
      managedPolicies: [
        ManagedPolicy.fromAwsManagedPolicyName('service-role/AmazonAPIGatewayPushToCloudWatchLogs'),
      ],
    });
    // Removed only when the create that made it rolls back; the custom resource then finds the
    // account naming a role that no longer exists and sets the new one on the retry.
    this.fallbackRole.applyRemovalPolicy(RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE);

    this.function = new NotifFunction(this, 'Function', {
      name: 'api-logging-role',
      prefix: props.prefix,
      description: 'Deploy time: makes sure the account has an API Gateway CloudWatch Logs role',
      vpc: props.network.vpc,
      securityGroup: props.network.functionSecurityGroup,
      environment: props.environment,
      // Up to seven doubling waits (about four minutes) while IAM makes a new role assumable.
      timeout: Duration.minutes(6),
      memorySize: 256,
      logRemovalPolicy: props.logRemovalPolicy,
    });
    const accountSetting = stack.formatArn({
      service: 'apigateway',
      account: '',
      resource: '/account',
      arnFormat: ArnFormat.NO_RESOURCE_NAME,
    });
    this.function.addToRolePolicy(
      new PolicyStatement({
        actions: ['apigateway:GET', 'apigateway:PATCH'],
        resources: [accountSetting],
      }),
    );
    // The role the account names can be any role of the account: only its existence is read.
    this.function.addToRolePolicy(
      new PolicyStatement({
        actions: ['iam:GetRole'],
        resources: [
          stack.formatArn({ service: 'iam', region: '', resource: 'role', resourceName: '*' }),
        ],
      }),
    );
    this.fallbackRole.grantPassRole(this.function.grantPrincipal);

    this.provider = new Provider(this, 'Provider', {
      onEventHandler: this.function,
      // The framework's own function runs where ours does, not on the public Lambda network.
      vpc: props.network.vpc,
      vpcSubnets: { subnetType: SubnetType.PRIVATE_WITH_EGRESS },
      securityGroups: [props.network.functionSecurityGroup],
      logGroup: new LogGroup(this, 'ProviderLogGroup', {
        logGroupName: logGroupName('api-logging-role-provider'),
        retention: LOG_RETENTION,
        removalPolicy: props.logRemovalPolicy,
      }),
    });
    this.resource = new CustomResource(this, 'Resource', {
      serviceToken: this.provider.serviceToken,
      resourceType: 'Custom::ApiGatewayLoggingRole',
      properties: { FallbackRoleArn: this.fallbackRole.roleArn },
    });
  }
}
