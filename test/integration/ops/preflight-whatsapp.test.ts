/**
 * `ops preflight`, WhatsApp side: the real checks against the sandbox over HTTP (debug_token, the
 * phone number, subscribed_apps) and the real webhook handler behind the local API Gateway stand-in
 * for the verification GET. Only the AWS answers (stack outputs, secrets) come from mocks.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { GetSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startLocalHttpServer } from '../../../bin/local/http-server.ts';
import { type SandboxHandle, startSandbox } from '../../../bin/sandbox/server.ts';
import { testDatabase } from '../../support/database.ts';
import { testWebhookApp, WEBHOOK_VERIFY_TOKEN } from '../../support/delivery.ts';
import {
  ACCESS_DENIED,
  type AccountSetup,
  check,
  mockHealthyAccount,
  mocks,
  type PreflightRun,
  resetMocks,
  runPreflight,
} from '../../support/preflight-aws.ts';

const TOKEN = 'EAAGpreflight-sandbox-token-0123456789';
const APP_SECRET = 'preflight-app-secret';
const PHONE_NUMBER_ID = '106540352242922';
const WABA_ID = '102290129340398';
const DAY = 86_400;

const db = testDatabase(1);
let sandbox: SandboxHandle;
let webhook: Server;
let webhookUrl: string;

beforeAll(async () => {
  sandbox = await startSandbox({
    accessToken: TOKEN,
    appSecret: APP_SECRET,
    phoneNumberId: PHONE_NUMBER_ID,
  });
  const app = testWebhookApp(db);
  webhook = await startLocalHttpServer(
    [{ prefix: '/webhook/whatsapp', functionName: 'webhook', handler: (event) => app(event) }],
    0,
  );
  webhookUrl = `http://127.0.0.1:${(webhook.address() as AddressInfo).port}/webhook/whatsapp`;
});

afterAll(async () => {
  await sandbox.stop();
  await new Promise((resolve) => webhook.close(resolve));
  await db.destroy();
});

beforeEach(() => sandbox.reset());
afterEach(() => resetMocks());

/** A deployed prod stage whose worker talks to the sandbox, secrets set. */
function deployedStage(overrides: Partial<AccountSetup> = {}): void {
  mockHealthyAccount({
    stackOutputs: { WebhookUrl: webhookUrl, WorkerFunctionName: 'whatsapp-notif-prod-worker' },
    workerEnv: {
      WHATSAPP_API_URL: sandbox.url,
      WHATSAPP_GRAPH_VERSION: 'v25.0',
      WHATSAPP_PHONE_NUMBER_ID: PHONE_NUMBER_ID,
      WHATSAPP_WABA_ID: WABA_ID,
    },
    secrets: {
      'access-token': TOKEN,
      'app-secret': APP_SECRET,
      'verify-token': WEBHOOK_VERIFY_TOKEN,
    },
    ...overrides,
  });
}

function whatsappStatuses(run: PreflightRun) {
  return Object.fromEntries(
    run.json.checks.filter((c) => c.id.startsWith('whatsapp-')).map((c) => [c.id, c.status]),
  );
}

