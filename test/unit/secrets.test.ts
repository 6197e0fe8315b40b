/**
 * Secrets that refresh: a value rotated in Secrets Manager reaches a warm function once the cached
 * one is SECRET_MAX_AGE_SECONDS old and not before; the Graph client sends the current token on
 * every call; the environment path of the local stack and the tests is unchanged.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { SecretsProvider } from '@aws-lambda-powertools/parameters/secrets';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it, onTestFinished, vi } from 'vitest';
import { ConfigError } from '#core/platform/config.ts';
import {
  FORCED_REFRESH_MIN_INTERVAL_MS,
  SECRET_MAX_AGE_SECONDS,
  type SecretReader,
  secretReader,
} from '#core/platform/secrets.ts';
import { loadGraphClientConfig } from '#core/whatsapp/config.ts';
import { createGraphClient } from '#core/whatsapp/graph-client.ts';

const ARN = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:whatsapp/access-token-AbCdEf';
const OLD_TOKEN = 'EAAG-old-token-0123456789abcdef';
const NEW_TOKEN = 'EAAG-new-token-fedcba9876543210';
const FROM_ARN = { WHATSAPP_ACCESS_TOKEN_SECRET_ARN: ARN };

const secretsManager = mockClient(SecretsManagerClient);

/** A provider of the test's own, so no cache is shared between tests. */
function freshProvider(): SecretsProvider {
  return new SecretsProvider({ awsSdkV3Client: new SecretsManagerClient({ region: 'us-east-1' }) });
}

/** Secrets Manager answers `values` in turn (the last one from then on). */
function secretValues(...values: string[]) {
  secretsManager.reset();
  let stub = secretsManager.on(GetSecretValueCommand, { SecretId: ARN });
  for (const value of values) stub = stub.resolvesOnce({ SecretString: value });
  stub.resolves({ SecretString: values.at(-1)! });
}

const reads = () => secretsManager.commandCalls(GetSecretValueCommand).length;

beforeEach(() => {
  // Only the clock moves: Powertools dates its cache with Date; the SDK's timers stay real.
  vi.useFakeTimers({ toFake: ['Date'], now: new Date('2026-11-28T12:00:00Z') });
});
afterEach(() => {
  vi.useRealTimers();
  secretsManager.reset();
});

describe('secretReader from Secrets Manager', () => {
  it('keeps the cached value until it is SECRET_MAX_AGE_SECONDS old, then uses the rotated one', async () => {
    // prepare
    secretValues(OLD_TOKEN, NEW_TOKEN);
    const read = await secretReader('WHATSAPP_ACCESS_TOKEN', {
      env: FROM_ARN,
      provider: freshProvider(),
    });

    // act and assess: rotated in Secrets Manager right after the cold start
    expect(await read()).toBe(OLD_TOKEN);
    vi.advanceTimersByTime((SECRET_MAX_AGE_SECONDS - 1) * 1000);
    expect(await read()).toBe(OLD_TOKEN);
    expect(reads()).toBe(1);
    vi.advanceTimersByTime(2_000);
    expect(await read()).toBe(NEW_TOKEN);
    expect(reads()).toBe(2);
  });

  it('honours a smaller maximum age', async () => {
    secretValues(OLD_TOKEN, NEW_TOKEN);
    const read = await secretReader('WHATSAPP_ACCESS_TOKEN', {
      env: FROM_ARN,
      provider: freshProvider(),
      maxAgeSeconds: 10,
    });

    vi.advanceTimersByTime(9_000);
    expect(await read()).toBe(OLD_TOKEN);
    vi.advanceTimersByTime(2_000);
    expect(await read()).toBe(NEW_TOKEN);
  });

  it('keeps the last value and says so when a refresh fails', async () => {
    // prepare
    secretsManager.reset();
    secretsManager
      .on(GetSecretValueCommand)
      .resolvesOnce({ SecretString: OLD_TOKEN })
      .rejects(new Error('ThrottlingException'));
    const stale: string[] = [];
    const read = await secretReader('WHATSAPP_ACCESS_TOKEN', {
      env: FROM_ARN,
      provider: freshProvider(),
      onStaleValue: (name) => stale.push(name),
    });

    // act
    vi.advanceTimersByTime((SECRET_MAX_AGE_SECONDS + 1) * 1000);
    const value = await read();

    // assess
    expect(value).toBe(OLD_TOKEN);
    expect(stale).toEqual(['WHATSAPP_ACCESS_TOKEN']);
  });

  it('reads again at once when asked to refresh, but not more than once per interval', async () => {
    // prepare
    secretValues(OLD_TOKEN, NEW_TOKEN, 'EAAG-third-token-0123456789abcdef');
    const read = await secretReader('WHATSAPP_ACCESS_TOKEN', {
      env: FROM_ARN,
      provider: freshProvider(),
    });
    vi.advanceTimersByTime(FORCED_REFRESH_MIN_INTERVAL_MS);

    // act
    const refreshed = await read({ refresh: true });
    const again = await read({ refresh: true });

    // assess
    expect(refreshed).toBe(NEW_TOKEN);
    expect(again).toBe(NEW_TOKEN);
    expect(reads()).toBe(2);
  });

  it('fails the cold start with the name when the secret has no value', async () => {
    secretsManager.reset();
    secretsManager.on(GetSecretValueCommand).resolves({});

    await expect(
      secretReader('WHATSAPP_ACCESS_TOKEN', { env: FROM_ARN, provider: freshProvider() }),
    ).rejects.toThrow(/WHATSAPP_ACCESS_TOKEN/);
  });
});

