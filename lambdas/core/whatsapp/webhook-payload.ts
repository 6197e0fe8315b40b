/** Meta's webhook POST body: zod schemas, a parser into status updates and inbound messages, and builders. */
import * as z from 'zod';
import { isStorableText } from '#core/platform/json-input.ts';
import { maskPhonesIn } from '#core/platform/phone.ts';

export const STATUS_VALUES = ['sent', 'delivered', 'read', 'failed'] as const;
export type WebhookStatus = (typeof STATUS_VALUES)[number];

export interface StatusError {
  code: number;
  title?: string;
  message?: string;
}

export interface StatusUpdate {
  wamid: string;
  status: WebhookStatus;
  timestamp: Date;
  recipientId: string;
  phoneNumberId?: string;
  errors: StatusError[];
}

export interface InboundMessage {
  from: string;
  id: string;
  timestamp: Date;
  type: string;
  /** The text body, or the label of a tapped quick-reply button (how users often send STOP). */
  text?: string;
  phoneNumberId?: string;
}

export type ParsedWebhook =
  | { ok: true; statuses: StatusUpdate[]; inbound: InboundMessage[] }
  | { ok: false; error: string };

/** Latest Unix second we accept (year 2286): anything later is not a real event time. */
const MAX_UNIX_SECONDS = 9_999_999_999;

/** Unix seconds, as a string (what Meta sends) or a number. */
const unixSeconds = z.union([
  z.string().regex(/^\d{1,10}$/),
  z.number().int().nonnegative().max(MAX_UNIX_SECONDS),
]);

/** Text we store or look up: PostgreSQL refuses U+0000 and unpaired surrogates. */
const storableText = z.string().refine(isStorableText, 'contains U+0000 or an unpaired surrogate');

/** Graph error codes are 32-bit integers; the column is too. */
const errorCode = z
  .number()
  .int()
  .min(-(2 ** 31))
  .max(2 ** 31 - 1);

// Objects are z.looseObject: Meta adds fields over time and an unknown field must not turn a
// good delivery into a 400 that Meta retries for days. What we read is typed strictly.
const statusErrorSchema = z.looseObject({
  code: errorCode,
  title: storableText.optional(),
  message: storableText.optional(),
});

const statusSchema = z.looseObject({
  id: storableText.min(1).max(512),
  // Read as a string: Meta has other statuses ('deleted', 'warning') that we skip, not reject.
  status: z.string().min(1),
  timestamp: unixSeconds,
  recipient_id: storableText.min(1),
  errors: z.array(statusErrorSchema).optional(),
});

const inboundSchema = z.looseObject({
  // WhatsApp ids of senders are phone digits; the opt-out list is keyed by them.
  from: z.string().regex(/^\d{6,15}$/),
  id: storableText.min(1).max(512),
  timestamp: unixSeconds,
  type: z.string().min(1),
  text: z.looseObject({ body: z.string() }).optional(),
  button: z.looseObject({ text: z.string().optional() }).optional(),
});

export const messagesValueSchema = z.looseObject({
  messaging_product: z.literal('whatsapp').optional(),
  metadata: z
    .looseObject({
      display_phone_number: z.string().optional(),
      phone_number_id: storableText.min(1),
    })
    .optional(),
  statuses: z.array(statusSchema).optional(),
  messages: z.array(inboundSchema).optional(),
  contacts: z.array(z.looseObject({ wa_id: z.string().optional() })).optional(),
});

export const webhookPayloadSchema = z.looseObject({
  object: z.literal('whatsapp_business_account'),
  entry: z.array(
    z.looseObject({
      id: z.string().optional(),
      changes: z.array(
        // The value's shape depends on the field; only `messages` is ours to read.
        z.looseObject({ field: z.string(), value: z.unknown() }),
      ),
    }),
  ),
});

export type WebhookPayload = z.infer<typeof webhookPayloadSchema>;

function toDate(seconds: string | number): Date {
  return new Date(Number(seconds) * 1000);
}

function describeIssues(error: z.ZodError, prefix: string): string {
  const text = error.issues
    .slice(0, 5)
    .map((issue) => `${[prefix, ...issue.path].join('.')}: ${issue.message}`)
    .join('; ');
  return maskPhonesIn(text);
}

function isStatus(value: string): value is WebhookStatus {
  return (STATUS_VALUES as readonly string[]).includes(value);
}

/**
 * Validates a webhook body and flattens it. Statuses Meta may add later are skipped so that the
 * rest of the delivery is still applied; a malformed field we rely on rejects the whole body.
 */
