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
  /** Phone digits; absent for a username user whose number Meta withholds (match by wamid). */
  recipientId?: string;
  /** The recipient's business-scoped user id (BSUID), when Meta sends one. */
  recipientUserId?: string;
  phoneNumberId?: string;
  errors: StatusError[];
}

export interface InboundMessage {
  /** Phone digits; absent for a username user whose number Meta withholds. */
  from?: string;
  /** The sender's BSUID (`from_user_id`, or the message's contact's `user_id`). */
  fromUserId?: string;
  /** A `system` message: a changed number (`user_changed_number`) or BSUID (`user_changed_user_id`). */
  system?: { type: string; waId?: string; userId?: string };
  id: string;
  timestamp: Date;
  type: string;
  /** The text body, or the label of a tapped quick-reply button (how users often send STOP). */
  text?: string;
  phoneNumberId?: string;
}

/** One item of a `user_preferences` webhook: marketing messages stopped or resumed. */
export interface PreferenceChange {
  waId?: string;
  userId?: string;
  value: 'stop' | 'resume';
  timestamp: Date;
}

/** One item of a `user_id_update` webhook: the person's BSUID changed from one to another. */
export interface UserIdUpdate {
  waId?: string;
  previous: string;
  current: string;
}

export type ParsedWebhook =
  | {
      ok: true;
      statuses: StatusUpdate[];
      inbound: InboundMessage[];
      preferences: PreferenceChange[];
      userIdUpdates: UserIdUpdate[];
    }
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

/** Phone digits as Meta writes them; an empty string (older drafts) means absent, like omission. */
const phoneDigits = z
  .union([z.literal(''), z.string().regex(/^\d{6,15}$/)])
  .optional()
  .transform((v) => (v === '' ? undefined : v));

/** A business-scoped user id (BSUID), `CC.<alnum>` or `CC.ENT.<alnum>`; empty means absent. */
const bsuid = z
  .union([z.literal(''), z.string().regex(/^[A-Z]{2}(\.ENT)?\.[A-Za-z0-9]{1,128}$/)])
  .optional()
  .transform((v) => (v === '' ? undefined : v));

const statusSchema = z.looseObject({
  id: storableText.min(1).max(512),
  // Read as a string: Meta has other statuses ('deleted', 'warning') that we skip, not reject.
  status: z.string().min(1),
  timestamp: unixSeconds,
  // Statuses are matched by wamid: the recipient fields may hold a phone, a BSUID, or nothing.
  recipient_id: storableText.optional(),
  recipient_user_id: bsuid,
  errors: z.array(statusErrorSchema).optional(),
});

const inboundSchema = z.looseObject({
  // A username user has no phone in the payload, only a BSUID; the opt-out list takes either.
  from: phoneDigits,
  from_user_id: bsuid,
  id: storableText.min(1).max(512),
  timestamp: unixSeconds,
  type: z.string().min(1),
  text: z.looseObject({ body: z.string() }).optional(),
  button: z.looseObject({ text: z.string().optional() }).optional(),
  system: z
    .looseObject({ type: z.string().optional(), wa_id: phoneDigits, user_id: bsuid })
    .optional(),
});

const userIdUpdateSchema = z.looseObject({
  wa_id: phoneDigits,
  user_id: z.looseObject({
    previous: bsuid.pipe(z.string()),
    current: bsuid.pipe(z.string()),
  }),
});

const preferenceSchema = z.looseObject({
  wa_id: phoneDigits,
  user_id: bsuid,
  value: z.enum(['stop', 'resume']),
  timestamp: unixSeconds,
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
  contacts: z.array(z.looseObject({ wa_id: z.string().optional(), user_id: bsuid })).optional(),
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
  const preferences: PreferenceChange[] = [];
  const userIdUpdates: UserIdUpdate[] = [];
  for (const [e, entry] of outer.data.entry.entries()) {
    for (const [c, change] of entry.changes.entries()) {
      if (change.field === 'user_preferences') {
        preferences.push(...parsePreferences(change.value));
        continue;
      }
      if (change.field === 'user_id_update') {
        userIdUpdates.push(...parseUserIdUpdates(change.value));
        continue;
      }
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
          recipientId: s.recipient_id || undefined,
          recipientUserId: s.recipient_user_id,
          phoneNumberId,
          errors: (s.errors ?? []).map((err) => ({
            code: err.code,
            title: err.title,
            message: err.message,
          })),
        });
      }
      const contacts = value.data.contacts ?? [];
      for (const [index, m] of (value.data.messages ?? []).entries()) {
        // Meta pairs contacts with messages; with one contact it is the sender of every message.
        const contact = contacts.length === 1 ? contacts[0] : contacts[index];
        inbound.push({
          from: m.from,
          fromUserId: m.from_user_id ?? contact?.user_id,
          ...(m.type === 'system' && m.system
            ? {
                system: {
                  type: m.system.type ?? '',
                  waId: m.system.wa_id,
                  userId: m.system.user_id,
                },
              }
            : {}),
          id: m.id,
          timestamp: toDate(m.timestamp),
          type: m.type,
          text: m.text?.body ?? m.button?.text,
          phoneNumberId,
        });
      }
    }
  }
  return { ok: true, statuses, inbound, preferences, userIdUpdates };
}

