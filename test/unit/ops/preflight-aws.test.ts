/**
 * `ops preflight`, AWS side: each check's ok, warn and FAIL against aws-sdk-client-mock answers,
 * the exit code, and a refused call turning into a FAIL that names the permission.
 */
import { readFileSync } from 'node:fs';
import { GetAccountCommand } from '@aws-sdk/client-api-gateway';
import { DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { GetRoleCommand } from '@aws-sdk/client-iam';
import { GetAccountSettingsCommand, GetFunctionConfigurationCommand } from '@aws-sdk/client-lambda';
import {
  DescribeDBEngineVersionsCommand,
  DescribeDBProxyTargetsCommand,
  DescribeOrderableDBInstanceOptionsCommand,
} from '@aws-sdk/client-rds';
import { GetParameterCommand } from '@aws-sdk/client-ssm';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli } from '../../../bin/ops/cli.ts';
import {
  bootstrapVersionOfTemplate,
  concurrencyNeed,
  MIN_BOOTSTRAP_VERSION,
  shippedBootstrapVersion,
} from '../../../bin/ops/preflight/aws.ts';
import { STAGE_CONFIG } from '../../../lib/config.ts';
import {
  ACCESS_DENIED,
  awsError,
  check,
  mockHealthyAccount,
  mocks,
  resetMocks,
  runPreflight,
} from '../../support/preflight-aws.ts';

afterEach(() => resetMocks());

const SHIPPED = shippedBootstrapVersion();

describe('ops preflight on a ready account', () => {
  it('passes every AWS check and exits 0; the WhatsApp checks wait for the secrets', async () => {
    mockHealthyAccount();

    const run = await runPreflight();

    expect(run.code).toBe(0);
    expect(run.json.checks.map((c) => [c.id, c.status])).toEqual([
      ['cdk-bootstrap', SHIPPED && SHIPPED.bootstrapVersion > 33 ? 'warn' : 'ok'],
      ['apigateway-cloudwatch-role', 'ok'],
      ['lambda-concurrency', 'ok'],
      ['rds-engine', 'ok'],
      ['rds-proxy', 'warn'],
      ['whatsapp-secrets', 'warn'],
    ]);
    expect(check(run, 'rds-engine').summary).toBe(
      'PostgreSQL 18.3 (default of 18) orderable as db.m7g.large, gp3, Multi-AZ',
    );
    expect(run.json).toMatchObject({ passed: true, deployed: false });
  });

  it('prints one line per check, with the fix under each warn', async () => {
    mockHealthyAccount();

    const run = await runPreflight([], false);

    const lines = run.stdout.split('\n');
    expect(lines[0]).toBe(
      'Preflight of whatsapp-notif-prod (stage prod) in eu-west-1, not deployed yet',
    );
    expect(lines[1]).toBe('');
    expect(
      lines.some((l) =>
        /^ok {4}lambda concurrency +account limit 1000, unreserved 1000; the stage needs 90 \(workers 30 \+ api\/webhook\/scheduler 60\)$/.test(
          l,
        ),
      ),
    ).toBe(true);
    const proxy = lines.findIndex((l) => l.startsWith('warn  rds proxy'));
    expect(lines[proxy + 1]).toMatch(
      /^ +fix: check "RDS Proxy with RDS for PostgreSQL" for eu-west-1/,
    );
    expect(lines.at(-2)).toMatch(/^\d ok, 2 warn, 0 FAIL\.$/);
  });
});

