/**
 * PostgreSQL 18 on RDS in the isolated subnets, its credentials in Secrets Manager (rotated), and
 * the RDS Proxy the functions reach with IAM tokens, so hundreds of short-lived Lambda
 * environments share a bounded pool of database connections.
 */
import { ArnFormat, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import type { ISecurityGroup, IVpc } from 'aws-cdk-lib/aws-ec2';
import { InstanceType, Port, SecurityGroup, SubnetType } from 'aws-cdk-lib/aws-ec2';
import { Grant, type IGrantable, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { LogGroup } from 'aws-cdk-lib/aws-logs';
import {
  CaCertificate,
  Credentials,
  DatabaseInstance,
  DatabaseInstanceEngine,
  DatabaseProxy,
  DefaultAuthScheme,
  ParameterGroup,
  PostgresEngineVersion,
  ProxyTarget,
  StorageType,
} from 'aws-cdk-lib/aws-rds';
import type { ISecret } from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { type DatabaseFunction, FUNCTION_DATABASE_ROLES } from '#core/db/roles.ts';
import type { StageConfig } from './config.ts';
import { LOG_RETENTION } from './notif-function.ts';

export const DATABASE_NAME = 'whatsapp_notif';
/**
 * The PostgreSQL major version, and only the major: RDS picks its default minor at create time and
 * auto minor upgrades move it forward, so a pinned minor would stop new stages from creating once
 * RDS retires it, and a later edit of the pin would fight the upgraded instance.
 */
export const POSTGRES_MAJOR_VERSION = '18';
/**
 * The master user: it owns the schema, and only the migrate function connects as it. The other
 * functions connect as their own roles (lambdas/core/db/roles.ts, created by a migration).
 */
export const DATABASE_USER = 'notif_admin';
/** Who connects: the migrate function as the master user, every other function as its role. */
export type DatabaseClient = DatabaseFunction | 'migrate';

export function databaseUserOf(client: DatabaseClient): string {
  return client === 'migrate' ? DATABASE_USER : FUNCTION_DATABASE_ROLES[client];
}
const POSTGRES_PORT = 5432;
/**
 * The share of max_connections the RDS proxy may open. The database-connections alarm divides by
 * the same number, so it measures the pool the functions can actually use.
 */
export const PROXY_MAX_CONNECTIONS_PERCENT = 90;

export interface DatabaseProps {
  vpc: IVpc;
  /** `whatsapp-notif-<stage>`: the instance, proxy and secret are named after it. */
  prefix: string;
  config: StageConfig;
  /** The functions' security group, admitted by the proxy. */
  clientSecurityGroup: ISecurityGroup;
  logRemovalPolicy: RemovalPolicy;
}

export class Database extends Construct {
  readonly instance: DatabaseInstance;
  readonly proxy: DatabaseProxy;
  readonly secret: ISecret;
  readonly instanceIdentifier: string;

  constructor(scope: Construct, id: string, props: DatabaseProps) {
    super(scope, id);
    const { config } = props;
    this.instanceIdentifier = props.prefix;
    const engine = DatabaseInstanceEngine.postgres({
      version: PostgresEngineVersion.of(POSTGRES_MAJOR_VERSION, POSTGRES_MAJOR_VERSION),
    });

    const parameterGroup = new ParameterGroup(this, 'Parameters', {
      engine,
      description: `${props.prefix} PostgreSQL parameters`,
      parameters: {
        // Explicit, so the connections alarm can be a percentage of a known number.
        max_connections: String(config.maxConnections),
        'rds.force_ssl': '1',
        // Statements slower than a second land in the PostgreSQL log for the database runbook.
        log_min_duration_statement: '1000',
      },
    });

    // Created before the instance with a retention; RDS would otherwise create them keep-forever.
    const postgresLogs = new LogGroup(this, 'PostgresLogGroup', {
      logGroupName: `/aws/rds/instance/${this.instanceIdentifier}/postgresql`,
      retention: LOG_RETENTION,
      removalPolicy: props.logRemovalPolicy,
    });
    const upgradeLogs = new LogGroup(this, 'UpgradeLogGroup', {
      logGroupName: `/aws/rds/instance/${this.instanceIdentifier}/upgrade`,
      retention: LOG_RETENTION,
      removalPolicy: props.logRemovalPolicy,
    });

    const databaseSecurityGroup = new SecurityGroup(this, 'InstanceSecurityGroup', {
      vpc: props.vpc,
      description: 'whatsapp-notif PostgreSQL: reachable from the RDS proxy only',
      allowAllOutbound: false,
    });

    this.instance = new DatabaseInstance(this, 'Instance', {
      instanceIdentifier: this.instanceIdentifier,
      engine,
      instanceType: new InstanceType(config.databaseInstanceType),
      parameterGroup,
      databaseName: DATABASE_NAME,
      credentials: Credentials.fromGeneratedSecret(DATABASE_USER, {
        secretName: `${props.prefix}/database`,
      }),
      vpc: props.vpc,
      vpcSubnets: { subnetType: SubnetType.PRIVATE_ISOLATED },
      securityGroups: [databaseSecurityGroup],
      publiclyAccessible: false,
      port: POSTGRES_PORT,
      multiAz: config.multiAz,
      storageType: StorageType.GP3,
      allocatedStorage: config.allocatedStorageGiB,
      storageEncrypted: true,
      iamAuthentication: true,
      caCertificate: CaCertificate.RDS_CA_RSA2048_G1,
      backupRetention: Duration.days(config.backupRetentionDays),
      preferredBackupWindow: '02:00-02:30',
      preferredMaintenanceWindow: 'sun:03:00-sun:03:30',
      copyTagsToSnapshot: true,
      deleteAutomatedBackups: false,
      autoMinorVersionUpgrade: true,
      enablePerformanceInsights: true,
      // Every log type RDS has for PostgreSQL: the upgrade log explains a minor upgrade that went
      // wrong in a maintenance window.
      cloudwatchLogsExports: ['postgresql', 'upgrade'],
      // OS-level figures every minute (memory, swap, processes) next to the hypervisor's CPU.
      monitoringInterval: Duration.minutes(1),
      deletionProtection: config.deletionProtection,
      // Kept on update or delete, but removed when the create that made it rolls back: a plain
      // Retain would leave an instance named whatsapp-notif-prod behind and every retry of the
      // first deploy would collide with it.
      removalPolicy:
        config.removalPolicy === 'retain'
          ? RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE
          : RemovalPolicy.SNAPSHOT,
    });
    this.instance.node.addDependency(postgresLogs, upgradeLogs);
    this.secret = this.instance.secret!;

    // The proxy reads the secret on every new server connection, so rotation needs no restart.
    this.instance.addRotationSingleUser({
      automaticallyAfter: Duration.days(30),
      vpcSubnets: { subnetType: SubnetType.PRIVATE_WITH_EGRESS },
    });

    const proxySecurityGroup = new SecurityGroup(this, 'ProxySecurityGroup', {
      vpc: props.vpc,
      description: 'whatsapp-notif RDS proxy: reachable from the functions',
      allowAllOutbound: false,
    });
    /*
     * How each function signs in as its own role. Two ways exist: a Secrets Manager secret per
     * role registered with the proxy (passwords to create, rotate and keep in step with the
     * roles), or end-to-end IAM authentication (DefaultAuthScheme IAM_AUTH: the proxy signs in to
     * PostgreSQL with IAM as the same user the client signed in as; the roles hold `rds_iam` and
     * have no password at all). This stack uses end-to-end IAM for the function roles and keeps
     * the master secret registered for notif_admin, whom only the migrate function uses: the
     * master keeps its password (the rotation function and a human with psql need it) and must not
     * be given rds_iam, which would end password sign-in for it.
     * Sources: CDK `DatabaseProxyOptions.defaultAuthScheme` ("When set to IAM_AUTH, the proxy uses
     * end-to-end IAM authentication"; CDK requires secrets only with NONE and accepts both), RDS
     * User Guide "Configuring IAM authentication for RDS Proxy" (end-to-end needs rds-db:connect
     * on the proxy's role for each database user) and "Migrating from standard IAM authentication
     * to end-to-end IAM authentication" (the proxy keeps its secrets and gains rds-db:connect, so
     * both coexist during the switch). A first deploy must confirm notif_admin still connects
     * through the proxy by its secret; if not, the fallback is the migrate function connecting to
     * the instance directly with the master secret (see the report on issue 11).
     */
    // Made here rather than by the proxy, to give it rds-db:connect below.
    const proxyRole = new Role(this, 'ProxyRole', {
      assumedBy: new ServicePrincipal('rds.amazonaws.com'),
      description: `${props.prefix} RDS proxy: reads the master secret, signs in as the function roles`,
    });
    this.proxy = new DatabaseProxy(this, 'Proxy', {
      role: proxyRole,
      dbProxyName: props.prefix,
      proxyTarget: ProxyTarget.fromInstance(this.instance),
      defaultAuthScheme: DefaultAuthScheme.IAM_AUTH,
      secrets: [this.secret],
      vpc: props.vpc,
      vpcSubnets: { subnetType: SubnetType.PRIVATE_WITH_EGRESS },
      securityGroups: [proxySecurityGroup],
      iamAuth: true,
      requireTLS: true,
      // Leave room for the rotation function and a human with psql when the pool is full.
      maxConnectionsPercent: PROXY_MAX_CONNECTIONS_PERCENT,
      // A Lambda waits at most this long for a pooled connection, well inside its own timeout.
      borrowTimeout: Duration.seconds(10),
    });

    // End-to-end IAM: the proxy itself signs in to the instance as each function role.
    const stack = Stack.of(this);
    Grant.addToPrincipal({
      grantee: proxyRole,
      actions: ['rds-db:connect'],
      resourceArns: Object.values(FUNCTION_DATABASE_ROLES).map((role) =>
        stack.formatArn({
          service: 'rds-db',
          resource: 'dbuser',
          resourceName: `${this.instance.instanceResourceId}/${role}`,
          arnFormat: ArnFormat.COLON_RESOURCE_NAME,
        }),
      ),
    });

    proxySecurityGroup.addEgressRule(
      databaseSecurityGroup,
      Port.tcp(POSTGRES_PORT),
      'proxy to PostgreSQL',
    );
    databaseSecurityGroup.addIngressRule(
      proxySecurityGroup,
      Port.tcp(POSTGRES_PORT),
      'from the RDS proxy',
    );
    proxySecurityGroup.addIngressRule(
      props.clientSecurityGroup,
      Port.tcp(POSTGRES_PORT),
      'from the functions',
    );
  }

  /** IAM permission to connect through the proxy as this client's database user, and no other. */
  grantConnect(grantee: IGrantable, client: DatabaseClient): void {
    this.proxy.grantConnect(grantee, databaseUserOf(client));
  }

  /** The environment the client's database configuration reads (lambdas/core/platform/config.ts). */
  connectionEnvironment(client: DatabaseClient): Record<string, string> {
    return {
      DB_HOST: this.proxy.endpoint,
      DB_PORT: String(POSTGRES_PORT),
      DB_NAME: DATABASE_NAME,
      DB_USER: databaseUserOf(client),
      DB_IAM_AUTH: 'true',
    };
  }
}
