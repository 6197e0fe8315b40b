/**
 * The AWS side of `ops preflight`: CDK bootstrap, the account's API Gateway logging role, Lambda
 * concurrency, and PostgreSQL on RDS behind RDS Proxy, each read from the account with the
 * credentials of the shell and judged against what this stack needs.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type APIGatewayClient, GetAccountCommand } from '@aws-sdk/client-api-gateway';
import { type CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { GetRoleCommand, type IAMClient } from '@aws-sdk/client-iam';
import { GetAccountSettingsCommand, type LambdaClient } from '@aws-sdk/client-lambda';
import {
  DescribeDBEngineVersionsCommand,
  DescribeDBProxyTargetsCommand,
  DescribeOrderableDBInstanceOptionsCommand,
  type RDSClient,
} from '@aws-sdk/client-rds';
import { GetParameterCommand, type SSMClient } from '@aws-sdk/client-ssm';
import type { StageConfig } from '../../../lib/config.ts';
import { awsFailure, type CheckResult, errorName, fail, ok, warn } from './check.ts';

export interface AwsClients {
  ssm: SSMClient;
  cloudFormation: CloudFormationClient;
  apiGateway: APIGatewayClient;
  iam: IAMClient;
  lambda: LambdaClient;
  rds: RDSClient;
}

// ------------------------------------------------------------------ CDK bootstrap

/**
 * The oldest bootstrap the synthesized stack accepts: its CheckBootstrapVersion rule refuses
 * versions 1 to 5 (aws-cdk-lib's default synthesizer). A test reads the rule from the
 * synthesized template, so this number cannot drift from it.
 */
export const MIN_BOOTSTRAP_VERSION = 6;
export const BOOTSTRAP_VERSION_PARAMETER = '/cdk-bootstrap/hnb659fds/version';
const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/**
 * The bootstrap version the pinned CDK CLI deploys, read from the template it ships (the value
 * of its CdkBootstrapVersion parameter), so it moves with every CLI upgrade.
 */
export function shippedBootstrapVersion(
  root = REPO_ROOT,
): { cliVersion: string; bootstrapVersion: number } | undefined {
  try {
    const cli = JSON.parse(readFileSync(`${root}node_modules/aws-cdk/package.json`, 'utf8')) as {
      version: string;
    };
    const template = readFileSync(
      `${root}node_modules/aws-cdk/lib/api/bootstrap/bootstrap-template.yaml`,
      'utf8',
    );
    const version = bootstrapVersionOfTemplate(template);
    return version === undefined
      ? undefined
      : { cliVersion: cli.version, bootstrapVersion: version };
  } catch {
    return undefined;
  }
}

export function bootstrapVersionOfTemplate(template: string): number | undefined {
  const match = /\n {2}CdkBootstrapVersion:\n(?: {4}.*\n)*? {6}Value: '(\d+)'/.exec(template);
  return match ? Number(match[1]) : undefined;
}

async function readBootstrapVersion(
  clients: AwsClients,
): Promise<{ version: number; source: string } | { missing: true } | { error: CheckResult }> {
  const id = 'cdk-bootstrap';
  try {
    const answer = await clients.ssm.send(
      new GetParameterCommand({ Name: BOOTSTRAP_VERSION_PARAMETER }),
    );
    const version = Number(answer.Parameter?.Value);
    if (Number.isInteger(version)) return { version, source: `SSM ${BOOTSTRAP_VERSION_PARAMETER}` };
  } catch (error) {
    if (errorName(error) !== 'ParameterNotFound') {
      return { error: awsFailure(id, 'cdk bootstrap', 'ssm:GetParameter', error) };
    }
  }
  // An older or custom bootstrap may lack the parameter; the CDKToolkit stack's output says it too.
  try {
    const answer = await clients.cloudFormation.send(
      new DescribeStacksCommand({ StackName: 'CDKToolkit' }),
    );
    const output = answer.Stacks?.[0]?.Outputs?.find((o) => o.OutputKey === 'BootstrapVersion');
    const version = Number(output?.OutputValue);
    if (Number.isInteger(version)) return { version, source: 'stack CDKToolkit' };
    return { missing: true };
  } catch (error) {
    if (/does not exist/.test(error instanceof Error ? error.message : ''))
      return { missing: true };
    return { error: awsFailure(id, 'cdk bootstrap', 'cloudformation:DescribeStacks', error) };
  }
}

