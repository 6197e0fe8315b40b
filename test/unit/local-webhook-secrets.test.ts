/** The local stack's choice of app secret and verify token, and the banner lines that describe it. */
import { describe, expect, it } from 'vitest';
import { chooseLocalWebhookSecrets, webhookBannerLines } from '../../bin/local/webhook-secrets.ts';

const generate = (bytes: number) => `generated-${bytes}`;

describe('chooseLocalWebhookSecrets', () => {
  it('keeps the values the developer set', () => {
    expect(
      chooseLocalWebhookSecrets(
        { WHATSAPP_APP_SECRET: 'mine', WHATSAPP_VERIFY_TOKEN: 'my-token' },
        generate,
      ),
    ).toEqual({
      appSecret: 'mine',
      verifyToken: 'my-token',
      sources: { appSecret: 'env', verifyToken: 'env' },
    });
  });

  it('generates what is unset or empty, each on its own', () => {
    expect(chooseLocalWebhookSecrets({ WHATSAPP_APP_SECRET: '' }, generate)).toEqual({
      appSecret: 'generated-24',
      verifyToken: 'generated-12',
      sources: { appSecret: 'generated', verifyToken: 'generated' },
    });
    expect(chooseLocalWebhookSecrets({ WHATSAPP_VERIFY_TOKEN: 't' }, generate).sources).toEqual({
      appSecret: 'generated',
      verifyToken: 'env',
    });
  });

  it('generates a different secret on every run by default', () => {
    const a = chooseLocalWebhookSecrets({}).appSecret;
    const b = chooseLocalWebhookSecrets({}).appSecret;
    expect(a).toMatch(/^[0-9a-f]{48}$/);
    expect(a).not.toBe(b);
  });
});

describe('webhookBannerLines', () => {
  const webhookUrl = 'http://127.0.0.1:3000/webhook/whatsapp';
  const secrets = {
    WHATSAPP_APP_SECRET: 'the-app-secret-value',
    WHATSAPP_VERIFY_TOKEN: 'the-token-value',
  };

  it('says the values come from the environment, never printing them, and how to test', () => {
    const text = webhookBannerLines({
      webhookUrl,
      sources: { appSecret: 'env', verifyToken: 'env' },
      env: {
        ...secrets,
        WHATSAPP_ACCESS_TOKEN: 'sandbox-token',
        WHATSAPP_WABA_ID: '100000000000004',
      },
      sandboxUrl: 'http://127.0.0.1:4000',
    }).join('\n');
    expect(text).toContain('app secret:   from WHATSAPP_APP_SECRET');
    expect(text).toContain('verify token: from WHATSAPP_VERIFY_TOKEN');
    expect(text).toContain('npm run ops -- webhook test');
    expect(text).toContain(
      'WHATSAPP_API_URL=http://127.0.0.1:4000 WHATSAPP_ACCESS_TOKEN=sandbox-token',
    );
    expect(text).not.toContain('the-app-secret-value');
    expect(text).not.toContain('the-token-value');
  });

  it('says a generated secret was made for this run and which variable chooses it', () => {
    const text = webhookBannerLines({
      webhookUrl,
      sources: { appSecret: 'generated', verifyToken: 'env' },
      env: { ...secrets },
    }).join('\n');
    expect(text).toContain(
      'app secret:   generated for this run; set WHATSAPP_APP_SECRET to choose it',
    );
    expect(text).toContain('start again with both variables set');
    expect(text).not.toContain('the-app-secret-value');
  });

  it('with real Meta credentials, says whether each variable is set, never its value', () => {
    const set = webhookBannerLines({ webhookUrl, sources: undefined, env: secrets }).join('\n');
    expect(set).toContain('app secret:   from WHATSAPP_APP_SECRET');
    expect(set).not.toContain('the-app-secret-value');
    expect(set).not.toContain('sandbox');
    const unset = webhookBannerLines({ webhookUrl, sources: undefined, env: {} }).join('\n');
    expect(unset).toContain('not set: every signed POST is refused');
  });
});
