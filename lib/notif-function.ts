/**
 * Our NodejsFunction: one place for the defaults every function shares (Node.js 24 on arm64,
 * esbuild ESM bundle with source maps, private subnets, an explicit log group kept 30 days).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Duration, RemovalPolicy } from 'aws-cdk-lib';
import { Stack } from 'aws-cdk-lib';
import type { ISecurityGroup, IVpc } from 'aws-cdk-lib/aws-ec2';
import { SubnetType } from 'aws-cdk-lib/aws-ec2';
import { Architecture, Code, Runtime } from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import { type FunctionName, LAMBDA_BUNDLING, LAMBDA_ENTRIES } from './bundling.ts';

export const PROJECT_ROOT = fileURLToPath(new URL('..', import.meta.url));

export const LOG_RETENTION = RetentionDays.ONE_MONTH;

export function logGroupName(name: string): string {
  return `/whatsapp-notif/${name}`;
}

export interface NotifFunctionProps {
  name: FunctionName;
  /** Physical name prefix, `whatsapp-notif-<stage>`. */
  prefix: string;
  description: string;
  vpc: IVpc;
  securityGroup: ISecurityGroup;
  environment: Record<string, string>;
  timeout: Duration;
  memorySize: number;
  /** What happens to the log group when the stack is deleted. */
  logRemovalPolicy: RemovalPolicy;
}

export class NotifFunction extends NodejsFunction {
  readonly logGroupRef: LogGroup;

  constructor(scope: Construct, id: string, props: NotifFunctionProps) {
    // The log group exists before the function so nothing else (the Lambda service on first
    // invoke) creates it without a retention.
    const logGroup = new LogGroup(scope, `${id}LogGroup`, {
      logGroupName: logGroupName(props.name),
      retention: LOG_RETENTION,
      removalPolicy: props.logRemovalPolicy,
    });
    const entry = join(PROJECT_ROOT, LAMBDA_ENTRIES[props.name]);
    super(scope, id, {
      functionName: `${props.prefix}-${props.name}`,
      description: props.description,
      runtime: Runtime.NODEJS_24_X,
      architecture: Architecture.ARM_64,
      memorySize: props.memorySize,
      timeout: props.timeout,
      vpc: props.vpc,
      vpcSubnets: { subnetType: SubnetType.PRIVATE_WITH_EGRESS },
      securityGroups: [props.securityGroup],
      logGroup,
      environment: { NODE_OPTIONS: '--enable-source-maps', ...props.environment },
      ...bundlingOrStub(scope, entry),
    });
    this.logGroupRef = logGroup;
  }
}

/**
 * The entry bundled with the shared options. One exception: with bundling switched off
 * (`aws:cdk:bundling-stacks` = [], as the infrastructure tests do) a handler that does not exist
 * yet gets an inline stub, so the stack can be checked while the functions are being written. A
 * real synth bundles and needs every entry.
 */
function bundlingOrStub(scope: Construct, entry: string) {
  if (!Stack.of(scope).bundlingRequired && !existsSync(entry)) {
    return {
      code: Code.fromInline('export const handler = async () => {};'),
      handler: 'index.handler',
    };
  }
  return {
    entry,
    handler: 'handler',
    projectRoot: PROJECT_ROOT,
    depsLockFilePath: join(PROJECT_ROOT, 'package-lock.json'),
    bundling: {
      target: LAMBDA_BUNDLING.target,
      format: OutputFormat.ESM,
      minify: LAMBDA_BUNDLING.minify,
      sourceMap: LAMBDA_BUNDLING.sourceMap,
      sourcesContent: LAMBDA_BUNDLING.sourcesContent,
      mainFields: [...LAMBDA_BUNDLING.mainFields],
      externalModules: [...LAMBDA_BUNDLING.externalModules],
      // CDK runs esbuild in the project root, where the aliases' relative paths start.
      esbuildArgs: {
        '--alias': Object.entries(LAMBDA_BUNDLING.aliases).map(([k, v]) => `${k}=${v}`),
      },
      banner: LAMBDA_BUNDLING.banner,
    },
  };
}