export function parseWebhookPayload(json: unknown): ParsedWebhook {
  const outer = webhookPayloadSchema.safeParse(json);
  if (!outer.success) return { ok: false, error: describeIssues(outer.error, 'body') };

  const statuses: StatusUpdate[] = [];
  const inbound: InboundMessage[] = [];
  for (const [e, entry] of outer.data.entry.entries()) {
    for (const [c, change] of entry.changes.entries()) {
      if (change.field !== 'messages') continue;
      const value = messagesValueSchema.safeParse(change.value);
      if (!value.success) {
        return { ok: false, error: describeIssues(value.error, `entry.${e}.changes.${c}.value`) };
      }
      const phoneNumberId = value.data.metadata?.phone_number_id;
      for (const s of value.data.statuses ?? []) {
        if (!isStatus(s.status)) continue;
        statuses.push({
          wamid: s.id,
          status: s.status,
          timestamp: toDate(s.timestamp),
          recipientId: s.recipient_id,
          phoneNumberId,
          errors: (s.errors ?? []).map((err) => ({
            code: err.code,
            title: err.title,
            message: err.message,
          })),
        });
      }
      for (const m of value.data.messages ?? []) {
        inbound.push({
          from: m.from,
          id: m.id,
          timestamp: toDate(m.timestamp),
          type: m.type,
          text: m.text?.body ?? m.button?.text,
          phoneNumberId,
        });
      }
    }
  }
  return { ok: true, statuses, inbound };
}

const SANDBOX_WABA_ID = '100000000000001';
const SANDBOX_DISPLAY_NUMBER = '15550000000';

function unix(timestamp: Date | undefined): string {
  return String(Math.floor((timestamp ?? new Date()).getTime() / 1000));
}

function envelope(phoneNumberId: string, value: Record<string, unknown>, wabaId: string) {
  return {
    object: 'whatsapp_business_account',
    entry: [
      {
        id: wabaId,
        changes: [
          {
            field: 'messages',
            value: {
              messaging_product: 'whatsapp',
              metadata: {
                display_phone_number: SANDBOX_DISPLAY_NUMBER,
                phone_number_id: phoneNumberId,
              },
              ...value,
            },
          },
        ],
      },
    ],
  };
}

export interface StatusWebhookInput {
  phoneNumberId: string;
  wamid: string;
  status: WebhookStatus;
  /** Recipient digits, without '+', as Meta writes them. */
  recipientId: string;
  timestamp?: Date;
  errors?: StatusError[];
  wabaId?: string;
}

/** One entry of a webhook's `statuses[]`, with the conversation and pricing blocks Meta adds. */
function statusObject(input: StatusWebhookInput): Record<string, unknown> {
  const status: Record<string, unknown> = {
    id: input.wamid,
    status: input.status,
    timestamp: unix(input.timestamp),
    recipient_id: input.recipientId.replace(/^\+/, ''),
  };
  if (input.status === 'failed') {
    status.errors = (input.errors ?? [{ code: 131000, title: 'Something went wrong' }]).map(
      (err) => ({
        code: err.code,
        title: err.title ?? 'Message failed',
        message: err.message ?? err.title ?? 'Message failed',
        error_data: { details: err.message ?? err.title ?? 'Message failed' },
      }),
    );
  } else {
    status.conversation = {
      id: `conv.${input.wamid.slice(-16)}`,
      origin: { type: 'utility' },
    };
    status.pricing = { billable: true, pricing_model: 'PMP', category: 'utility' };
  }
  return status;
}

/** A Meta-shaped status webhook body carrying one status. */
export function buildStatusWebhook(input: StatusWebhookInput) {
  return envelope(
    input.phoneNumberId,
    { statuses: [statusObject(input)] },
    input.wabaId ?? SANDBOX_WABA_ID,
  );
}

/**
 * A body carrying several statuses of one sender number, as Meta sends under load. The inputs'
 * own phone number and business account ids are taken from the first.
 */
export function buildStatusesWebhook(inputs: readonly StatusWebhookInput[]) {
  const first = inputs[0];
  if (!first) throw new Error('buildStatusesWebhook needs at least one status');
  return envelope(
    first.phoneNumberId,
    { statuses: inputs.map(statusObject) },
    first.wabaId ?? SANDBOX_WABA_ID,
  );
}

export interface InboundTextWebhookInput {
  phoneNumberId: string;
  /** Sender digits, without '+'. */
  from: string;
  text: string;
  id?: string;
  timestamp?: Date;
  wabaId?: string;
}

/** A Meta-shaped inbound text message webhook body (how a user's STOP arrives). */
export function buildInboundTextWebhook(input: InboundTextWebhookInput) {
  const from = input.from.replace(/^\+/, '');
  return envelope(
    input.phoneNumberId,
    {
      contacts: [{ profile: { name: 'Sandbox User' }, wa_id: from }],
      messages: [
        {
          from,
          id:
            input.id ??
            `wamid.IN${Date.now().toString(36)}${Math.random().toString(36).slice(2, 10)}`,
          timestamp: unix(input.timestamp),
          type: 'text',
          text: { body: input.text },
        },
      ],
    },
    input.wabaId ?? SANDBOX_WABA_ID,
  );
}