describe('cdk bootstrap', () => {
  it('FAILs when the region was never bootstrapped, with the bootstrap command', async () => {
    mockHealthyAccount();
    mocks.ssm.on(GetParameterCommand).rejects(awsError('ParameterNotFound', 'not found'));

    const run = await runPreflight();

    expect(run.code).toBe(1);
    expect(check(run, 'cdk-bootstrap')).toMatchObject({
      status: 'FAIL',
      fix: 'run npx cdk bootstrap aws://<account-id>/eu-west-1 once with these credentials',
    });
    expect(run.json.passed).toBe(false);
  });

  it('reads the CDKToolkit output when the parameter is missing, and FAILs below the minimum', async () => {
    mockHealthyAccount();
    mocks.ssm.on(GetParameterCommand).rejects(awsError('ParameterNotFound', 'not found'));
    mocks.cloudFormation.on(DescribeStacksCommand, { StackName: 'CDKToolkit' }).resolves({
      Stacks: [
        {
          StackName: 'CDKToolkit',
          CreationTime: new Date(),
          StackStatus: 'UPDATE_COMPLETE',
          Outputs: [{ OutputKey: 'BootstrapVersion', OutputValue: '5' }],
        },
      ],
    });

    const run = await runPreflight();

    expect(check(run, 'cdk-bootstrap')).toMatchObject({
      status: 'FAIL',
      summary: `bootstrap version 5; the stack requires ${MIN_BOOTSTRAP_VERSION} or newer`,
    });
    expect(run.code).toBe(1);
  });

  it('warns when older than what the pinned CLI ships, and deploys still pass', async () => {
    mockHealthyAccount();
    mocks.ssm.on(GetParameterCommand).resolves({ Parameter: { Value: '21' } });

    const run = await runPreflight();

    expect(check(run, 'cdk-bootstrap')).toMatchObject({
      status: 'warn',
      summary: `bootstrap version 21; aws-cdk ${SHIPPED?.cliVersion} ships ${SHIPPED?.bootstrapVersion}`,
    });
    expect(run.code).toBe(0);
  });

  it('FAILs naming ssm:GetParameter when the credentials may not read it', async () => {
    mockHealthyAccount();
    mocks.ssm.on(GetParameterCommand).rejects(ACCESS_DENIED('ssm:GetParameter'));

    const run = await runPreflight();

    expect(check(run, 'cdk-bootstrap')).toMatchObject({
      status: 'FAIL',
      summary: 'cannot check: missing permission ssm:GetParameter (AccessDeniedException)',
    });
    expect(run.code).toBe(1);
  });

  it('knows the version the installed aws-cdk ships, from its bootstrap template', () => {
    // The template repeats the number in its BootstrapVersion output; both must agree.
    const template = readFileSync(
      'node_modules/aws-cdk/lib/api/bootstrap/bootstrap-template.yaml',
      'utf8',
    );
    const output = /\n {2}BootstrapVersion:\n(?: {4}.*\n)*? {4}Value: '(\d+)'/.exec(template)?.[1];
    const installed = JSON.parse(readFileSync('node_modules/aws-cdk/package.json', 'utf8')).version;

    expect(SHIPPED).toEqual({ cliVersion: installed, bootstrapVersion: Number(output) });
    expect(SHIPPED!.bootstrapVersion).toBeGreaterThanOrEqual(MIN_BOOTSTRAP_VERSION);
    expect(bootstrapVersionOfTemplate('Resources:\n  Other:\n    Type: X\n')).toBeUndefined();
  });
});

describe('api gateway logging role', () => {
  it('warns when none is set: the stack sets its own on first deploy', async () => {
    mockHealthyAccount();
    mocks.apiGateway.on(GetAccountCommand).resolves({});

    const run = await runPreflight();

    expect(check(run, 'apigateway-cloudwatch-role')).toMatchObject({
      status: 'warn',
      summary: 'no CloudWatch Logs role set for API Gateway in this account and region',
      fix: expect.stringMatching(/^the stack sets its own role on first deploy/),
    });
    expect(run.code).toBe(0);
  });

  it('warns when the role it points at was deleted', async () => {
    mockHealthyAccount();
    mocks.iam
      .on(GetRoleCommand, { RoleName: 'apigateway-cloudwatch-logs' })
      .rejects(awsError('NoSuchEntityException', 'The role with name x cannot be found.', 404));

    const run = await runPreflight();

    expect(check(run, 'apigateway-cloudwatch-role')).toMatchObject({
      status: 'warn',
      summary:
        'set to arn:aws:iam::111122223333:role/apigateway-cloudwatch-logs, which no longer exists',
    });
  });

  it('names the role when it is set and exists, and FAILs naming iam:GetRole when refused', async () => {
    mockHealthyAccount();
    expect(check(await runPreflight(), 'apigateway-cloudwatch-role').summary).toBe(
      'set to apigateway-cloudwatch-logs, which exists; the stack leaves it alone',
    );

    mocks.iam.on(GetRoleCommand).rejects(awsError('AccessDenied', 'not authorized', 403));
    const run = await runPreflight();

    expect(check(run, 'apigateway-cloudwatch-role')).toMatchObject({
      status: 'FAIL',
      summary: 'cannot check: missing permission iam:GetRole (AccessDenied)',
    });
    expect(run.code).toBe(1);
  });
});

