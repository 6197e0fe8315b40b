/**
 * The account's API Gateway CloudWatch Logs role, made sure of at deploy time. A REST stage that
 * writes access logs is refused unless the account (per Region) has such a role set; there is one
 * setting for every API in the account, so this never takes it over: a role that is set and still
 * exists is left alone, and only a missing setting, or one naming a deleted role, gets ours.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import {
  type APIGatewayClient,
  BadRequestException,
  GetAccountCommand,
  UpdateAccountCommand,
} from '@aws-sdk/client-api-gateway';
import { GetRoleCommand, type IAMClient, NoSuchEntityException } from '@aws-sdk/client-iam';

export interface EnsureLoggingRoleDeps {
  apigateway: APIGatewayClient;
  iam: IAMClient;
  /** The role this stack offers when the account has none (retained, so it keeps working). */
  fallbackRoleArn: string;
  sleep: (ms: number) => Promise<void>;
  logger?: Pick<Logger, 'info' | 'warn'>;
  /**
   * A role IAM has just created can take a while before API Gateway may assume it, and until then
   * UpdateAccount answers BadRequest; each wait doubles from the first.
   */
  retry?: { attempts: number; firstDelayMs: number };
}

export type LoggingRoleOutcome =
  | { outcome: 'kept'; roleArn: string }
  | { outcome: 'set'; roleArn: string; replaced: string | null };

const DEFAULT_RETRY = { attempts: 8, firstDelayMs: 2_000 };

/** `arn:aws:iam::123456789012:role/path/name` → `name` (GetRole takes the name without path). */
export function roleNameFromArn(arn: string): string | undefined {
  const match = /^arn:[\w-]+:iam::\d{12}:role\/(?:.*\/)?([\w+=,.@-]+)$/.exec(arn);
  return match?.[1];
}

async function roleExists(iam: IAMClient, arn: string): Promise<boolean> {
  const name = roleNameFromArn(arn);
  if (!name) return false;
  try {
    await iam.send(new GetRoleCommand({ RoleName: name }));
    return true;
  } catch (error) {
    if (error instanceof NoSuchEntityException) return false;
    throw error;
  }
}

export async function ensureApiGatewayLoggingRole(
  deps: EnsureLoggingRoleDeps,
): Promise<LoggingRoleOutcome> {
  const account = await deps.apigateway.send(new GetAccountCommand({}));
  const current = account.cloudwatchRoleArn || null;
  if (current && (await roleExists(deps.iam, current))) {
    deps.logger?.info('the account already has an API Gateway logging role; left as it is', {
      roleArn: current,
    });
    return { outcome: 'kept', roleArn: current };
  }
  if (current) {
    deps.logger?.warn('the account names an API Gateway logging role that no longer exists', {
      roleArn: current,
    });
  }

  const retry = deps.retry ?? DEFAULT_RETRY;
  for (let attempt = 1; ; attempt++) {
    try {
      await deps.apigateway.send(
        new UpdateAccountCommand({
          patchOperations: [
            { op: 'replace', path: '/cloudwatchRoleArn', value: deps.fallbackRoleArn },
          ],
        }),
      );
      break;
    } catch (error) {
      if (!(error instanceof BadRequestException) || attempt >= retry.attempts) throw error;
      deps.logger?.info('the new logging role is not assumable yet; retrying', { attempt });
      await deps.sleep(retry.firstDelayMs * 2 ** (attempt - 1));
    }
  }
  deps.logger?.info('set the account API Gateway logging role', {
    roleArn: deps.fallbackRoleArn,
    replaced: current,
  });
  return { outcome: 'set', roleArn: deps.fallbackRoleArn, replaced: current };
}
