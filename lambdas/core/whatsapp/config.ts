/**
 * WhatsApp Cloud API settings, validated once at cold start; the access token is a reader of the
 * current secret, so a rotated token is used without a new cold start.
 */
import * as z from 'zod';
import { ConfigError } from '#core/platform/config.ts';
import { type SecretSourceOptions, secretReader } from '#core/platform/secrets.ts';
import type { GraphClientConfig } from '#core/whatsapp/graph-client.ts';

export const DEFAULT_GRAPH_API_URL = 'https://graph.facebook.com';
export const DEFAULT_GRAPH_VERSION = 'v25.0';

const schema = z.object({
  WHATSAPP_API_URL: z.string().url().default(DEFAULT_GRAPH_API_URL),
  WHATSAPP_GRAPH_VERSION: z
    .string()
    .regex(/^v\d+\.\d+$/, 'a Graph API version such as v25.0')
    .default(DEFAULT_GRAPH_VERSION),
  WHATSAPP_PHONE_NUMBER_ID: z.string().min(1),
  WHATSAPP_WABA_ID: z.string().optional(),
  WHATSAPP_TIMEOUT_MS: z.coerce.number().int().positive().default(10_000),
});

export async function loadGraphClientConfig(
  env: NodeJS.ProcessEnv = process.env,
  secrets: Omit<SecretSourceOptions, 'env'> = {},
): Promise<GraphClientConfig> {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    throw new ConfigError(
      `invalid WhatsApp configuration: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  }
  const c = parsed.data;
  return {
    apiUrl: c.WHATSAPP_API_URL,
    graphVersion: c.WHATSAPP_GRAPH_VERSION,
    phoneNumberId: c.WHATSAPP_PHONE_NUMBER_ID,
    accessToken: await secretReader('WHATSAPP_ACCESS_TOKEN', { ...secrets, env }),
    timeoutMs: c.WHATSAPP_TIMEOUT_MS,
    ...(c.WHATSAPP_WABA_ID ? { wabaId: c.WHATSAPP_WABA_ID } : {}),
  };
}
