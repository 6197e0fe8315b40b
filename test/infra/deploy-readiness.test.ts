/**
 * What decides whether a first `cdk deploy` of a stage works, checked on the synthesized template
 * against how CloudFormation and the AWS services behave at deploy time (shared facts in
 * aws-deploy-facts.md), not only against what the stack means to say.
 */
import { describe, expect, it } from 'vitest';
import { STAGE_CONFIG, STAGES } from '../../lib/config.ts';
import { builtStage, logicalId } from './stages.ts';

interface CfnResource {
  Type: string;
  Properties?: Record<string, unknown>;
  DeletionPolicy?: string;
  UpdateReplacePolicy?: string;
  DependsOn?: string | string[];
}

/** Properties that give a resource a fixed physical name, so a second copy cannot be created. */
const NAME_PROPERTIES = [
  'LogGroupName',
  'DBInstanceIdentifier',
  'DBSubnetGroupName',
  'QueueName',
  'TopicName',
  'FunctionName',
  'Name',
  'DBProxyName',
  'DashboardName',
];

describe.each(STAGES)('a failed first deploy of %s can be retried', (stage) => {
  const { stack, template } = builtStage(stage);
  const resources = template.toJSON().Resources as Record<string, CfnResource>;

  it('keeps nothing that CloudFormation created and then rolled back', () => {
    // Retain keeps a resource even when the create that made it fails; the retry then collides
    // on its name. RetainExceptOnCreate (RETAIN_ON_UPDATE_OR_DELETE) removes it in that case.
    const retained = Object.entries(resources)
      .filter(([, r]) => r.DeletionPolicy === 'Retain')
      .map(([id, r]) => `${id} (${r.Type})`);
    expect(retained).toEqual([]);
  });

  it('gives no named resource a deletion policy that survives a failed create', () => {
    for (const [id, r] of Object.entries(resources)) {
      const named = NAME_PROPERTIES.some((p) => typeof r.Properties?.[p] === 'string');
      if (!named) continue;
      expect(['Delete', 'RetainExceptOnCreate', 'Snapshot', undefined], id).toContain(
        r.DeletionPolicy,
      );
    }
  });

  if (STAGE_CONFIG[stage].removalPolicy === 'retain') {
    it('still keeps the database and every log group when the stack is updated or deleted', () => {
      const instance = resources[logicalId(stack, stack.database.instance)]!;
      expect(instance.DeletionPolicy).toBe('RetainExceptOnCreate');
      expect(instance.UpdateReplacePolicy).toBe('Retain');
      const logGroups = Object.values(resources).filter((r) => r.Type === 'AWS::Logs::LogGroup');
      expect(logGroups.length).toBeGreaterThanOrEqual(7);
      for (const group of logGroups) {
        expect(group.DeletionPolicy, String(group.Properties?.LogGroupName)).toBe(
          'RetainExceptOnCreate',
        );
        expect(group.UpdateReplacePolicy).toBe('Retain');
      }
    });
  } else {
    it('takes a final snapshot of the database and deletes its logs with the stack', () => {
      const instance = resources[logicalId(stack, stack.database.instance)]!;
      expect(instance.DeletionPolicy).toBe('Snapshot');
      const logGroups = Object.values(resources).filter((r) => r.Type === 'AWS::Logs::LogGroup');
      for (const group of logGroups) expect(group.DeletionPolicy).toBe('Delete');
    });
  }
});

describe.each(STAGES)('the %s stage in an account without an API Gateway logging role', (stage) => {
  const { stack, template } = builtStage(stage);
  const resources = template.toJSON().Resources as Record<string, CfnResource>;
  const checkId = logicalId(stack, stack.apiLoggingRole.resource);
  const roleId = logicalId(stack, stack.apiLoggingRole.fallbackRole);

  it('checks the account before creating the stage that writes access logs', () => {
    const [stageId, apiStage] = Object.entries(resources).find(
      ([, r]) => r.Type === 'AWS::ApiGateway::Stage',
    )!;
    expect(apiStage.Properties?.AccessLogSetting).toBeDefined();
    expect([apiStage.DependsOn].flat(), stageId).toContain(checkId);
    expect(resources[checkId]!.Type).toBe('Custom::ApiGatewayLoggingRole');
    expect(resources[checkId]!.Properties?.FallbackRoleArn).toEqual({
      'Fn::GetAtt': [roleId, 'Arn'],
    });
  });

  it('offers a role API Gateway can assume to push logs, kept when the stack goes', () => {
    const role = resources[roleId]!;
    expect(role.DeletionPolicy).toBe('RetainExceptOnCreate');
    expect(JSON.stringify(role.Properties?.AssumeRolePolicyDocument)).toContain(
      'apigateway.amazonaws.com',
    );
    expect(JSON.stringify(role.Properties?.ManagedPolicyArns)).toContain(
      'service-role/AmazonAPIGatewayPushToCloudWatchLogs',
    );
  });

  it('lets the check read and change only the account setting, and pass only its own role', () => {
    const fnRole = logicalId(stack, stack.apiLoggingRole.function.role!);
    const policies = Object.values(resources).filter(
      (r) =>
        r.Type === 'AWS::IAM::Policy' &&
        JSON.stringify(r.Properties?.Roles) === JSON.stringify([{ Ref: fnRole }]),
    );
    const statements = policies.flatMap(
      (p) => (p.Properties!.PolicyDocument as { Statement: Record<string, unknown>[] }).Statement,
    );
    const gateway = statements.find((s) => JSON.stringify(s.Action).includes('apigateway:PATCH'));
    expect(JSON.stringify(gateway?.Resource)).toContain('::/account');
    const pass = statements.find((s) => s.Action === 'iam:PassRole');
    expect(pass?.Resource).toEqual({ 'Fn::GetAtt': [roleId, 'Arn'] });
    expect(statements.some((s) => s.Action === '*' || s.Resource === '*')).toBe(false);
  });
});