/** The items of a `user_id_update` value, each read alone like preferences. */
function parseUserIdUpdates(value: unknown): UserIdUpdate[] {
  const items =
    typeof value === 'object' && value !== null && 'user_id_update' in value
      ? (value as { user_id_update: unknown }).user_id_update
      : undefined;
  if (!Array.isArray(items)) return [];
  return items.flatMap((item) => {
    const parsed = userIdUpdateSchema.safeParse(item);
    if (!parsed.success) return [];
    const { wa_id, user_id } = parsed.data;
    return [{ waId: wa_id, previous: user_id.previous, current: user_id.current }];
  });
}

/**
 * The items of a `user_preferences` value, each read alone: a malformed item (or one naming
 * nobody) is skipped without dropping its neighbours, since consent must not be lost in a batch.
 */
function parsePreferences(value: unknown): PreferenceChange[] {
  const items =
    typeof value === 'object' && value !== null && 'user_preferences' in value
      ? (value as { user_preferences: unknown }).user_preferences
      : undefined;
  if (!Array.isArray(items)) return [];
  const changes: PreferenceChange[] = [];
  for (const item of items) {
    const parsed = preferenceSchema.safeParse(item);
    if (!parsed.success || (!parsed.data.wa_id && !parsed.data.user_id)) continue;
    changes.push({
      waId: parsed.data.wa_id,
      userId: parsed.data.user_id,
      value: parsed.data.value,
      timestamp: toDate(parsed.data.timestamp),
    });
  }
  return changes;
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
  /** Recipient digits, without '+', as Meta writes them; '' leaves `recipient_id` out (a username user). */
  recipientId: string;
  /** The recipient's BSUID, sent as `recipient_user_id`. */
  recipientUserId?: string;
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
  };
  const recipientId = input.recipientId.replace(/^\+/, '');
  if (recipientId) status.recipient_id = recipientId;
  if (input.recipientUserId) status.recipient_user_id = input.recipientUserId;
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
  /** Sender digits, without '+'; '' for a username user whose number Meta withholds. */
  from: string;
  /** The sender's BSUID, sent as `from_user_id` and on the contact. */
  userId?: string;
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
      contacts: [
        {
          profile: { name: 'Sandbox User' },
          ...(from ? { wa_id: from } : {}),
          ...(input.userId ? { user_id: input.userId } : {}),
        },
      ],
      messages: [
        {
          from,
          ...(input.userId ? { from_user_id: input.userId } : {}),
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

function newInboundId(): string {
  return `wamid.IN${Date.now().toString(36)}${Math.random().toString(36).slice(2, 10)}`;
}

export interface PreferencesWebhookInput {
  phoneNumberId: string;
  /** Digits without '+', or absent for a username user. */
  waId?: string;
  userId?: string;
  value: 'stop' | 'resume';
  timestamp?: Date;
  wabaId?: string;
}

/** A Meta-shaped `user_preferences` body: the person stopped or resumed marketing messages. */
export function buildUserPreferencesWebhook(input: PreferencesWebhookInput) {
  const waId = input.waId?.replace(/^\+/, '');
  const who = {
    ...(waId ? { wa_id: waId } : {}),
    ...(input.userId ? { user_id: input.userId } : {}),
  };
  const body = envelope(
    input.phoneNumberId,
    {
      contacts: [{ profile: { name: 'Sandbox User' }, ...who }],
      user_preferences: [
        {
          ...who,
          detail: `User requested to ${input.value} marketing messages`,
          category: 'marketing_messages',
          value: input.value,
          // An integer here, unlike the strings of the messages field.
          timestamp: Number(unix(input.timestamp)),
        },
      ],
    },
    input.wabaId ?? SANDBOX_WABA_ID,
  );
  body.entry[0]!.changes[0]!.field = 'user_preferences';
  return body;
}

export interface IdentityChangeWebhookInput {
  phoneNumberId: string;
  type: 'user_changed_number' | 'user_changed_user_id';
  /** The sender as Meta names it: the old number (digits) and/or the old BSUID. */
  from?: string;
  fromUserId?: string;
  /** The new number (digits) and/or the new BSUID, from the `system` block. */
  newWaId?: string;
  newUserId?: string;
  id?: string;
  timestamp?: Date;
  wabaId?: string;
}

/** A Meta-shaped `system` message: the person now has another number or BSUID. */
export function buildIdentityChangeWebhook(input: IdentityChangeWebhookInput) {
  const from = input.from?.replace(/^\+/, '');
  const newWaId = input.newWaId?.replace(/^\+/, '');
  return envelope(
    input.phoneNumberId,
    {
      messages: [
        {
          ...(from ? { from } : {}),
          ...(input.fromUserId ? { from_user_id: input.fromUserId } : {}),
          id: input.id ?? newInboundId(),
          timestamp: unix(input.timestamp),
          type: 'system',
          system: {
            body:
              input.type === 'user_changed_number'
                ? 'User changed their phone number'
                : 'User changed their business-scoped user id',
            type: input.type,
            ...(newWaId ? { wa_id: newWaId } : {}),
            ...(input.newUserId ? { user_id: input.newUserId } : {}),
          },
        },
      ],
    },
    input.wabaId ?? SANDBOX_WABA_ID,
  );
}
