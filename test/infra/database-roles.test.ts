/**
 * Who signs in to PostgreSQL as whom, on the synthesized template: the proxy authenticates the
 * function roles end to end with IAM and keeps the master secret for the migrate function only.
 * (Each function's DB_USER and rds-db:connect resource are checked in stack.test.ts.)
 */
import { describe, expect, it } from 'vitest';
import { FUNCTION_DATABASE_ROLES } from '#core/db/roles.ts';
import { STAGES } from '../../lib/config.ts';
import { builtStage, logicalId } from './stages.ts';

describe.each(STAGES)('the %s database sign-in', (stage) => {
  const { stack, template } = builtStage(stage);
  const resources = template.toJSON().Resources;

  it('authenticates the functions to the database with IAM through the proxy, and keeps the master secret', () => {
    const proxy = resources[logicalId(stack, stack.database.proxy)].Properties;
    expect(proxy.DefaultAuthScheme).toBe('IAM_AUTH');
    expect(proxy.RequireTLS).toBe(true);
    // The master user's secret, for the migrate function (DDL) and nothing else.
    expect(proxy.Auth).toEqual([
      expect.objectContaining({ AuthScheme: 'SECRETS', IAMAuth: 'REQUIRED' }),
    ]);
  });

  it('lets the proxy sign in as the four function roles, and not as the master user', () => {
    const role = stack.database.node.findChild('ProxyRole');
    const policy = resources[logicalId(stack, role.node.findChild('DefaultPolicy'))];
    const connect = (
      policy.Properties.PolicyDocument.Statement as { Action: string; Resource: unknown }[]
    ).filter((s) => s.Action === 'rds-db:connect');
    const users = [...JSON.stringify(connect).matchAll(/\/(notif_\w+)/g)].map((m) => m[1]);
    expect(users.sort()).toEqual(Object.values(FUNCTION_DATABASE_ROLES).sort());
    // Scoped to this instance's resource id.
    expect(JSON.stringify(connect)).toContain(logicalId(stack, stack.database.instance));
  });

  it('never hands the internet-facing functions the master user', () => {
    for (const name of ['api', 'webhook'] as const) {
      const fn = resources[logicalId(stack, stack.functions[name])];
      expect(fn.Properties.Environment.Variables.DB_USER).not.toBe('notif_admin');
      const policy =
        resources[logicalId(stack, stack.functions[name].role!.node.findChild('DefaultPolicy'))];
      expect(JSON.stringify(policy)).not.toContain('notif_admin');
      // Nor the master secret.
      expect(JSON.stringify(policy)).not.toContain(logicalId(stack, stack.database.secret));
    }
  });
});
