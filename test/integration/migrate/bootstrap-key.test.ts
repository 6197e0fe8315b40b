/**
 * A deployed stage's first admin key: the migrate function creates it when invoked with
 * {"action": "create-admin-key"}, and `ops keys bootstrap` finds that function in the stack's
 * outputs and invokes it. No AWS here: CloudFormation answers from a mock, and the Lambda mock
 * runs the real handler against the suite's PostgreSQL, as Lambda would.
 */
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { authenticateApiKey } from '#core/admin/api-keys.ts';
import { runCli } from '../../../bin/ops/cli.ts';
import { handler } from '../../../lambdas/migrate/handler.ts';
import { testDatabase } from '../../support/database.ts';

const db = testDatabase(2);
afterAll(() => db.destroy());

const cfn = mockClient(CloudFormationClient);
const lambda = mockClient(LambdaClient);
afterEach(() => {
  cfn.reset();
  lambda.reset();
});

async function auditFor(prefix: string) {
  return db
    .selectFrom('audit_log')
    .select(['actor', 'action', 'outcome', 'detail'])
    .where('action', '=', 'key.create')
    .where(
      ({ ref, val, fn }) => fn('jsonb_extract_path_text', [ref('detail'), val('prefix')]),
      '=',
      prefix,
    )
    .execute();
}

describe('the first admin key of a stage', () => {
  it('is created by invoking the migrate function, works with the admin scope, and is audited', async () => {
    // act
    const result = await handler({ action: 'create-admin-key', name: 'platform-oncall' });

    // assess
    expect(result).toMatchObject({ scopes: ['admin'] });
    const { key, prefix } = result as { key: string; prefix: string };
    const auth = await authenticateApiKey(db, key, new Date());
    expect(auth).toMatchObject({ ok: true, scopes: ['admin'], prefix });
    expect(await auditFor(prefix)).toEqual([
      {
        actor: 'aws:lambda-invoke',
        action: 'key.create',
        outcome: 'ok',
        detail: { via: 'migrate-function', name: 'platform-oncall', prefix, scopes: ['admin'] },
      },
    ]);
  });

  it('is refused without a name, and nothing is created', async () => {
    const before = await db
      .selectFrom('api_clients')
      .select((eb) => eb.fn.countAll().as('n'))
      .executeTakeFirstOrThrow();
    await expect(handler({ action: 'create-admin-key', name: '  ' })).rejects.toThrow(/name/);
    await expect(
      handler({ action: 'create-admin-key', name: 'x', scopes: ['admin'] }),
    ).rejects.toThrow();
    const after = await db
      .selectFrom('api_clients')
      .select((eb) => eb.fn.countAll().as('n'))
      .executeTakeFirstOrThrow();
    expect(after.n).toBe(before.n);
  });

  it('comes out of `ops keys bootstrap --stage dev` once, through the function the stack names', async () => {
    // prepare
    cfn.on(DescribeStacksCommand, { StackName: 'whatsapp-notif-dev' }).resolves({
      Stacks: [
        {
          StackName: 'whatsapp-notif-dev',
          CreationTime: new Date(),
          StackStatus: 'UPDATE_COMPLETE',
          Outputs: [
            { OutputKey: 'MigrateFunctionName', OutputValue: 'whatsapp-notif-dev-migrate' },
          ],
        },
      ],
    });
    const invoked: string[] = [];
    lambda
      .on(InvokeCommand)
      .callsFake(async (input: { FunctionName: string; Payload: Uint8Array }) => {
        invoked.push(input.FunctionName);
        const event = JSON.parse(new TextDecoder().decode(input.Payload));
        const answer = await handler(event);
        return { StatusCode: 200, Payload: new TextEncoder().encode(JSON.stringify(answer)) };
      });
    let stdout = '';
    let stderr = '';

    // act
    const code = await runCli(['keys', 'bootstrap', '--stage', 'dev', '--name', 'alice'], {
      stdout: (text) => {
        stdout += text;
      },
      stderr: (text) => {
        stderr += text;
      },
      env: {},
    });

    // assess
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    expect(invoked).toEqual(['whatsapp-notif-dev-migrate']);
    const key = /X-API-Key: (\S+)/.exec(stdout)?.[1];
    expect(key).toBeDefined();
    expect(await authenticateApiKey(db, key, new Date())).toMatchObject({
      ok: true,
      scopes: ['admin'],
    });
  });

  it('needs a stage: without one it is a usage error', async () => {
    let stderr = '';
    const code = await runCli(['keys', 'bootstrap', '--name', 'alice'], {
      stdout: () => {},
      stderr: (text) => {
        stderr += text;
      },
      env: {},
    });
    expect(code).toBe(2);
    expect(stderr).toContain('--stage');
    expect(lambda.commandCalls(InvokeCommand)).toHaveLength(0);
  });
});