describe('secretReader from the environment', () => {
  it('answers the variable and never calls Secrets Manager', async () => {
    secretValues(NEW_TOKEN);
    const read = await secretReader('WHATSAPP_ACCESS_TOKEN', {
      env: { WHATSAPP_ACCESS_TOKEN: OLD_TOKEN, ...FROM_ARN },
      provider: freshProvider(),
    });

    vi.advanceTimersByTime((SECRET_MAX_AGE_SECONDS + 1) * 1000);

    expect(await read({ refresh: true })).toBe(OLD_TOKEN);
    expect(reads()).toBe(0);
  });

  it('names both variables when neither is set', async () => {
    const failure = secretReader('WHATSAPP_APP_SECRET', { env: {} });

    await expect(failure).rejects.toBeInstanceOf(ConfigError);
    await expect(failure).rejects.toThrow(
      /WHATSAPP_APP_SECRET \(or WHATSAPP_APP_SECRET_SECRET_ARN\)/,
    );
  });
});

/** A Graph API stand-in that keeps the Authorization header of every call and refuses `refused`. */
async function recordingGraph(refused: string) {
  const seen: string[] = [];
  const server = http.createServer((req, res) => {
    const authorization = req.headers.authorization ?? '';
    seen.push(authorization);
    req.resume();
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      if (authorization === `Bearer ${refused}`) {
        res.statusCode = 401;
        res.end(JSON.stringify({ error: { message: 'Error validating access token', code: 190 } }));
        return;
      }
      res.end(JSON.stringify({ messages: [{ id: `wamid.${seen.length}` }] }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, seen };
}

const message = { kind: 'template', to: '+573160000001', template: { name: 'x', language: 'en' } };

describe('the Graph client with a token reader', () => {
  it('sends the rotated token once the cache lets it through, without a new client', async () => {
    // prepare
    secretValues(OLD_TOKEN, NEW_TOKEN);
    const graph = await recordingGraph('none');
    const config = await loadGraphClientConfig(
      { ...FROM_ARN, WHATSAPP_API_URL: graph.url, WHATSAPP_PHONE_NUMBER_ID: '106540352242922' },
      { provider: freshProvider() },
    );
    const client = createGraphClient(config);
    onTestFinished(() => client.close());

    // act
    const before = await client.sendMessage(message as never);
    vi.advanceTimersByTime((SECRET_MAX_AGE_SECONDS + 1) * 1000);
    const after = await client.sendMessage(message as never);

    // assess
    expect(before.ok && after.ok).toBe(true);
    expect(graph.seen).toEqual([`Bearer ${OLD_TOKEN}`, `Bearer ${NEW_TOKEN}`]);
  });

  it('reads the token again after Meta refuses it, so a replaced token is used by the next call', async () => {
    // prepare: the old token was revoked and replaced in Secrets Manager; the cache still holds it
    secretValues(OLD_TOKEN, NEW_TOKEN);
    const graph = await recordingGraph(OLD_TOKEN);
    const read: SecretReader = await secretReader('WHATSAPP_ACCESS_TOKEN', {
      env: FROM_ARN,
      provider: freshProvider(),
    });
    const client = createGraphClient({
      apiUrl: graph.url,
      graphVersion: 'v25.0',
      phoneNumberId: '106540352242922',
      accessToken: read,
    });
    onTestFinished(() => client.close());
    vi.advanceTimersByTime(FORCED_REFRESH_MIN_INTERVAL_MS);

    // act
    const refused = await client.sendMessage(message as never);
    const next = await client.sendMessage(message as never);
    const after = await client.sendMessage(message as never);

    // assess
    expect(refused).toMatchObject({ ok: false, errorClass: 'auth' });
    expect(refused.ok || refused.message).not.toContain(OLD_TOKEN);
    expect(next.ok && after.ok).toBe(true);
    expect(graph.seen).toEqual([
      `Bearer ${OLD_TOKEN}`,
      `Bearer ${NEW_TOKEN}`,
      `Bearer ${NEW_TOKEN}`,
    ]);
    // Once a call went through, the cache answers again: one read at cold start, one forced.
    expect(reads()).toBe(2);
  });
});
