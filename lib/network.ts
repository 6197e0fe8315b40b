/**
 * The VPC: public subnets for the NAT gateways, private subnets with egress for the functions (the
 * worker and scheduler call Meta's Graph API), isolated subnets for the database.
 */
import type { RemovalPolicy } from 'aws-cdk-lib';
import {
  FlowLogDestination,
  FlowLogTrafficType,
  IpAddresses,
  SecurityGroup,
  SubnetType,
  Vpc,
} from 'aws-cdk-lib/aws-ec2';
import { LogGroup } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { LOG_RETENTION, logGroupName } from './notif-function.ts';

export interface NetworkProps {
  natGateways: number;
  logRemovalPolicy: RemovalPolicy;
}

export class Network extends Construct {
  readonly vpc: Vpc;
  /** Every function uses this group; the proxy admits it on the PostgreSQL port. */
  readonly functionSecurityGroup: SecurityGroup;

  constructor(scope: Construct, id: string, props: NetworkProps) {
    super(scope, id);
    this.vpc = new Vpc(this, 'Vpc', {
      ipAddresses: IpAddresses.cidr('10.40.0.0/16'),
      maxAzs: 2,
      natGateways: props.natGateways,
      subnetConfiguration: [
        // Only the NAT gateways live here, each with its own Elastic IP: nothing launched in these
        // subnets should get a public address by default.
        { name: 'public', subnetType: SubnetType.PUBLIC, cidrMask: 24, mapPublicIpOnLaunch: false },
        { name: 'functions', subnetType: SubnetType.PRIVATE_WITH_EGRESS, cidrMask: 20 },
        { name: 'database', subnetType: SubnetType.PRIVATE_ISOLATED, cidrMask: 24 },
      ],
    });
    // Rejected flows only: enough to explain a connection that never arrives, at little cost.
    this.vpc.addFlowLog('RejectedFlows', {
      trafficType: FlowLogTrafficType.REJECT,
      destination: FlowLogDestination.toCloudWatchLogs(
        new LogGroup(this, 'FlowLogGroup', {
          logGroupName: logGroupName('vpc-flow'),
          retention: LOG_RETENTION,
          removalPolicy: props.logRemovalPolicy,
        }),
      ),
    });

    this.functionSecurityGroup = new SecurityGroup(this, 'FunctionSecurityGroup', {
      vpc: this.vpc,
      description: 'whatsapp-notif functions: outbound to the RDS proxy, AWS APIs and Meta',
      allowAllOutbound: true,
    });
  }
}
