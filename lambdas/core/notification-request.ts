/**
 * The body of POST /v1/notifications: one zod schema validates requests and feeds the OpenAPI
 * document, so the two cannot disagree.
 */
import * as z from 'zod';
import { checkRecipient } from './phone.ts';

export type Priority = 'high' | 'bulk';

export const MAX_BODY_BYTES = 64 * 1024;
export const MAX_SCHEDULE_AHEAD_MS = 30 * 24 * 60 * 60 * 1000;
const MAX_METADATA_BYTES = 2048;

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
