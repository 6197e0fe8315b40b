/**
 * The body of POST /v1/notifications: one zod schema validates requests and feeds the OpenAPI
 * document, so the two cannot disagree.
 */
import * as z from 'zod';
import { checkRecipient } from '#core/platform/phone.ts';

export type Priority = 'high' | 'bulk';

export const MAX_BODY_BYTES = 64 * 1024;
export const MAX_SCHEDULE_AHEAD_MS = 30 * 24 * 60 * 60 * 1000;
const MAX_METADATA_BYTES = 2048;
/**
 * Bounds of a fallback's afterSeconds: the scheduler looks once a minute, so less than a minute
 * cannot be kept; more than a week is no longer a fallback.
 */
export const FALLBACK_MIN_SECONDS = 60;
export const FALLBACK_MAX_SECONDS = 7 * 24 * 60 * 60;

export const fallbackSchema = z
  .object({
    afterSeconds: z
      .number()
      .int()
      .min(FALLBACK_MIN_SECONDS)
      .max(FALLBACK_MAX_SECONDS)
      .meta({
        example: 900,
        description: `Seconds after sendAt (or acceptance) by which the notification must be delivered, ${FALLBACK_MIN_SECONDS} to ${FALLBACK_MAX_SECONDS}`,
      }),
  })
  .strict()
  .meta({
    description:
      'Ask to be told (`fallback.requiredAt`, event notification.fallback_required) when WhatsApp did not deliver in time, failed, or was held by panic mode or the kill switch; a notification not sent by then is cancelled at the same moment. Without it, the client default applies (if any).',
  });

const templateComponent = z
  .object({
    type: z.enum(['header', 'body', 'button', 'footer']),
    sub_type: z.string().max(32).optional(),
    index: z.union([z.string().max(4), z.number().int().min(0).max(10)]).optional(),
    parameters: z.array(z.record(z.string(), z.unknown())).max(20).optional(),
  })
  .strict();

export const templateSchema = z
  .object({
    name: z
      .string()
      .min(1)
      .max(512)
      .regex(/^[a-z0-9_]+$/, 'template names are lower-case letters, digits and underscores'),
    language: z
      .string()
      .regex(/^[a-z]{2,3}(_[A-Z]{2})?$/, 'a language code such as en_US or es')
      .meta({ example: 'en_US' }),
    components: z.array(templateComponent).max(10).optional(),
  })
  .strict();

export const textSchema = z
  .object({
    body: z.string().min(1).max(4096),
    previewUrl: z.boolean().optional(),
  })
  .strict();

export const notificationRequestSchema = z
  .object({
    to: z
      .string()
      .max(20)
      .superRefine((value, ctx) => {
        const check = checkRecipient(value);
        if (!check.ok) {
          ctx.addIssue({
            code: 'custom',
            message:
              check.reason === 'not_mobile'
                ? 'the recipient must be a mobile number'
                : 'the recipient must be in E.164 form: +, country code, number',
          });
        }
      })
      .meta({ example: '+573001234567', description: 'Recipient in E.164, a mobile number' }),
    template: templateSchema.optional(),
    text: textSchema.optional(),
    priority: z.enum(['high', 'bulk']).default('high'),
    sendAt: z.iso.datetime({ offset: true }).optional(),
    fallback: fallbackSchema.optional(),
    metadata: z
      .record(z.string().max(64), z.unknown())
      .refine((m) => Buffer.byteLength(JSON.stringify(m)) <= MAX_METADATA_BYTES, {
        message: `metadata must serialise to at most ${MAX_METADATA_BYTES} bytes`,
      })
      .optional(),
  })
  .strict()
  .superRefine((body, ctx) => {
    if (body.template && body.text) {
      ctx.addIssue({ code: 'custom', path: ['text'], message: 'send either template or text' });
    } else if (!body.template && !body.text) {
      ctx.addIssue({ code: 'custom', path: ['template'], message: 'template or text is required' });
    }
  });

export type NotificationRequest = z.infer<typeof notificationRequestSchema>;

/** POST /v1/notifications/batch: up to this many notifications, each with its own answer. */
export const MAX_BATCH_SIZE = 100;
/** Below Lambda's 6 MB limit on a synchronous invocation's payload, with room to spare. */
export const MAX_BATCH_BODY_BYTES = 1024 * 1024;

/** An Idempotency-Key: 1 to 255 visible ASCII characters. */
export const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

/**
 * The batch envelope. Each item is a notification request as for POST /v1/notifications, plus an
 * optional `idempotencyKey` (the header's role for one item); items are validated one by one so
 * that a bad one is answered on its own and the others are still accepted.
 */
export const batchRequestSchema = z
  .object({ notifications: z.array(z.unknown()).min(1).max(MAX_BATCH_SIZE) })
  .strict();

/** One item as the OpenAPI document shows it (validation splits off the key, then uses the request schema). */
export const batchItemDocumentSchema = notificationRequestSchema.safeExtend({
  idempotencyKey: z.string().regex(IDEMPOTENCY_KEY).optional().meta({
    description: 'Same key and body: the first answer again; different body: 422',
  }),
});

export type ScheduleCheck = { ok: true; sendAt: Date | null } | { ok: false; message: string };

/** A sendAt must lie in the future and at most 30 days ahead; no sendAt means now. */
export function checkSendAt(sendAt: string | undefined, now: Date): ScheduleCheck {
  if (sendAt === undefined) return { ok: true, sendAt: null };
  const at = new Date(sendAt);
  if (at.getTime() < now.getTime()) return { ok: false, message: 'sendAt is in the past' };
  if (at.getTime() - now.getTime() > MAX_SCHEDULE_AHEAD_MS) {
    return { ok: false, message: 'sendAt is more than 30 days ahead' };
  }
  return { ok: true, sendAt: at };
}