describe('lambda concurrency', () => {
  const need = concurrencyNeed(STAGE_CONFIG.prod);

  it('counts both worker caps and room for the other functions', () => {
    expect(need).toEqual({ workers: 30, others: 60, total: 90 });
    expect(concurrencyNeed(STAGE_CONFIG.dev)).toEqual({ workers: 4, others: 15, total: 19 });
  });

  it('FAILs when the unreserved pool cannot hold the stage, with the quota request', async () => {
    mockHealthyAccount();
    mocks.lambda.on(GetAccountSettingsCommand).resolves({
      AccountLimit: { ConcurrentExecutions: 50, UnreservedConcurrentExecutions: 50 },
    });

    const run = await runPreflight();

    expect(check(run, 'lambda-concurrency')).toMatchObject({
      status: 'FAIL',
      summary: `account limit 50, unreserved 50; the stage needs ${need.total} (workers 30 + api/webhook/scheduler 60)`,
      fix: expect.stringContaining('--quota-code L-B99A9384 --desired-value 1000'),
    });
    expect(run.code).toBe(1);
  });

  it('FAILs when other functions reserved the room the stage needs', async () => {
    mockHealthyAccount();
    mocks.lambda.on(GetAccountSettingsCommand).resolves({
      AccountLimit: { ConcurrentExecutions: 1000, UnreservedConcurrentExecutions: 80 },
    });

    expect(check(await runPreflight(), 'lambda-concurrency').status).toBe('FAIL');
  });

  it('warns on a reduced new-account quota that still fits', async () => {
    mockHealthyAccount();
    mocks.lambda.on(GetAccountSettingsCommand).resolves({
      AccountLimit: { ConcurrentExecutions: 400, UnreservedConcurrentExecutions: 400 },
    });

    const run = await runPreflight();

    expect(check(run, 'lambda-concurrency')).toMatchObject({
      status: 'warn',
      summary: expect.stringMatching(/a reduced new-account quota$/),
      fix: expect.stringMatching(
        /^ask for 1000: aws service-quotas request-service-quota-increase/,
      ),
    });
    expect(run.code).toBe(0);
  });

  it('FAILs naming lambda:GetAccountSettings when refused', async () => {
    mockHealthyAccount();
    mocks.lambda.on(GetAccountSettingsCommand).rejects(ACCESS_DENIED('lambda:GetAccountSettings'));

    expect(check(await runPreflight(), 'lambda-concurrency').summary).toBe(
      'cannot check: missing permission lambda:GetAccountSettings (AccessDeniedException)',
    );
  });
});

