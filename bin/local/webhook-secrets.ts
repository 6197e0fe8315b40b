/**
 * The app secret and verify token the local webhook and the sandbox share: the developer's own when
 * WHATSAPP_APP_SECRET / WHATSAPP_VERIFY_TOKEN are set (so a captured Meta payload can be replayed),
 * random for the run otherwise; and the banner lines that say which, never the values.
 */
import { randomBytes } from 'node:crypto';

/** `env`: the developer set it; `generated`: random for this run. */
export type SecretSource = 'env' | 'generated';

export interface SecretSources {
  appSecret: SecretSource;
  verifyToken: SecretSource;
}

export interface LocalWebhookSecrets {
  appSecret: string;
  verifyToken: string;
  sources: SecretSources;
}

export function chooseLocalWebhookSecrets(
  env: NodeJS.ProcessEnv,
  generate: (bytes: number) => string = (bytes) => randomBytes(bytes).toString('hex'),
): LocalWebhookSecrets {
  // An empty variable counts as unset: an empty secret would refuse every signed POST.
  const appSecret = env.WHATSAPP_APP_SECRET || undefined;
  const verifyToken = env.WHATSAPP_VERIFY_TOKEN || undefined;
  return {
    appSecret: appSecret ?? generate(24),
    verifyToken: verifyToken ?? generate(12),
    sources: {
      appSecret: appSecret ? 'env' : 'generated',
      verifyToken: verifyToken ? 'env' : 'generated',
    },
  };
}

export interface WebhookBannerInput {
  webhookUrl: string;
  /** Undefined when real Meta credentials are in use (no sandbox). */
  sources: SecretSources | undefined;
  env: NodeJS.ProcessEnv;
  sandboxUrl?: string | undefined;
}

/** The banner's webhook lines: where each value comes from and how to test the webhook. */
export function webhookBannerLines(input: WebhookBannerInput): string[] {
  const { webhookUrl, sources, env } = input;
  if (!sources) {
    return [
      `Webhook:       ${webhookUrl}`,
      `  app secret:   ${env.WHATSAPP_APP_SECRET ? 'from WHATSAPP_APP_SECRET' : 'not set: every signed POST is refused (set WHATSAPP_APP_SECRET)'}`,
      `  verify token: ${env.WHATSAPP_VERIFY_TOKEN ? 'from WHATSAPP_VERIFY_TOKEN' : 'not set: the verification GET is refused (set WHATSAPP_VERIFY_TOKEN)'}`,
    ];
  }
  const line = (source: SecretSource, name: string, what: string) =>
    source === 'env'
      ? `from ${name}`
      : `generated for this run; set ${name} to choose it (${what})`;
  return [
    `Webhook:       ${webhookUrl} (the sandbox signs its webhooks with the same app secret)`,
    `  app secret:   ${line(sources.appSecret, 'WHATSAPP_APP_SECRET', 'to replay signed payloads')}`,
    `  verify token: ${line(sources.verifyToken, 'WHATSAPP_VERIFY_TOKEN', 'to send verification GETs')}`,
    sources.appSecret === 'env' && sources.verifyToken === 'env'
      ? '  Test it (same variables, plus WN_API_URL below): npm run ops -- webhook test'
      : '  To test it with npm run ops -- webhook test, start again with both variables set.',
    // The sandbox's own throwaway token, not a Meta one: shown so webhook status can reach it.
    `  The sandbox's subscribed apps: WHATSAPP_API_URL=${input.sandboxUrl} WHATSAPP_ACCESS_TOKEN=${env.WHATSAPP_ACCESS_TOKEN} \\`,
    `    npm run ops -- webhook status --waba-id ${env.WHATSAPP_WABA_ID}`,
  ];
}
