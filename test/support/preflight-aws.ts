/**
 * An AWS account for `ops preflight` tests, answered by aws-sdk-client-mock: healthy by default
 * (bootstrapped, logging role set, full concurrency, PostgreSQL orderable), with each answer
 * replaceable by a test. No AWS here; the answers have the shapes the services document.
 */
import { APIGatewayClient, GetAccountCommand } from '@aws-sdk/client-api-gateway';
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { GetRoleCommand, IAMClient } from '@aws-sdk/client-iam';
import {
  GetAccountSettingsCommand,
  GetFunctionConfigurationCommand,
  LambdaClient,
} from '@aws-sdk/client-lambda';
import {
  DescribeDBEngineVersionsCommand,
  DescribeDBProxyTargetsCommand,
  DescribeOrderableDBInstanceOptionsCommand,
  RDSClient,
} from '@aws-sdk/client-rds';
import {
  DescribeSecretCommand,
  GetSecretValueCommand,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import { runCli } from '../../bin/ops/cli.ts';

export const mocks = {
  ssm: mockClient(SSMClient),
  cloudFormation: mockClient(CloudFormationClient),
  apiGateway: mockClient(APIGatewayClient),
  iam: mockClient(IAMClient),
  lambda: mockClient(LambdaClient),
  rds: mockClient(RDSClient),
  secrets: mockClient(SecretsManagerClient),
};

export function resetMocks(): void {
  for (const mock of Object.values(mocks)) mock.reset();
}

/** An AWS SDK service error as the SDK throws it. */
export function awsError(name: string, message: string, httpStatusCode = 400): Error {
  return Object.assign(new Error(message), { name, $metadata: { httpStatusCode } });
}

export const ACCESS_DENIED = (action: string) =>
  awsError(
    'AccessDeniedException',
    `User: arn:aws:sts::111122223333:assumed-role/platform/alice is not authorized to perform: ${action}`,
    403,
  );

const LOGGING_ROLE = 'arn:aws:iam::111122223333:role/apigateway-cloudwatch-logs';

export type SecretSetup = Record<
  'access-token' | 'app-secret' | 'verify-token',
  string | 'PLACEHOLDER'
>;

export interface AccountSetup {
  /** Stack outputs when deployed; undefined = the stack does not exist. */
  stackOutputs?: Record<string, string>;
  /** The deployed worker's environment. */
  workerEnv?: Record<string, string>;
  /** undefined = the secrets do not exist (before the first deploy). */
  secrets?: SecretSetup;
}

/** Answers every call preflight makes as a healthy, ready account would. */
export function mockHealthyAccount(setup: AccountSetup = {}): void {
  resetMocks();
  mocks.ssm.on(GetParameterCommand).resolves({
    Parameter: { Name: '/cdk-bootstrap/hnb659fds/version', Value: '33', Type: 'String' },
  });
  mocks.cloudFormation
    .on(DescribeStacksCommand)
    .rejects(awsError('ValidationError', 'Stack with id unknown does not exist'));
  if (setup.stackOutputs) {
    mocks.cloudFormation.on(DescribeStacksCommand, { StackName: 'whatsapp-notif-prod' }).resolves({
      Stacks: [
        {
          StackName: 'whatsapp-notif-prod',
          CreationTime: new Date(),
          StackStatus: 'UPDATE_COMPLETE',
          Outputs: Object.entries(setup.stackOutputs).map(([OutputKey, OutputValue]) => ({
            OutputKey,
            OutputValue,
          })),
        },
      ],
    });
  }
  mocks.apiGateway.on(GetAccountCommand).resolves({ cloudwatchRoleArn: LOGGING_ROLE });
  mocks.iam.on(GetRoleCommand).resolves({
    Role: {
      RoleName: 'apigateway-cloudwatch-logs',
      Arn: LOGGING_ROLE,
      Path: '/',
      RoleId: 'AROAEXAMPLE',
      CreateDate: new Date('2024-01-01T00:00:00Z'),
    },
  });
  mocks.lambda.on(GetAccountSettingsCommand).resolves({
    AccountLimit: { ConcurrentExecutions: 1000, UnreservedConcurrentExecutions: 1000 },
  });
  mocks.lambda
    .on(GetFunctionConfigurationCommand)
    .resolves({ Environment: { Variables: setup.workerEnv ?? {} } });
  mocks.rds.on(DescribeDBEngineVersionsCommand).resolves({
    DBEngineVersions: [
      { Engine: 'postgres', EngineVersion: '18.3', DBParameterGroupFamily: 'postgres18' },
    ],
  });
  mocks.rds.on(DescribeOrderableDBInstanceOptionsCommand).resolves({
    OrderableDBInstanceOptions: [
      { DBInstanceClass: 'db.m7g.large', StorageType: 'gp2', MultiAZCapable: true },
      { DBInstanceClass: 'db.m7g.large', StorageType: 'gp3', MultiAZCapable: true },
    ],
  });
  mocks.rds.on(DescribeDBProxyTargetsCommand).resolves({
    Targets: [
      {
        Type: 'RDS_INSTANCE',
        RdsResourceId: 'whatsapp-notif-prod',
        TargetHealth: { State: 'AVAILABLE' },
      },
    ],
  });
  if (!setup.secrets) {
    mocks.secrets
      .on(DescribeSecretCommand)
      .rejects(
        awsError('ResourceNotFoundException', "Secrets Manager can't find the specified secret."),
      );
    return;
  }
  const created = new Date('2026-11-01T10:00:00Z');
  for (const [name, value] of Object.entries(setup.secrets)) {
    const id = `whatsapp-notif-prod/whatsapp/${name}`;
    mocks.secrets
      .on(DescribeSecretCommand, { SecretId: id })
      .resolves({ Name: id, CreatedDate: created });
    mocks.secrets.on(GetSecretValueCommand, { SecretId: id }).resolves(
      value === 'PLACEHOLDER'
        ? // The random value CloudFormation generated with the secret, never replaced.
          { Name: id, SecretString: 'q!3Zr`8x]Lk0c^b?PdA', CreatedDate: created }
        : { Name: id, SecretString: value, CreatedDate: new Date('2026-11-02T09:00:00Z') },
    );
  }
}

export interface PreflightRun {
  code: number;
  stdout: string;
  stderr: string;
  /** The --json document, when asked for. */
  json: {
    passed: boolean;
    deployed: boolean;
    counts: { ok: number; warn: number; fail: number };
    checks: { id: string; status: string; summary: string; fix?: string }[];
  };
}

export async function runPreflight(extra: string[] = [], json = true): Promise<PreflightRun> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(
    [
      'preflight',
      '--stage',
      'prod',
      '--region',
      'eu-west-1',
      ...(json ? ['--json'] : []),
      ...extra,
    ],
    {
      stdout: (text) => {
        stdout += text;
      },
      stderr: (text) => {
        stderr += text;
      },
      env: {},
    },
  );
  return { code, stdout, stderr, json: json && stdout ? JSON.parse(stdout) : undefined };
}

/** The one check with this id. */
export function check(run: PreflightRun, id: string) {
  const found = run.json.checks.filter((c) => c.id === id);
  if (found.length !== 1) throw new Error(`expected one check ${id}, got ${found.length}`);
  return found[0]!;
}
