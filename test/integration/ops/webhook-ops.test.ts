/**
 * `ops webhook test` and `ops webhook status` against the real local stack (its webhook handler
 * and the sandbox as Meta's Graph API), and the local stack honouring a chosen app secret. For
 * `--stage`, only the AWS answers (stack outputs, secrets, worker settings) come from mocks.
 */
import { GetFunctionConfigurationCommand } from '@aws-sdk/client-lambda';
import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { LocalStack } from '../../../bin/local/stack.ts';
import { runCli } from '../../../bin/ops/cli.ts';
import { type OwnStack, runOps, startOwnStack } from '../../support/ops-stack.ts';
import {
  ACCESS_DENIED,
  mockHealthyAccount,
  mocks,
  resetMocks,
} from '../../support/preflight-aws.ts';

const APP_SECRET = 'chosen-app-secret-for-replays-0123';
const VERIFY_TOKEN = 'chosen-verify-token-4567';

let own: OwnStack;
let stack: LocalStack;
let localEnv: Record<string, string>;

beforeAll(async () => {
  // What a developer does to replay captured payloads: choose the secrets before npm start.
  process.env.WHATSAPP_APP_SECRET = APP_SECRET;
  process.env.WHATSAPP_VERIFY_TOKEN = VERIFY_TOKEN;
  own = await startOwnStack();
  stack = own.stack;
  // What the banner tells a developer to export.
  localEnv = {
    WN_API_URL: stack.baseUrl,
    WHATSAPP_APP_SECRET: APP_SECRET,
    WHATSAPP_VERIFY_TOKEN: VERIFY_TOKEN,
    WHATSAPP_PHONE_NUMBER_ID: process.env.WHATSAPP_PHONE_NUMBER_ID!,
  };
}, 60_000);

afterAll(async () => {
  resetMocks();
  await own?.stop();
});

async function pendingStatus(wamid: string): Promise<string[]> {
  const client = new pg.Client({ connectionString: stack.databaseUrl });
  await client.connect();
  try {
    const rows = await client.query<{ status: string }>(
      'select status from pending_statuses where wamid = $1',
      [wamid],
    );
    return rows.rows.map((r) => r.status);
  } finally {
    await client.end();
  }
}

describe('the local stack with WHATSAPP_APP_SECRET set', () => {
  it('keeps the chosen secret and token, says they came from the environment, and the sandbox signs with it', async () => {
    expect(stack.secretSources).toEqual({ appSecret: 'env', verifyToken: 'env' });
    expect(process.env.WHATSAPP_APP_SECRET).toBe(APP_SECRET);
    expect(process.env.WHATSAPP_VERIFY_TOKEN).toBe(VERIFY_TOKEN);
    // The webhook accepts a sandbox webhook only when both sides hold the same secret.
    const before = stack.sandbox!.stats().webhooksSent;
    expect(await stack.sandbox!.sendInboundText({ from: '+15550001111', text: 'hello' })).toBe(
      true,
    );
    expect(stack.sandbox!.stats().webhooksSent).toBe(before + 1);
  });
});