describe('ops preflight against the sandbox', () => {
  it('passes every WhatsApp check of a ready stage and never prints a secret', async () => {
    deployedStage();

    const run = await runPreflight();

    expect(run.code).toBe(0);
    expect(whatsappStatuses(run)).toEqual({
      'whatsapp-secrets': 'ok',
      'whatsapp-token': 'ok',
      'whatsapp-phone-number': 'ok',
      'whatsapp-subscription': 'ok',
      'whatsapp-webhook': 'ok',
    });
    expect(check(run, 'whatsapp-token').summary).toBe(
      'valid SYSTEM_USER token, never expires, scopes whatsapp_business_messaging, whatsapp_business_management',
    );
    expect(check(run, 'whatsapp-phone-number').summary).toBe(
      `${PHONE_NUMBER_ID}: quality GREEN, messaging limit TIER_250, throughput STANDARD`,
    );
    expect(check(run, 'whatsapp-subscription').summary).toBe(
      `WABA ${WABA_ID} has 1 subscribed app(s): whatsapp-notif sandbox`,
    );
    expect(check(run, 'whatsapp-webhook').summary).toBe(
      `${webhookUrl} echoes the challenge with the verify token`,
    );
    expect(run.stdout).not.toContain(TOKEN);
    expect(run.stdout).not.toContain(WEBHOOK_VERIFY_TOKEN);
  });

  it('says up front when the WhatsApp checks did not go to Meta', async () => {
    deployedStage();

    const run = await runPreflight([], false);

    expect(run.stdout.split('\n').slice(0, 2)).toEqual([
      'Preflight of whatsapp-notif-prod (stage prod) in eu-west-1, deployed',
      `WhatsApp checks against ${sandbox.url}, not Meta`,
    ]);
  });

  it('warns when the token expires within 7 days', async () => {
    deployedStage();
    const expiresAt = Math.floor(Date.now() / 1000) + 2.5 * DAY;
    sandbox.setAccount({ tokenExpiresAt: expiresAt });

    const run = await runPreflight();

    expect(check(run, 'whatsapp-token')).toMatchObject({
      status: 'warn',
      summary: expect.stringMatching(
        /^valid SYSTEM_USER token, but expires \d{4}-\d\d-\d\d \(2\.5 days left\)$/,
      ),
      fix: expect.stringContaining(
        'aws secretsmanager put-secret-value --secret-id whatsapp-notif-prod/whatsapp/access-token',
      ),
    });
    expect(run.code).toBe(0);
  });

  it('is ok with a token that expires in 60 days, and says when', async () => {
    deployedStage();
    sandbox.setAccount({ tokenExpiresAt: Math.floor(Date.now() / 1000) + 60 * DAY + 3600 });

    expect(check(await runPreflight(), 'whatsapp-token')).toMatchObject({
      status: 'ok',
      summary: expect.stringMatching(/expires .* \(60 days left\), scopes present$/),
    });
  });

  it('FAILs an expired token', async () => {
    deployedStage();
    sandbox.setAccount({ tokenExpiresAt: Math.floor(Date.now() / 1000) - 60 });

    const run = await runPreflight();

    expect(check(run, 'whatsapp-token')).toMatchObject({
      status: 'FAIL',
      summary: 'Meta says the token is not valid (expired or revoked)',
    });
    expect(whatsappStatuses(run)).toEqual({
      'whatsapp-secrets': 'ok',
      'whatsapp-token': 'FAIL',
      'whatsapp-webhook': 'ok',
    });
    expect(run.code).toBe(1);
  });

  it('FAILs a token without whatsapp_business_management', async () => {
    deployedStage();
    sandbox.setAccount({ scopes: ['whatsapp_business_messaging'] });

    const run = await runPreflight();

    expect(check(run, 'whatsapp-token')).toMatchObject({
      status: 'FAIL',
      summary: 'valid, but missing the scope whatsapp_business_management',
    });
    expect(run.code).toBe(1);
  });

  it('FAILs when no app is subscribed to the WABA, and passes once the fix is applied', async () => {
    deployedStage();
    sandbox.setAccount({ appSubscribed: false });

    const run = await runPreflight();

    const subscription = check(run, 'whatsapp-subscription');
    expect(subscription).toMatchObject({
      status: 'FAIL',
      summary: `no app is subscribed to WABA ${WABA_ID}: Meta sends no status webhooks`,
    });
    expect(run.code).toBe(1);

    // act on the fix as printed: POST the WABA's subscribed_apps with the token
    const url = /(http:\/\/\S+\/subscribed_apps)/.exec(subscription.fix ?? '')?.[1];
    expect(url).toBe(`${sandbox.url}/v25.0/${WABA_ID}/subscribed_apps`);
    const res = await fetch(url!, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(res.status).toBe(200);

    expect(check(await runPreflight(), 'whatsapp-subscription').status).toBe('ok');
  });

  it('warns when the quality rating is below GREEN', async () => {
    deployedStage();
    sandbox.setAccount({ qualityRating: 'YELLOW', messagingLimit: 'TIER_2K' });

    const run = await runPreflight();

    expect(check(run, 'whatsapp-phone-number')).toMatchObject({
      status: 'warn',
      summary: `${PHONE_NUMBER_ID}: quality YELLOW, messaging limit TIER_2K, throughput STANDARD`,
    });
    expect(run.code).toBe(0);
  });

  it('reads messaging_limit_tier on Graph versions that still have it', async () => {
    deployedStage({
      workerEnv: {
        WHATSAPP_API_URL: sandbox.url,
        WHATSAPP_GRAPH_VERSION: 'v23.0',
        WHATSAPP_PHONE_NUMBER_ID: PHONE_NUMBER_ID,
        WHATSAPP_WABA_ID: WABA_ID,
      },
    });
    sandbox.setAccount({ messagingLimit: 'TIER_10K' });

    expect(check(await runPreflight(), 'whatsapp-phone-number').summary).toBe(
      `${PHONE_NUMBER_ID}: quality GREEN, messaging limit TIER_10K, throughput STANDARD`,
    );
  });

  it('FAILs a phone number id the token cannot read, given by flag over the deployed one', async () => {
    deployedStage();

    const run = await runPreflight(['--phone-number-id', '999999999999999']);

    expect(check(run, 'whatsapp-phone-number')).toMatchObject({
      status: 'FAIL',
      summary: expect.stringMatching(
        /^phone number id 999999999999999 is not readable with this token: HTTP 400, code 100: \(#100\) Unsupported get request/,
      ),
    });
  });

  it('FAILs the webhook when it answers the verification with 403', async () => {
    deployedStage({
      secrets: {
        'access-token': TOKEN,
        'app-secret': APP_SECRET,
        'verify-token': 'a-verify-token-the-function-does-not-know',
      },
    });

    const run = await runPreflight();

    expect(check(run, 'whatsapp-webhook')).toMatchObject({
      status: 'FAIL',
      summary: `${webhookUrl} answered HTTP 403`,
      fix: expect.stringMatching(/^the webhook function reads another verify token/),
    });
    expect(run.code).toBe(1);
  });

  it('warns with the put-secret-value command while the token is the placeholder, and skips Meta', async () => {
    deployedStage({
      secrets: {
        'access-token': 'PLACEHOLDER',
        'app-secret': 'PLACEHOLDER',
        'verify-token': WEBHOOK_VERIFY_TOKEN,
      },
    });

    const run = await runPreflight();

    expect(check(run, 'whatsapp-secrets')).toMatchObject({
      status: 'warn',
      summary: 'not set yet: access-token, app-secret',
      fix:
        'read -rs VALUE; aws secretsmanager put-secret-value --secret-id whatsapp-notif-prod/whatsapp/access-token --secret-string "$VALUE"; ' +
        'read -rs VALUE; aws secretsmanager put-secret-value --secret-id whatsapp-notif-prod/whatsapp/app-secret --secret-string "$VALUE"',
    });
    expect(whatsappStatuses(run)).toEqual({ 'whatsapp-secrets': 'warn', 'whatsapp-webhook': 'ok' });
  });

  it('warns that the webhook cannot be verified before the stack is deployed', async () => {
    mockHealthyAccount({
      secrets: { 'access-token': TOKEN, 'app-secret': APP_SECRET, 'verify-token': 'x' },
    });

    const run = await runPreflight([
      '--whatsapp-api-url',
      sandbox.url,
      '--phone-number-id',
      PHONE_NUMBER_ID,
      '--waba-id',
      WABA_ID,
    ]);

    expect(whatsappStatuses(run)).toMatchObject({
      'whatsapp-token': 'ok',
      'whatsapp-phone-number': 'ok',
      'whatsapp-webhook': 'warn',
    });
    expect(check(run, 'whatsapp-webhook').summary).toBe(
      'the stack is not deployed yet: no WebhookUrl to verify',
    );
  });

  it('FAILs naming secretsmanager:GetSecretValue when the secret may not be read', async () => {
    deployedStage();
    mocks.secrets.on(GetSecretValueCommand).rejects(ACCESS_DENIED('secretsmanager:GetSecretValue'));

    const run = await runPreflight();

    expect(check(run, 'whatsapp-secrets')).toMatchObject({
      status: 'FAIL',
      summary:
        'cannot check: missing permission secretsmanager:GetSecretValue on whatsapp-notif-prod/whatsapp/access-token (AccessDeniedException)',
    });
    expect(run.code).toBe(1);
  });
});

describe('the sandbox as preflight reads it', () => {
  it('refuses messaging_limit_tier from v24.0 on, as Graph does, and keeps the plain probe', async () => {
    const headers = { authorization: `Bearer ${TOKEN}` };

    const old = await fetch(`${sandbox.url}/v25.0/${PHONE_NUMBER_ID}?fields=messaging_limit_tier`, {
      headers,
    });
    const plain = await fetch(`${sandbox.url}/v25.0/${PHONE_NUMBER_ID}`, { headers });

    expect(old.status).toBe(400);
    expect(await old.json()).toMatchObject({ error: { code: 100 } });
    expect(await plain.json()).toEqual({
      display_phone_number: '+1 555-000-0000',
      quality_rating: 'GREEN',
      throughput: { level: 'STANDARD' },
      id: PHONE_NUMBER_ID,
    });
  });

  it('takes account changes over its control endpoint, and refuses a bad one', async () => {
    const changed = await fetch(`${sandbox.url}/_sandbox/account`, {
      method: 'POST',
      body: JSON.stringify({ appSubscribed: false, qualityRating: 'RED' }),
    });
    const refused = await fetch(`${sandbox.url}/_sandbox/account`, {
      method: 'POST',
      body: JSON.stringify({ qualityRating: 'PURPLE' }),
    });
    const apps = await fetch(`${sandbox.url}/v25.0/${WABA_ID}/subscribed_apps`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });

    expect(changed.status).toBe(200);
    expect(refused.status).toBe(400);
    expect(await apps.json()).toEqual({ data: [] });
  });

  it('forgets account changes on reset', async () => {
    sandbox.setAccount({ appSubscribed: false });
    sandbox.reset();

    const res = await fetch(`${sandbox.url}/v25.0/${WABA_ID}/subscribed_apps`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });

    expect(((await res.json()) as { data: unknown[] }).data).toHaveLength(1);
  });
});
