/**
 * Runs every preflight check for one stage: reads the stack (if deployed) and the deployed worker's
 * WhatsApp settings once, then asks AWS and Meta, and returns the results in a fixed order.
 */
import { APIGatewayClient } from '@aws-sdk/client-api-gateway';
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { IAMClient } from '@aws-sdk/client-iam';
import { GetFunctionConfigurationCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { RDSClient } from '@aws-sdk/client-rds';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SSMClient } from '@aws-sdk/client-ssm';
import { DEFAULT_GRAPH_API_URL } from '#core/whatsapp/config.ts';
import {
  DEFAULT_GRAPH_VERSION,
  resourcePrefix,
  STAGE_CONFIG,
  type Stage,
} from '../../../lib/config.ts';
import { POSTGRES_MAJOR_VERSION } from '../../../lib/database.ts';
import { OpsError, UsageError } from '../target.ts';
import {
  type AwsClients,
  checkApiGatewayRole,
  checkCdkBootstrap,
  checkLambdaConcurrency,
  checkRds,
} from './aws.ts';
import { awsFailure, type CheckResult, errorName } from './check.ts';
import { checkWhatsApp, readWhatsAppSecrets } from './meta.ts';

export interface PreflightInput {
  stage: Stage;
  stackName: string;
  region: string | undefined;
  phoneNumberId: string | undefined;
  wabaId: string | undefined;
  whatsappApiUrl: string | undefined;
}

export interface PreflightReport {
  stage: Stage;
  stackName: string;
  region: string;
  deployed: boolean;
  /** Where the WhatsApp checks went: Meta's host unless a flag, WHATSAPP_API_URL or the stage says otherwise. */
  graphApiUrl: string;
  graphApiIsMeta: boolean;
  checks: CheckResult[];
}

type StackState =
  | { deployed: true; outputs: Record<string, string> }
  | { deployed: false }
  | { failed: CheckResult };

async function readStack(
  cloudFormation: CloudFormationClient,
  stackName: string,
): Promise<StackState> {
  try {
    const answer = await cloudFormation.send(new DescribeStacksCommand({ StackName: stackName }));
    const stack = answer.Stacks?.[0];
    // A first create that rolled back leaves the stack in a state that holds no working resources.
    if (!stack || stack.StackStatus === 'ROLLBACK_COMPLETE') return { deployed: false };
    const outputs: Record<string, string> = {};
    for (const o of stack.Outputs ?? [])
      if (o.OutputKey && o.OutputValue) outputs[o.OutputKey] = o.OutputValue;
    return { deployed: true, outputs };
  } catch (error) {
    if (/does not exist/.test(error instanceof Error ? error.message : ''))
      return { deployed: false };
    // Without credentials every check would fail the same way: one clear error instead.
    if (errorName(error) === 'CredentialsProviderError') {
      throw new OpsError(
        'no AWS credentials: set AWS_PROFILE (or run aws sso login) for the target account, then run preflight again',
      );
    }
    return {
      failed: awsFailure('stack', 'stack', `cloudformation:DescribeStacks on ${stackName}`, error),
    };
  }
}

/** WHATSAPP_* of the deployed worker: the ids and Graph settings the stage really runs with. */
export async function readDeployedWhatsAppSettings(
  lambda: LambdaClient,
  functionName: string | undefined,
): Promise<{ env: Record<string, string> } | { failed: CheckResult }> {
  if (!functionName) return { env: {} };
  try {
    const answer = await lambda.send(
      new GetFunctionConfigurationCommand({ FunctionName: functionName }),
    );
    return { env: answer.Environment?.Variables ?? {} };
  } catch (error) {
    return {
      failed: awsFailure(
        'deployed-settings',
        'deployed settings',
        `lambda:GetFunctionConfiguration on ${functionName}`,
        error,
      ),
    };
  }
}

export async function runPreflight(input: PreflightInput): Promise<PreflightReport> {
  const clientConfig = input.region ? { region: input.region } : {};
  const cloudFormation = new CloudFormationClient(clientConfig);
  let region: string;
  try {
    region = await cloudFormation.config.region();
  } catch {
    throw new UsageError('no AWS region: pass --region or set AWS_REGION');
  }
  const clients: AwsClients = {
    ssm: new SSMClient({ region }),
    cloudFormation,
    apiGateway: new APIGatewayClient({ region }),
    iam: new IAMClient({ region }),
    lambda: new LambdaClient({ region }),
    rds: new RDSClient({ region }),
  };
  const config = STAGE_CONFIG[input.stage];
  const prefix = resourcePrefix(input.stage);
  const checks: CheckResult[] = [];

  const stack = await readStack(cloudFormation, input.stackName);
  if ('failed' in stack) checks.push(stack.failed);
  const outputs = 'deployed' in stack && stack.deployed ? stack.outputs : undefined;

  const [bootstrap, role, concurrency, rds, deployedSettings, secrets] = await Promise.all([
    checkCdkBootstrap(clients, region),
    checkApiGatewayRole(clients),
    checkLambdaConcurrency(clients, config, region),
    checkRds(clients, {
      config,
      postgresMajor: POSTGRES_MAJOR_VERSION,
      region,
      ...(outputs ? { proxyName: prefix } : {}),
    }),
    readDeployedWhatsAppSettings(clients.lambda, outputs?.WorkerFunctionName),
    readWhatsAppSecrets(new SecretsManagerClient({ region }), prefix),
  ]);
  checks.push(bootstrap, role, concurrency, ...rds);

  const deployedEnv = 'env' in deployedSettings ? deployedSettings.env : {};
  if ('failed' in deployedSettings) checks.push(deployedSettings.failed);
  const graphApiUrl = input.whatsappApiUrl ?? deployedEnv.WHATSAPP_API_URL ?? DEFAULT_GRAPH_API_URL;
  checks.push(
    ...(await checkWhatsApp({
      prefix,
      secrets,
      apiUrl: graphApiUrl,
      graphVersion: deployedEnv.WHATSAPP_GRAPH_VERSION ?? DEFAULT_GRAPH_VERSION,
      phoneNumberId: input.phoneNumberId ?? deployedEnv.WHATSAPP_PHONE_NUMBER_ID,
      wabaId: input.wabaId ?? deployedEnv.WHATSAPP_WABA_ID,
      webhookUrl: outputs?.WebhookUrl,
    })),
  );
  return {
    stage: input.stage,
    stackName: input.stackName,
    region,
    deployed: outputs !== undefined,
    graphApiUrl,
    graphApiIsMeta: graphApiUrl === DEFAULT_GRAPH_API_URL,
    checks,
  };
}