export async function checkCdkBootstrap(
  clients: AwsClients,
  region: string,
  shipped = shippedBootstrapVersion(),
): Promise<CheckResult> {
  const id = 'cdk-bootstrap';
  const title = 'cdk bootstrap';
  const bootstrap = `npx cdk bootstrap aws://<account-id>/${region}`;
  const found = await readBootstrapVersion(clients);
  if ('error' in found) return found.error;
  if ('missing' in found) {
    return fail(
      id,
      title,
      `${region} is not bootstrapped for CDK (no ${BOOTSTRAP_VERSION_PARAMETER}, no CDKToolkit stack)`,
      `run ${bootstrap} once with these credentials`,
    );
  }
  if (found.version < MIN_BOOTSTRAP_VERSION) {
    return fail(
      id,
      title,
      `bootstrap version ${found.version}; the stack requires ${MIN_BOOTSTRAP_VERSION} or newer`,
      `run ${bootstrap} with the project's CLI to upgrade it`,
    );
  }
  if (!shipped) {
    return warn(
      id,
      title,
      `bootstrap version ${found.version} (${found.source}); the pinned CLI's template could not be read`,
      'run npm ci so node_modules/aws-cdk is present, then run preflight again',
    );
  }
  if (found.version < shipped.bootstrapVersion) {
    return warn(
      id,
      title,
      `bootstrap version ${found.version}; aws-cdk ${shipped.cliVersion} ships ${shipped.bootstrapVersion}`,
      `run ${bootstrap} with the project's CLI (npx) to upgrade it; deploys work meanwhile`,
    );
  }
  return ok(
    id,
    title,
    `bootstrap version ${found.version} (aws-cdk ${shipped.cliVersion} ships ${shipped.bootstrapVersion})`,
  );
}

// ------------------------------------------------------------------ API Gateway logging role

export async function checkApiGatewayRole(clients: AwsClients): Promise<CheckResult> {
  const id = 'apigateway-cloudwatch-role';
  const title = 'api gateway logging role';
  let roleArn: string | undefined;
  try {
    roleArn = (await clients.apiGateway.send(new GetAccountCommand({}))).cloudwatchRoleArn;
  } catch (error) {
    return awsFailure(id, title, 'apigateway:GET (on /account)', error);
  }
  const ownRole =
    'the stack sets its own role on first deploy; nothing to do unless another team manages this setting';
  if (!roleArn) {
    return warn(
      id,
      title,
      'no CloudWatch Logs role set for API Gateway in this account and region',
      ownRole,
    );
  }
  const roleName = roleArn.split('/').pop() ?? roleArn;
  try {
    await clients.iam.send(new GetRoleCommand({ RoleName: roleName }));
  } catch (error) {
    if (errorName(error) === 'NoSuchEntityException' || errorName(error) === 'NoSuchEntity') {
      return warn(id, title, `set to ${roleArn}, which no longer exists`, ownRole);
    }
    return awsFailure(id, title, 'iam:GetRole', error);
  }
  return ok(id, title, `set to ${roleName}, which exists; the stack leaves it alone`);
}

// ------------------------------------------------------------------ Lambda concurrency

/** A new account's default is 1,000 concurrent executions; reduced quotas start far lower. */
export const USUAL_ACCOUNT_CONCURRENCY = 1000;
/** Seconds an API call holds a Lambda (generous): API concurrency ≈ throttle rate × this. */
const API_SECONDS_PER_CALL = 0.1;
/** webhook bursts, scheduler and migrate, on top of the API and the workers. */
const OTHER_FUNCTIONS_HEADROOM = 10;

/** What the stage can use at once: both worker mappings at their cap, plus the other functions. */
export function concurrencyNeed(config: StageConfig): {
  workers: number;
  others: number;
  total: number;
} {
  const workers = config.workerMaxConcurrency.high + config.workerMaxConcurrency.bulk;
  const others =
    Math.ceil(config.apiThrottle.rateLimit * API_SECONDS_PER_CALL) + OTHER_FUNCTIONS_HEADROOM;
  return { workers, others, total: workers + others };
}

export async function checkLambdaConcurrency(
  clients: AwsClients,
  config: StageConfig,
  region: string,
): Promise<CheckResult> {
  const id = 'lambda-concurrency';
  const title = 'lambda concurrency';
  let limit: number | undefined;
  let unreserved: number | undefined;
  try {
    const answer = await clients.lambda.send(new GetAccountSettingsCommand({}));
    limit = answer.AccountLimit?.ConcurrentExecutions;
    unreserved = answer.AccountLimit?.UnreservedConcurrentExecutions ?? limit;
  } catch (error) {
    return awsFailure(id, title, 'lambda:GetAccountSettings', error);
  }
  if (limit === undefined || unreserved === undefined) {
    return fail(id, title, 'GetAccountSettings gave no concurrency limit', 'run preflight again');
  }
  const need = concurrencyNeed(config);
  const quotaFix = `ask for ${USUAL_ACCOUNT_CONCURRENCY}: aws service-quotas request-service-quota-increase --service-code lambda --quota-code L-B99A9384 --desired-value ${USUAL_ACCOUNT_CONCURRENCY} --region ${region}`;
  const numbers = `account limit ${limit}, unreserved ${unreserved}; the stage needs ${need.total} (workers ${need.workers} + api/webhook/scheduler ${need.others})`;
  if (unreserved < need.total) {
    return fail(id, title, numbers, `${quotaFix} (or lower workerMaxConcurrency in lib/config.ts)`);
  }
  if (limit < USUAL_ACCOUNT_CONCURRENCY) {
    return warn(id, title, `${numbers}; a reduced new-account quota`, quotaFix);
  }
  return ok(id, title, numbers);
}

// ------------------------------------------------------------------ RDS and RDS Proxy

