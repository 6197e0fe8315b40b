/** Sentry reporting: nothing loaded without a DSN, and no phone number or API key in what is sent. */
import { createTransport } from '@sentry/aws-serverless';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  flushSentry,
  initSentry,
  reportError,
  reportErrorsToSentry,
  resetSentryForTests,
  scrubDeep,
} from '#core/platform/sentry.ts';

const KEY = `wn_0123456789ab_${'A'.repeat(43)}`;

afterEach(() => resetSentryForTests());

/** A transport that keeps the envelopes instead of sending them. */
function keepingTransport(sent: string[]) {
  return (options: Parameters<typeof createTransport>[0]) =>
    createTransport(options, async (request) => {
      const body = request.body;
      sent.push(typeof body === 'string' ? body : Buffer.from(body).toString('utf8'));
      return { statusCode: 200 };
    });
}

describe('scrubDeep', () => {
  it('masks numbers in every string and key, keeps key prefixes only, drops secret headers', () => {
    const scrubbed = scrubDeep({
      message: 'send to +573001234567 failed',
      exception: { values: [{ value: 'Meta rejected 573001234567' }] },
      breadcrumbs: [{ message: `key ${KEY}`, data: { to: '+57 300 123 4567' } }],
      extra: {
        byRecipient: { '573001234567': 1 },
        headers: { 'X-API-Key': 'anything', Authorization: 'Bearer t' },
      },
      timestamp: 1_763_859_200,
    });
    const text = JSON.stringify(scrubbed);
    expect(text).not.toMatch(/3001234567|300 123 4567/);
    expect(text).toContain('+57******4567');
    expect(text).toContain('wn_0123456789ab_[redacted]');
    expect(text).not.toContain('A'.repeat(43));
    expect(scrubbed.extra.headers).toEqual({
      'X-API-Key': '[redacted]',
      Authorization: '[redacted]',
    });
    expect(scrubbed.timestamp).toBe(1_763_859_200);
  });
});

describe('initSentry', () => {
  it('imports nothing and reports nothing without SENTRY_DSN', async () => {
    const load = vi.fn();
    expect(await initSentry({ env: {}, load })).toBeUndefined();
    expect(load).not.toHaveBeenCalled();
    expect(() => reportError(new Error('ignored'))).not.toThrow();
  });

  it('warns and carries on when the SDK cannot be loaded', async () => {
    const warn = vi.fn();
    const sdk = await initSentry({
      env: { SENTRY_DSN: 'https://public@o0.ingest.sentry.io/1' },
      logger: { warn },
      load: () => Promise.reject(new Error('Cannot find package')),
    });
    expect(sdk).toBeUndefined();
    expect(warn).toHaveBeenCalledWith(expect.stringContaining('could not be loaded'), {
      error: 'Error',
    });
  });

  it('sends events with phone numbers and API keys masked', async () => {
    const sent: string[] = [];
    const sdk = await initSentry({
      env: { SENTRY_DSN: 'https://public@o0.ingest.sentry.io/1', STAGE: 'test' },
      transport: keepingTransport(sent),
    });
    expect(sdk).toBeDefined();
    sdk!.addBreadcrumb({ message: 'calling Meta for +573001234567', data: { to: '573001234567' } });
    reportError(new Error(`send to +573001234567 failed with ${KEY}`), {
      recipient: '+573001234567',
    });
    await flushSentry();
    const envelope = sent.join('\n');
    expect(envelope).toContain('send to +57******4567 failed');
    expect(envelope).not.toContain('3001234567');
    expect(envelope).not.toContain('A'.repeat(43));
  });
});

describe('reportErrorsToSentry', () => {
  it('reports an error the handler throws and lets it fail the invocation', async () => {
    const sent: string[] = [];
    await initSentry({
      env: { SENTRY_DSN: 'https://public@o0.ingest.sentry.io/1' },
      transport: keepingTransport(sent),
    });
    const middleware = reportErrorsToSentry();
    const request = {
      event: {},
      context: { functionName: 'worker' },
      response: undefined,
      error: new Error('database unreachable while sending to 573001234567'),
      internal: {},
    };
    await middleware.onError!(request as never);
    expect(request.response).toBeUndefined();
    const envelope = sent.join('\n');
    expect(envelope).toContain('database unreachable while sending to +57******4567');
    expect(envelope).not.toContain('573001234567');
  });
});
