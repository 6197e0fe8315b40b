import { afterEach, describe, expect, it, vi } from 'vitest';
import { credentialsTreatedAsExpired, defaultProvider } from '#core/platform/lambda-credentials.ts';

describe('the Lambda credential chain', () => {
  afterEach(() => {
    vi.unstubAllEnvs();
  });

  it('answers with the execution role credentials Lambda puts in the environment', async () => {
    vi.stubEnv('AWS_ACCESS_KEY_ID', 'ASIAEXAMPLE');
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'secret');
    vi.stubEnv('AWS_SESSION_TOKEN', 'session');

    const credentials = await defaultProvider()();

    expect(credentials).toMatchObject({
      accessKeyId: 'ASIAEXAMPLE',
      secretAccessKey: 'secret',
      sessionToken: 'session',
    });
  });

  it('fails with the SDK error when the environment holds no credentials', async () => {
    vi.stubEnv('AWS_ACCESS_KEY_ID', '');
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', '');

    await expect(defaultProvider()()).rejects.toThrow(/credentials/i);
  });

  it('refreshes credentials five minutes before they expire', () => {
    const inMinutes = (m: number) => new Date(Date.now() + m * 60_000);

    expect(
      credentialsTreatedAsExpired({
        accessKeyId: 'a',
        secretAccessKey: 'b',
        expiration: inMinutes(4),
      }),
    ).toBe(true);
    expect(
      credentialsTreatedAsExpired({
        accessKeyId: 'a',
        secretAccessKey: 'b',
        expiration: inMinutes(6),
      }),
    ).toBe(false);
    expect(credentialsTreatedAsExpired({ accessKeyId: 'a', secretAccessKey: 'b' })).toBe(false);
  });
});
