/** The dispatcher's configuration, read once at cold start and validated, with the documented defaults. */
import * as z from 'zod';
import { DEFAULT_DISPATCH_SETTINGS, type DispatchSettings } from '#core/callbacks/dispatch.ts';

const schema = z.object({
  /** Only the local stack and tests set this: http and loopback targets allowed. */
  CALLBACK_ALLOW_LOCAL_TARGETS: z
    .enum(['true', 'false'])
    .default('false')
    .transform((v) => v === 'true'),
  CALLBACK_TIMEOUT_MS: z.coerce.number().int().min(100).max(30_000).default(10_000),
  CALLBACK_MAX_RESPONSE_BYTES: z.coerce
    .number()
    .int()
    .min(0)
    .default(64 * 1024),
  /** How long one invocation keeps polling for due deliveries. */
  CALLBACK_DRAIN_SECONDS: z.coerce.number().int().min(1).max(600).default(50),
  CALLBACK_BACKOFF_BASE_MS: z.coerce
    .number()
    .int()
    .min(1)
    .default(DEFAULT_DISPATCH_SETTINGS.backoffBaseMs),
  /** The stack's EventBridge bus; without it (locally) nothing is put on a bus. */
  EVENT_BUS_NAME: z.string().min(1).optional(),
  /** Outbox rows (with their deliveries and attempts) are deleted after this many days. */
  CALLBACK_RETENTION_DAYS: z.coerce.number().int().min(2).default(30),
});

export type CallbackConfig = z.infer<typeof schema> & { settings: DispatchSettings };

export function loadCallbackConfig(env: NodeJS.ProcessEnv = process.env): CallbackConfig {
  const result = schema.safeParse(env);
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    throw new Error(`invalid callback configuration: ${problems.join('; ')}`);
  }
  const config = result.data;
  return {
    ...config,
    settings: {
      ...DEFAULT_DISPATCH_SETTINGS,
      backoffBaseMs: config.CALLBACK_BACKOFF_BASE_MS,
      // A claim outlives the longest post by a margin, so it never lapses while a post is running.
      leaseMs: config.CALLBACK_TIMEOUT_MS + 30_000,
    },
  };
}