describe('ops webhook test, locally', () => {
  it('reports a 200 POST and an echoed challenge, exit 0, and the sample status changes no notification', async () => {
    const result = await runOps(['webhook', 'test', '--json'], localEnv);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout);
    expect(report).toMatchObject({
      webhookUrl: `${stack.baseUrl}/webhook/whatsapp`,
      appSecretSource: 'WHATSAPP_APP_SECRET',
      verifyTokenSource: 'WHATSAPP_VERIFY_TOKEN',
      passed: true,
    });
    expect(report.probes).toEqual([
      expect.objectContaining({ check: 'POST signed status', ok: true, status: 200 }),
      expect.objectContaining({
        check: 'GET verification',
        ok: true,
        status: 200,
        summary: 'echoed the challenge',
      }),
    ]);
    for (const probe of report.probes) expect(probe.latencyMs).toBeGreaterThanOrEqual(0);
    expect(report.probes[0].summary).toContain('"statuses":0');
    // No notification has the wamid: the status is only parked, as for one that arrives early.
    expect(report.wamid).toMatch(/^wamid\.OPS-WEBHOOK-TEST-[0-9a-f]{16}$/);
    expect(await pendingStatus(report.wamid)).toEqual(['delivered']);
  });

  it('prints each answer with its status and latency for people', async () => {
    const result = await runOps(['webhook', 'test'], localEnv);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/ok\s+POST signed status\s+200\s+\d+ ms\s+\{/);
    expect(result.stdout).toMatch(/ok\s+GET verification\s+200\s+\d+ ms\s+echoed the challenge/);
    expect(result.stdout).toContain('signed with WHATSAPP_APP_SECRET');
  });

  it('fails with exit 1 when the app secret is wrong: the webhook answers 401', async () => {
    const result = await runOps(
      ['webhook', 'test', '--app-secret', 'not-the-secret', '--json'],
      localEnv,
    );
    expect(result.code).toBe(1);
    const report = JSON.parse(result.stdout);
    expect(report.passed).toBe(false);
    expect(report.appSecretSource).toBe('--app-secret');
    expect(report.probes[0]).toMatchObject({ ok: false, status: 401 });
    expect(report.probes[1]).toMatchObject({ ok: true });
    const text = await runOps(['webhook', 'test', '--app-secret', 'not-the-secret'], localEnv);
    expect(text.code).toBe(1);
    expect(text.stdout).toMatch(/FAIL\s+POST signed status\s+401/);
    expect(text.stdout).toContain('another app secret');
  });

  it('fails with exit 1 when the verify token is wrong: the GET does not echo', async () => {
    const result = await runOps(['webhook', 'test', '--verify-token', 'wrong', '--json'], localEnv);
    expect(result.code).toBe(1);
    const report = JSON.parse(result.stdout);
    expect(report.probes[0]).toMatchObject({ ok: true, status: 200 });
    expect(report.probes[1]).toMatchObject({ ok: false, status: 403 });
  });

  it('exits 2 when it has no app secret or no webhook to test', async () => {
    const noSecret = await runOps(['webhook', 'test'], { WN_API_URL: stack.baseUrl });
    expect(noSecret.code).toBe(2);
    expect(noSecret.stderr).toContain('WHATSAPP_APP_SECRET');
    const noTarget = await runOps(['webhook', 'test'], { WHATSAPP_APP_SECRET: APP_SECRET });
    expect(noTarget.code).toBe(2);
    expect(noTarget.stderr).toContain('--stage');
  });
});

describe('ops webhook status, against the sandbox', () => {
  const graphEnv = () => ({
    WHATSAPP_API_URL: stack.sandbox!.url,
    WHATSAPP_ACCESS_TOKEN: process.env.WHATSAPP_ACCESS_TOKEN ?? '',
    WHATSAPP_WABA_ID: process.env.WHATSAPP_WABA_ID ?? '',
  });

  it("lists the subscribed app and says the callback URL is the app's when there is no override", async () => {
    const result = await runOps(['webhook', 'status', '--json'], graphEnv());
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({
      wabaId: process.env.WHATSAPP_WABA_ID,
      graphApiIsMeta: false,
      apps: [{ id: expect.any(String), name: 'whatsapp-notif sandbox', overrideCallbackUri: null }],
      passed: true,
    });
    const text = await runOps(['webhook', 'status'], graphEnv());
    expect(text.stdout).toContain('1 subscribed app(s)');
    expect(text.stdout).toContain(`not Meta`);
    expect(text.stdout).toContain("the app's (App Dashboard");
  });

  it("exits 1 when no app is subscribed, and 1 with Meta's words when the token is refused", async () => {
    stack.sandbox!.setAccount({ appSubscribed: false });
    try {
      const result = await runOps(['webhook', 'status'], graphEnv());
      expect(result.code).toBe(1);
      expect(result.stdout).toContain('(no subscribed apps)');
      expect(result.stdout).toContain('FAIL: no app is subscribed');
    } finally {
      stack.sandbox!.reset();
    }
    const refused = await runOps(['webhook', 'status'], {
      ...graphEnv(),
      WHATSAPP_ACCESS_TOKEN: 'not-the-token',
    });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/subscribed_apps of WABA \d+ unreadable: HTTP 401, code 190/);
  });
});