describe('rds', () => {
  it('asks for the default version of the pinned major, then for the class with it', async () => {
    mockHealthyAccount();

    await runPreflight();

    expect(mocks.rds.commandCalls(DescribeDBEngineVersionsCommand)[0]!.args[0].input).toEqual({
      Engine: 'postgres',
      DBParameterGroupFamily: 'postgres18',
      DefaultOnly: true,
    });
    expect(
      mocks.rds.commandCalls(DescribeOrderableDBInstanceOptionsCommand)[0]!.args[0].input,
    ).toEqual({
      Engine: 'postgres',
      EngineVersion: '18.3',
      DBInstanceClass: 'db.m7g.large',
      Vpc: true,
    });
  });

  it('FAILs when the region has no version of the major', async () => {
    mockHealthyAccount();
    mocks.rds.on(DescribeDBEngineVersionsCommand).resolves({ DBEngineVersions: [] });

    const run = await runPreflight();

    expect(check(run, 'rds-engine')).toMatchObject({
      status: 'FAIL',
      summary: 'no PostgreSQL 18 version can be created in eu-west-1',
    });
    expect(run.json.checks.some((c) => c.id === 'rds-proxy')).toBe(false);
    expect(run.code).toBe(1);
  });

  it('FAILs when the class cannot be ordered with gp3 and Multi-AZ', async () => {
    mockHealthyAccount();
    mocks.rds.on(DescribeOrderableDBInstanceOptionsCommand).resolves({
      OrderableDBInstanceOptions: [
        { DBInstanceClass: 'db.m7g.large', StorageType: 'gp3', MultiAZCapable: false },
      ],
    });

    const run = await runPreflight();

    expect(check(run, 'rds-engine')).toMatchObject({
      status: 'FAIL',
      summary: 'PostgreSQL 18.3 cannot be ordered as db.m7g.large, gp3, Multi-AZ in eu-west-1',
    });
  });

  it('FAILs naming the RDS permission when refused', async () => {
    mockHealthyAccount();
    mocks.rds
      .on(DescribeOrderableDBInstanceOptionsCommand)
      .rejects(ACCESS_DENIED('rds:DescribeOrderableDBInstanceOptions'));

    expect(check(await runPreflight(), 'rds-engine').summary).toBe(
      'cannot check: missing permission rds:DescribeOrderableDBInstanceOptions (AccessDeniedException)',
    );
  });

  it('reads the deployed proxy: ok when its target is AVAILABLE, FAIL when UNAVAILABLE', async () => {
    mockHealthyAccount({ stackOutputs: { WorkerFunctionName: 'whatsapp-notif-prod-worker' } });
    expect(check(await runPreflight(), 'rds-proxy')).toMatchObject({
      status: 'ok',
      summary: 'whatsapp-notif-prod reaches its PostgreSQL 18.3 instance (target AVAILABLE)',
    });
    expect(mocks.rds.commandCalls(DescribeDBProxyTargetsCommand)[0]!.args[0].input).toEqual({
      DBProxyName: 'whatsapp-notif-prod',
    });

    mocks.rds.on(DescribeDBProxyTargetsCommand).resolves({
      Targets: [
        {
          Type: 'RDS_INSTANCE',
          TargetHealth: {
            State: 'UNAVAILABLE',
            Reason: 'CONNECTION_FAILED',
            Description: 'Database engine version is not supported',
          },
        },
      ],
    });
    const run = await runPreflight();

    expect(check(run, 'rds-proxy')).toMatchObject({
      status: 'FAIL',
      summary:
        'whatsapp-notif-prod: target UNAVAILABLE (CONNECTION_FAILED: Database engine version is not supported)',
    });
    expect(run.code).toBe(1);
  });
});

describe('the stack and the deployed settings', () => {
  it('FAILs naming cloudformation:DescribeStacks when the stack cannot be read', async () => {
    mockHealthyAccount();
    mocks.cloudFormation
      .on(DescribeStacksCommand, { StackName: 'whatsapp-notif-prod' })
      .rejects(ACCESS_DENIED('cloudformation:DescribeStacks'));

    const run = await runPreflight();

    expect(check(run, 'stack')).toMatchObject({
      status: 'FAIL',
      summary:
        'cannot check: missing permission cloudformation:DescribeStacks on whatsapp-notif-prod (AccessDeniedException)',
    });
    expect(run.code).toBe(1);
  });

  it('reads the WhatsApp ids from the deployed worker when no flag gives them', async () => {
    mockHealthyAccount({
      stackOutputs: { WorkerFunctionName: 'whatsapp-notif-prod-worker' },
      workerEnv: { WHATSAPP_PHONE_NUMBER_ID: '1', WHATSAPP_WABA_ID: '2' },
    });

    await runPreflight();

    expect(mocks.lambda.commandCalls(GetFunctionConfigurationCommand)[0]!.args[0].input).toEqual({
      FunctionName: 'whatsapp-notif-prod-worker',
    });
  });

  it('is a usage error without --stage, and calls nothing', async () => {
    mockHealthyAccount();
    let stderr = '';

    const code = await runCli(['preflight'], {
      stdout: () => {},
      stderr: (t) => {
        stderr += t;
      },
      env: {},
    });

    expect(code).toBe(2);
    expect(stderr).toContain('preflight needs --stage dev|prod');
    expect(mocks.ssm.commandCalls(GetParameterCommand)).toHaveLength(0);
  });
});
