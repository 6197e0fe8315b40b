import {
  APIGatewayClient,
  BadRequestException,
  GetAccountCommand,
  UpdateAccountCommand,
} from '@aws-sdk/client-api-gateway';
import { GetRoleCommand, IAMClient, NoSuchEntityException } from '@aws-sdk/client-iam';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import {
  ensureApiGatewayLoggingRole,
  roleNameFromArn,
} from '../../lambdas/api-logging-role/ensure-role.ts';
import { handler, PHYSICAL_RESOURCE_ID } from '../../lambdas/api-logging-role/handler.ts';

const OURS = 'arn:aws:iam::123456789012:role/whatsapp-notif-prod-ApiLoggingRoleFallback-ABC';
const THEIRS = 'arn:aws:iam::123456789012:role/platform/apigateway-cloudwatch';

const apigateway = mockClient(APIGatewayClient);
const iam = mockClient(IAMClient);

function deps(sleeps: number[] = []) {
  return {
    apigateway: new APIGatewayClient({ region: 'eu-west-1' }),
    iam: new IAMClient({ region: 'eu-west-1' }),
    fallbackRoleArn: OURS,
    sleep: async (ms: number) => {
      sleeps.push(ms);
    },
    retry: { attempts: 4, firstDelayMs: 1_000 },
  };
}

const noSuchRole = () => new NoSuchEntityException({ message: 'role not found', $metadata: {} });
const notAssumableYet = () =>
  new BadRequestException({
    message: 'The role ARN does not have required permissions set to API Gateway',
    $metadata: {},
  });

beforeEach(() => {
  apigateway.reset();
  iam.reset();
});

describe('the account API Gateway logging role', () => {
  it('sets our role in a fresh account that has none', async () => {
    apigateway.on(GetAccountCommand).resolves({});
    apigateway.on(UpdateAccountCommand).resolves({ cloudwatchRoleArn: OURS });

    const result = await ensureApiGatewayLoggingRole(deps());

    expect(result).toEqual({ outcome: 'set', roleArn: OURS, replaced: null });
    expect(apigateway.commandCalls(UpdateAccountCommand)[0]!.args[0].input).toEqual({
      patchOperations: [{ op: 'replace', path: '/cloudwatchRoleArn', value: OURS }],
    });
  });

  it('leaves a role that another team set, and that exists, as it is', async () => {
    apigateway.on(GetAccountCommand).resolves({ cloudwatchRoleArn: THEIRS });
    iam.on(GetRoleCommand, { RoleName: 'apigateway-cloudwatch' }).resolves({});

    const result = await ensureApiGatewayLoggingRole(deps());

    expect(result).toEqual({ outcome: 'kept', roleArn: THEIRS });
    expect(apigateway.commandCalls(UpdateAccountCommand)).toHaveLength(0);
  });

  it('replaces a setting that names a deleted role, such as one a failed create removed', async () => {
    apigateway.on(GetAccountCommand).resolves({ cloudwatchRoleArn: THEIRS });
    iam.on(GetRoleCommand).rejects(noSuchRole());
    apigateway.on(UpdateAccountCommand).resolves({});

    const result = await ensureApiGatewayLoggingRole(deps());

    expect(result).toEqual({ outcome: 'set', roleArn: OURS, replaced: THEIRS });
  });

  it('waits, doubling, while IAM makes a new role assumable', async () => {
    const sleeps: number[] = [];
    apigateway.on(GetAccountCommand).resolves({});
    apigateway
      .on(UpdateAccountCommand)
      .rejectsOnce(notAssumableYet())
      .rejectsOnce(notAssumableYet())
      .resolves({});

    const result = await ensureApiGatewayLoggingRole(deps(sleeps));

    expect(result.outcome).toBe('set');
    expect(sleeps).toEqual([1_000, 2_000]);
    expect(apigateway.commandCalls(UpdateAccountCommand)).toHaveLength(3);
  });

  it('fails the deploy with the error after the last attempt', async () => {
    apigateway.on(GetAccountCommand).resolves({});
    apigateway.on(UpdateAccountCommand).rejects(notAssumableYet());

    await expect(ensureApiGatewayLoggingRole(deps())).rejects.toThrow(/required permissions/);
    expect(apigateway.commandCalls(UpdateAccountCommand)).toHaveLength(4);
  });

  it('does not retry errors other than a role that is not assumable yet', async () => {
    apigateway.on(GetAccountCommand).resolves({ cloudwatchRoleArn: THEIRS });
    iam.on(GetRoleCommand).rejects(new Error('AccessDenied'));

    await expect(ensureApiGatewayLoggingRole(deps())).rejects.toThrow('AccessDenied');
    expect(apigateway.commandCalls(UpdateAccountCommand)).toHaveLength(0);
  });

  it('reads role names from ARNs with and without a path', () => {
    expect(roleNameFromArn(OURS)).toBe('whatsapp-notif-prod-ApiLoggingRoleFallback-ABC');
    expect(roleNameFromArn(THEIRS)).toBe('apigateway-cloudwatch');
    expect(roleNameFromArn('arn:aws-cn:iam::123456789012:role/a/b/c')).toBe('c');
    expect(roleNameFromArn('not an arn')).toBeUndefined();
  });
});

describe('the custom resource handler', () => {
  const base = {
    ServiceToken: 'arn:aws:lambda:eu-west-1:123456789012:function:provider',
    ResponseURL: 'https://example.invalid/response',
    StackId: 'arn:aws:cloudformation:eu-west-1:123456789012:stack/whatsapp-notif-prod/1',
    RequestId: 'r-1',
    LogicalResourceId: 'ApiLoggingRole',
    ResourceType: 'Custom::ApiGatewayLoggingRole',
    ResourceProperties: { ServiceToken: 'x', FallbackRoleArn: OURS },
  };

  it('changes nothing when the stack is deleted: the setting may serve other APIs', async () => {
    const result = await handler({
      ...base,
      RequestType: 'Delete',
      PhysicalResourceId: PHYSICAL_RESOURCE_ID,
    });

    expect(result).toEqual({ PhysicalResourceId: PHYSICAL_RESOURCE_ID });
    expect(apigateway.calls()).toHaveLength(0);
    expect(iam.calls()).toHaveLength(0);
  });

  it('answers with one physical id and the role in use, on create and update alike', async () => {
    apigateway.on(GetAccountCommand).resolves({ cloudwatchRoleArn: THEIRS });
    iam.on(GetRoleCommand).resolves({});

    const created = await handler({ ...base, RequestType: 'Create' });

    expect(created).toEqual({
      PhysicalResourceId: PHYSICAL_RESOURCE_ID,
      Data: { RoleArn: THEIRS, Outcome: 'kept' },
    });
  });
});