describe('--stage: the secrets and the webhook URL from AWS', () => {
  let stdout: string;
  let stderr: string;
  const cli = (args: string[]) => {
    stdout = '';
    stderr = '';
    return runCli([...args, '--stage', 'prod', '--region', 'eu-west-1', '--json'], {
      stdout: (text) => {
        stdout += text;
      },
      stderr: (text) => {
        stderr += text;
      },
      env: {},
    });
  };

  beforeEach(() => {
    mockHealthyAccount({
      stackOutputs: {
        WebhookUrl: `${stack.baseUrl}/webhook/whatsapp`,
        WorkerFunctionName: 'whatsapp-notif-prod-worker',
      },
      workerEnv: {
        WHATSAPP_API_URL: stack.sandbox!.url,
        WHATSAPP_WABA_ID: process.env.WHATSAPP_WABA_ID ?? '',
        WHATSAPP_PHONE_NUMBER_ID: process.env.WHATSAPP_PHONE_NUMBER_ID ?? '',
      },
      secrets: {
        'access-token': process.env.WHATSAPP_ACCESS_TOKEN ?? '',
        'app-secret': APP_SECRET,
        'verify-token': VERIFY_TOKEN,
      },
    });
  });

  it('webhook test signs with the stage app secret from Secrets Manager and passes', async () => {
    const code = await cli(['webhook', 'test']);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toMatchObject({
      webhookSource: 'stack whatsapp-notif-prod',
      appSecretSource: 'secret whatsapp-notif-prod/whatsapp/app-secret',
      verifyTokenSource: 'secret whatsapp-notif-prod/whatsapp/verify-token',
      passed: true,
    });
    const asked = mocks.secrets
      .calls()
      .map((c) => (c.args[0].input as { SecretId: string }).SecretId);
    expect(asked).toContain('whatsapp-notif-prod/whatsapp/app-secret');
  });

  it('webhook test fails with exit 1 when the stage secret is not the one the webhook holds', async () => {
    mockHealthyAccount({
      stackOutputs: { WebhookUrl: `${stack.baseUrl}/webhook/whatsapp` },
      secrets: {
        'access-token': 'x',
        'app-secret': 'rotated-elsewhere',
        'verify-token': VERIFY_TOKEN,
      },
    });
    const code = await cli(['webhook', 'test']);
    expect(code).toBe(1);
    expect(JSON.parse(stdout).probes[0]).toMatchObject({ ok: false, status: 401 });
  });

  it('webhook test says how to set the app secret while it still holds the placeholder', async () => {
    mockHealthyAccount({
      stackOutputs: { WebhookUrl: `${stack.baseUrl}/webhook/whatsapp` },
      secrets: { 'access-token': 'x', 'app-secret': 'PLACEHOLDER', 'verify-token': VERIFY_TOKEN },
    });
    const code = await cli(['webhook', 'test']);
    expect(code).toBe(1);
    expect(stderr).toContain(
      'aws secretsmanager put-secret-value --secret-id whatsapp-notif-prod/whatsapp/app-secret',
    );
  });

  it('webhook status reads the token from Secrets Manager and compares with the stack WebhookUrl', async () => {
    const code = await cli(['webhook', 'status']);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toMatchObject({
      stackWebhookUrl: `${stack.baseUrl}/webhook/whatsapp`,
      apps: [{ overrideCallbackUri: null }],
      passed: true,
    });
  });

  it("webhook status shows Meta's override callback URL and fails when it is not the stack's", async () => {
    const ours = `${stack.baseUrl}/webhook/whatsapp`;
    try {
      stack.sandbox!.setAccount({ overrideCallbackUri: ours });
      expect(await cli(['webhook', 'status'])).toBe(0);
      expect(JSON.parse(stdout).apps).toEqual([
        expect.objectContaining({ overrideCallbackUri: ours }),
      ]);

      stack.sandbox!.setAccount({ overrideCallbackUri: 'https://old.example.org/hook' });
      expect(await cli(['webhook', 'status'])).toBe(1);
      const report = JSON.parse(stdout);
      expect(report.passed).toBe(false);
      expect(report.problems).toEqual([
        expect.stringContaining(`https://old.example.org/hook, not the stack's ${ours}`),
      ]);
    } finally {
      stack.sandbox!.reset();
    }
  });

  it('without lambda:GetFunctionConfiguration, webhook test still runs (with a note) and webhook status says why it cannot', async () => {
    mocks.lambda
      .on(GetFunctionConfigurationCommand)
      .rejects(ACCESS_DENIED('lambda:GetFunctionConfiguration'));
    expect(await cli(['webhook', 'test'])).toBe(0);
    expect(stderr).toContain('placeholder WABA and phone number ids');
    expect(stderr).toContain('lambda:GetFunctionConfiguration');
    expect(await cli(['webhook', 'status'])).toBe(1);
    expect(stderr).toContain('lambda:GetFunctionConfiguration');
    expect(stderr).toContain('--waba-id');
    const waba = process.env.WHATSAPP_WABA_ID ?? '';
    expect(
      await cli(['webhook', 'status', '--waba-id', waba, '--whatsapp-api-url', stack.sandbox!.url]),
    ).toBe(0);
    expect(JSON.parse(stdout)).toMatchObject({ wabaId: waba, passed: true });
  });
});
