/**
 * Custom resource behind the REST API's stage (through CDK's Provider framework): before the stage
 * is created, make sure the account can take its access logs. Deleting the stack changes nothing:
 * the setting may serve other APIs, and the role it names is retained.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { APIGatewayClient } from '@aws-sdk/client-api-gateway';
import { IAMClient } from '@aws-sdk/client-iam';
import type { CloudFormationCustomResourceEvent } from 'aws-lambda';
import { logger } from '#core/platform/observability.ts';
import { ensureApiGatewayLoggingRole } from './ensure-role.ts';

/** One physical id for the one account setting, so an update never looks like a replacement. */
export const PHYSICAL_RESOURCE_ID = 'apigateway-account-cloudwatch-role';

export async function handler(event: CloudFormationCustomResourceEvent) {
  if (event.RequestType === 'Delete') {
    return { PhysicalResourceId: event.PhysicalResourceId };
  }
  const fallbackRoleArn = String(event.ResourceProperties.FallbackRoleArn ?? '');
  if (!fallbackRoleArn) throw new Error('FallbackRoleArn is missing from the resource properties');
  const result = await ensureApiGatewayLoggingRole({
    apigateway: new APIGatewayClient({}),
    iam: new IAMClient({}),
    fallbackRoleArn,
    sleep: (ms) => sleep(ms),
    logger,
  });
  return {
    PhysicalResourceId: PHYSICAL_RESOURCE_ID,
    Data: { RoleArn: result.roleArn, Outcome: result.outcome },
  };
}