/** Where RDS Proxy's supported engine versions are documented: no RDS API reports them. */
export const RDS_PROXY_ENGINES_PAGE =
  'https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/Concepts.RDS_Fea_Regions_DB-eng.Feature.RDSProxy.html';

export interface RdsCheckInput {
  config: StageConfig;
  postgresMajor: string;
  region: string;
  /** Set when the stack is deployed: the proxy's target health answers the support question. */
  proxyName?: string;
}

export async function checkRds(clients: AwsClients, input: RdsCheckInput): Promise<CheckResult[]> {
  const engineId = 'rds-engine';
  const engineTitle = 'rds postgresql';
  const family = `postgres${input.postgresMajor}`;
  let version: string | undefined;
  try {
    // The parameter group family names the major; DefaultOnly gives the minor RDS creates today.
    const answer = await clients.rds.send(
      new DescribeDBEngineVersionsCommand({
        Engine: 'postgres',
        DBParameterGroupFamily: family,
        DefaultOnly: true,
      }),
    );
    version = answer.DBEngineVersions?.[0]?.EngineVersion;
  } catch (error) {
    return [awsFailure(engineId, engineTitle, 'rds:DescribeDBEngineVersions', error)];
  }
  if (!version) {
    return [
      fail(
        engineId,
        engineTitle,
        `no PostgreSQL ${input.postgresMajor} version can be created in ${input.region}`,
        `deploy to a region that offers it, or change POSTGRES_MAJOR_VERSION in lib/database.ts`,
      ),
    ];
  }

  const instanceClass = `db.${input.config.databaseInstanceType}`;
  let orderable: CheckResult;
  try {
    const answer = await clients.rds.send(
      new DescribeOrderableDBInstanceOptionsCommand({
        Engine: 'postgres',
        EngineVersion: version,
        DBInstanceClass: instanceClass,
        Vpc: true,
      }),
    );
    const options = answer.OrderableDBInstanceOptions ?? [];
    const gp3 = options.filter((o) => o.StorageType === 'gp3');
    const fits = gp3.filter((o) => !input.config.multiAz || o.MultiAZCapable);
    const wanted = `${instanceClass}, gp3${input.config.multiAz ? ', Multi-AZ' : ''}`;
    orderable =
      fits.length > 0
        ? ok(
            engineId,
            engineTitle,
            `PostgreSQL ${version} (default of ${input.postgresMajor}) orderable as ${wanted}`,
          )
        : fail(
            engineId,
            engineTitle,
            `PostgreSQL ${version} cannot be ordered as ${wanted} in ${input.region}`,
            'choose an orderable databaseInstanceType in lib/config.ts (aws rds describe-orderable-db-instance-options --engine postgres --engine-version ' +
              `${version} --query "OrderableDBInstanceOptions[].DBInstanceClass")`,
          );
  } catch (error) {
    orderable = awsFailure(engineId, engineTitle, 'rds:DescribeOrderableDBInstanceOptions', error);
  }
  return [orderable, await checkProxySupport(clients, input, version)];
}

async function checkProxySupport(
  clients: AwsClients,
  input: RdsCheckInput,
  version: string,
): Promise<CheckResult> {
  const id = 'rds-proxy';
  const title = 'rds proxy';
  if (!input.proxyName) {
    // DBEngineVersion has no proxy flag (SupportedFeatureNames lists integrations such as
    // s3Import, not the proxy), so before the first deploy only the documentation can answer.
    return warn(
      id,
      title,
      `no RDS API says whether RDS Proxy supports PostgreSQL ${input.postgresMajor}; not confirmed before the first deploy`,
      `check "RDS Proxy with RDS for PostgreSQL" for ${input.region} on ${RDS_PROXY_ENGINES_PAGE}; after the deploy, preflight reads the proxy's target health`,
    );
  }
  try {
    const answer = await clients.rds.send(
      new DescribeDBProxyTargetsCommand({ DBProxyName: input.proxyName }),
    );
    const target = (answer.Targets ?? []).find((t) => t.Type === 'RDS_INSTANCE');
    const health = target?.TargetHealth;
    if (health?.State === 'AVAILABLE') {
      return ok(
        id,
        title,
        `${input.proxyName} reaches its PostgreSQL ${version} instance (target AVAILABLE)`,
      );
    }
    if (health?.State === 'REGISTERING') {
      return warn(
        id,
        title,
        `${input.proxyName}: target still REGISTERING`,
        'wait a few minutes and run preflight again',
      );
    }
    return fail(
      id,
      title,
      `${input.proxyName}: target ${health?.State ?? 'missing'}${health?.Reason ? ` (${health.Reason}` : ''}${health?.Description ? `: ${health.Description})` : health?.Reason ? ')' : ''}`,
      'see runbooks/database.md; an engine the proxy does not support shows here as UNAVAILABLE',
    );
  } catch (error) {
    if (errorName(error) === 'DBProxyNotFoundFault') {
      return fail(
        id,
        title,
        `the stack is deployed but has no proxy ${input.proxyName}`,
        'redeploy the stack',
      );
    }
    return awsFailure(id, title, 'rds:DescribeDBProxyTargets', error);
  }
}
