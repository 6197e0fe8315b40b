/**
 * The webhook's verify token is compared in constant time: through timingSafeEqual over two
 * SHA-256 digests of equal length, whatever the length of the presented token, never with
 * Buffer.equals or a length check first (both leak how close a guess is).
 */
import type { APIGatewayProxyEvent } from 'aws-lambda';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { verifyTokenMatches } from '#core/whatsapp/webhook-signature.ts';
import { createWebhookApp, type WebhookDeps } from '../../../lambdas/webhook/app.ts';
import { silentLogger, testMetrics } from '../../support/observability.ts';

const calls = vi.hoisted(() => [] as [Buffer, Buffer][]);

vi.mock('node:crypto', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:crypto')>();
  return {
    ...actual,
    timingSafeEqual: (a: NodeJS.ArrayBufferView, b: NodeJS.ArrayBufferView) => {
      calls.push([Buffer.from(a as Buffer), Buffer.from(b as Buffer)]);
      return actual.timingSafeEqual(a, b);
    },
  };
});

const TOKEN = 'the-verify-token-of-this-test';

function verification(token: string): APIGatewayProxyEvent {
  return {
    httpMethod: 'GET',
    path: '/webhook/whatsapp',
    headers: {},
    queryStringParameters: {
      'hub.mode': 'subscribe',
      'hub.verify_token': token,
      'hub.challenge': '42',
    },
    body: null,
    isBase64Encoded: false,
    requestContext: { requestId: 'r-1' },
  } as unknown as APIGatewayProxyEvent;
}

const app = createWebhookApp({
  // The GET check reads no table; a database that is touched fails the test loudly.
  db: undefined as unknown as WebhookDeps['db'],
  appSecret: 'unused',
  verifyToken: TOKEN,
  logger: silentLogger(),
  metrics: testMetrics(),
});

afterEach(() => {
  calls.length = 0;
});

describe('the verify token check', () => {
  it.each([
    ['the right token', TOKEN, 200],
    ['a shorter token', 'the', 403],
    ['a longer token', `${TOKEN}-and-more`, 403],
    ['a token of the same length', 'x'.repeat(TOKEN.length), 403],
    ['an empty token', '', 403],
  ])('compares %s with timingSafeEqual over equal-length digests', async (_case, token, status) => {
    const response = await app(verification(token));
    expect(response.statusCode).toBe(status);
    expect(calls).toHaveLength(1);
    const [given, expected] = calls[0]!;
    expect(given.length).toBe(32);
    expect(expected.length).toBe(32);
  });

  it('matches only the same text, multi-byte characters included', () => {
    expect(verifyTokenMatches('señal', 'señal')).toBe(true);
    expect(verifyTokenMatches('senal', 'señal')).toBe(false);
    expect(verifyTokenMatches('', '')).toBe(false);
  });
});
