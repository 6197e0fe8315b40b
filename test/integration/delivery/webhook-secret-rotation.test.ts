/**
 * The webhook after the Meta app secret is reset: Meta signs with the new secret at once, the
 * webhook's cache still holds the old one, and a signature that does not match makes it read the
 * secret again (no more often than FORCED_REFRESH_MIN_INTERVAL_MS), so statuses are not refused
 * for the cache's five minutes. Secrets Manager is aws-sdk-client-mock; the database is real.
 */
import { SecretsProvider } from '@aws-lambda-powertools/parameters/secrets';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, vi } from 'vitest';
import { FORCED_REFRESH_MIN_INTERVAL_MS, secretReader } from '#core/platform/secrets.ts';
import { createWebhookApp } from '../../../lambdas/webhook/app.ts';
import { webhookPostEvent } from '../../support/delivery.ts';
import { dbTest as it } from '../../support/fixtures.ts';
import { silentLogger, testMetrics } from '../../support/observability.ts';

const ARN = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:whatsapp/app-secret-AbCdEf';
const OLD_SECRET = 'app-secret-before-the-reset-0123';
const NEW_SECRET = 'app-secret-after-the-reset-45678';
/** A payload with nothing to apply: the answer says only whether the signature was taken. */
const EMPTY_PAYLOAD = { object: 'whatsapp_business_account', entry: [] };

const secretsManager = mockClient(SecretsManagerClient);
const reads = () => secretsManager.commandCalls(GetSecretValueCommand).length;

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['Date'], now: new Date('2026-11-28T12:00:00Z') });
  secretsManager.reset();
  secretsManager
    .on(GetSecretValueCommand, { SecretId: ARN })
    .resolvesOnce({ SecretString: OLD_SECRET })
    .resolves({ SecretString: NEW_SECRET });
});
afterEach(() => {
  vi.useRealTimers();
  secretsManager.reset();
});

async function webhookWithSecretFromArn(db: Parameters<typeof createWebhookApp>[0]['db']) {
  const provider = new SecretsProvider({
    awsSdkV3Client: new SecretsManagerClient({ region: 'us-east-1' }),
  });
  return createWebhookApp({
    db,
    appSecret: await secretReader('WHATSAPP_APP_SECRET', {
      env: { WHATSAPP_APP_SECRET_SECRET_ARN: ARN },
      provider,
    }),
    verifyToken: 'verify-token-for-rotation-tests',
    logger: silentLogger(),
    metrics: testMetrics(),
  });
}

describe('the webhook after the app secret is reset', () => {
  it('takes a body signed with the new secret by reading the secret again', async ({ db }) => {
    // prepare: cold start with the old secret; then Meta's reset, well past the refresh interval
    const app = await webhookWithSecretFromArn(db);
    vi.advanceTimersByTime(FORCED_REFRESH_MIN_INTERVAL_MS);

    // act
    const answer = await app(webhookPostEvent(EMPTY_PAYLOAD, { secret: NEW_SECRET }));

    // assess
    expect(answer.statusCode).toBe(200);
    expect(reads()).toBe(2);
  });

  it('refuses a bad signature and reads the secret at most once per interval for a run of them', async ({
    db,
  }) => {
    // prepare
    const app = await webhookWithSecretFromArn(db);
    vi.advanceTimersByTime(FORCED_REFRESH_MIN_INTERVAL_MS);

    // act
    const answers = [];
    for (let i = 0; i < 5; i++) {
      answers.push(await app(webhookPostEvent(EMPTY_PAYLOAD, { secret: 'not-the-app-secret' })));
    }

    // assess
    expect(answers.map((a) => a.statusCode)).toEqual([401, 401, 401, 401, 401]);
    expect(reads()).toBe(2);
  });
});
