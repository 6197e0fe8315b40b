/**
 * A deployed stage's first admin key: the migrate function creates it when invoked with
 * {"action": "create-admin-key"}, refuses a second one while an admin key works unless asked to
 * break glass (issue 16), and `ops keys bootstrap` finds that function in the stack's outputs and
 * invokes it. No AWS here: CloudFormation answers from a mock, and the Lambda mock runs the real
 * handler. Each test has a database of its own, migrated to the latest, because "no admin key
 * exists" is never true of the suite's shared database.
 */
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import type { Kysely } from 'kysely';
import pg from 'pg';
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { authenticateApiKey, revokeApiKey } from '#core/admin/api-keys.ts';
import { createDatabase } from '#core/db/connect.ts';
import { migrateToLatest } from '#core/db/migrate.ts';
import type { Database } from '#core/db/schema.ts';
import { Metric } from '#core/platform/metric-names.ts';
import { metrics } from '#core/platform/observability.ts';
import { runCli } from '../../../bin/ops/cli.ts';
import { handler } from '../../../lambdas/migrate/handler.ts';

const cfn = mockClient(CloudFormationClient);
const lambda = mockClient(LambdaClient);
const created: { name: string; db: Kysely<Database> }[] = [];
let db: Kysely<Database>;

function adminUrl(): string {
  const url = process.env.TEST_PG_ADMIN_URL;
  if (!url) throw new Error('TEST_PG_ADMIN_URL is not set: run the tests through vitest');
  return url;
}

/** A database of the test's own with every migration applied, which the handler connects to. */
beforeEach(async () => {
  const name = `bootstrap_${crypto.randomUUID().replaceAll('-', '')}`;
  const admin = new pg.Client({ connectionString: adminUrl() });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(adminUrl());
  url.pathname = `/${name}`;
  db = createDatabase({
    DATABASE_URL: url.toString(),
    DB_POOL_MAX: 2,
    DB_PORT: 5432,
    DB_NAME: name,
    DB_IAM_AUTH: false,
  });
  created.push({ name, db });
  await migrateToLatest(db);
  vi.stubEnv('DATABASE_URL', url.toString());
});

afterEach(() => {
  cfn.reset();
  lambda.reset();
  vi.unstubAllEnvs();
  vi.restoreAllMocks();
});

afterAll(async () => {
  const admin = new pg.Client({ connectionString: adminUrl() });
  await admin.connect();
  try {
    for (const { name, db } of created) {
      await db.destroy();
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    }
  } finally {
    await admin.end();
  }
});

async function auditFor(prefix: string, action = 'key.create') {
  return db
    .selectFrom('audit_log')
    .select(['actor', 'action', 'outcome', 'detail'])
    .where('action', '=', action)
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
    expect(result).toMatchObject({ breakGlass: false });
    expect(await auditFor(prefix)).toEqual([
      {
        actor: 'aws:lambda-invoke',
        action: 'key.create',
        outcome: 'ok',
        detail: { via: 'migrate-function', name: 'platform-oncall', prefix, scopes: ['admin'] },
      },
    ]);
  });

  it('is refused while an admin key works, and nothing is created', async () => {
    // prepare
    const first = (await handler({ action: 'create-admin-key', name: 'first' })) as {
      prefix: string;
    };

    // act
    const second = handler({ action: 'create-admin-key', name: 'second' });

    // assess
    await expect(second).rejects.toThrow(
      new RegExp(`an active admin key exists \\(${first.prefix}\\).*breakGlass`),
    );
    const clients = await db.selectFrom('api_clients').select('name').execute();
    expect(clients.map((c) => c.name)).toEqual(['first']);
  });

  it('creates one again once every admin key is revoked, without break-glass', async () => {
    const first = (await handler({ action: 'create-admin-key', name: 'first' })) as {
      prefix: string;
    };
    await revokeApiKey(db, first.prefix, new Date());

    const again = await handler({ action: 'create-admin-key', name: 'after-revoke' });

    expect(again).toMatchObject({ scopes: ['admin'], breakGlass: false });
  });

  it('breaks glass only with a reason, loudly: its own audit action and the AdminKeyBreakGlass metric', async () => {
    // prepare
    const first = (await handler({ action: 'create-admin-key', name: 'first' })) as {
      prefix: string;
    };
    const added = vi.spyOn(metrics, 'addMetric');

    // act
    const withoutReason = await handler({
      action: 'create-admin-key',
      name: 'bob',
      breakGlass: true,
    }).catch((error: Error) => error);
    const result = await handler({
      action: 'create-admin-key',
      name: 'bob',
      breakGlass: true,
      reason: 'admin keys lost with a laptop',
    });

    // assess
    expect(withoutReason).toBeInstanceOf(Error);
    expect((withoutReason as Error).message).toMatch(/reason/);
    const { key, prefix } = result as { key: string; prefix: string };
    expect(result).toMatchObject({ breakGlass: true });
    expect(await authenticateApiKey(db, key, new Date())).toMatchObject({ ok: true });
    expect(await auditFor(prefix, 'key.break_glass')).toEqual([
      {
        actor: 'aws:lambda-invoke',
        action: 'key.break_glass',
        outcome: 'ok',
        detail: {
          via: 'migrate-function',
          name: 'bob',
          prefix,
          scopes: ['admin'],
          reason: 'admin keys lost with a laptop',
          activeAdminKeys: [first.prefix],
        },
      },
    ]);
    expect(added.mock.calls.map((c) => [c[0], c[2]])).toEqual([[Metric.AdminKeyBreakGlass, 1]]);
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
    expect(stdout).not.toContain('BREAK-GLASS');
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

describe('`ops keys bootstrap --break-glass`', () => {
  function stackWithMigrateFunction() {
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
    lambda.on(InvokeCommand).callsFake(async (input: { Payload: Uint8Array }) => {
      try {
        const answer = await handler(JSON.parse(new TextDecoder().decode(input.Payload)));
        return { StatusCode: 200, Payload: new TextEncoder().encode(JSON.stringify(answer)) };
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        return {
          StatusCode: 200,
          FunctionError: 'Unhandled',
          Payload: new TextEncoder().encode(JSON.stringify({ errorMessage: message })),
        };
      }
    });
  }

  async function cli(args: string[]) {
    let stdout = '';
    let stderr = '';
    const code = await runCli(args, {
      stdout: (text) => {
        stdout += text;
      },
      stderr: (text) => {
        stderr += text;
      },
      env: {},
    });
    return { code, stdout, stderr };
  }

  it('says why it was refused while an admin key works, and mints one with --break-glass and a reason', async () => {
    // prepare
    stackWithMigrateFunction();
    await handler({ action: 'create-admin-key', name: 'first' });

    // act
    const refused = await cli(['keys', 'bootstrap', '--stage', 'dev', '--name', 'alice']);
    const noReason = await cli([
      'keys',
      'bootstrap',
      '--stage',
      'dev',
      '--name',
      'alice',
      '--break-glass',
    ]);
    const broke = await cli([
      'keys',
      'bootstrap',
      '--stage',
      'dev',
      '--name',
      'alice',
      '--break-glass',
      '--reason',
      'oncall locked out',
    ]);

    // assess
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/active admin key exists/);
    expect(noReason.code).toBe(2);
    expect(noReason.stderr).toContain('--reason');
    expect(broke).toMatchObject({ code: 0, stderr: '' });
    expect(broke.stdout).toContain('BREAK-GLASS');
    const key = /X-API-Key: (\S+)/.exec(broke.stdout)?.[1];
    expect(await authenticateApiKey(db, key, new Date())).toMatchObject({ ok: true });
  });
});
