/** Meta's webhook POST body: zod schemas, an item-by-item parser into statuses, inbound messages, consent changes, events and refused items, and builders. */
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
  /** `biz_opaque_callback_data`, echoed from the send request (ours: see callback-data.ts). */
  callbackData?: string;
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

/** An item of a POST that could not be read: skipped alone, kept raw for an operator. */
export interface RejectedItem {
  /** The change's `field` (`messages`, ...), or `body` when the envelope itself is unreadable. */
  field: string;
  /**
   * What was refused: `status`, `message`, `error`, `preference`, `user_id_update`, `value` (a
   * whole change), `body`.
   */
  kind: string;
  /** Which part failed and why, phone-like runs masked. */
  reason: string;
  /** The item as Meta sent it (phone numbers included: stored for the operator, never logged). */
  raw: unknown;
}

/** A template, number or account event (or a value-level error), phone numbers removed. */
export interface WhatsAppEvent {
  field: string;
  event: string;
  wabaId?: string;
  /** The entry's `time` (Meta's, unix seconds), when it has one: orders events of one template. */
  time?: Date;
  payload: Record<string, unknown>;
}

export interface ParsedItems {
  statuses: StatusUpdate[];
  inbound: InboundMessage[];
  /** `user_preferences` items: marketing messages stopped or resumed. */
  preferences: PreferenceChange[];
  /** `user_id_update` items: a person's BSUID changed. */
  userIdUpdates: UserIdUpdate[];
  rejects: RejectedItem[];
  events: WhatsAppEvent[];
  /** Changes whose metadata.phone_number_id is not one of ours: acknowledged and ignored. */
  foreignChanges: number;
  /** Fields we do not read, by name (counted and logged once per name by the app). */
  unknownFields: string[];
  /** Meta statuses we know and do not apply (`played` of voice messages, ...). */
  skippedStatuses: number;
}

export type ParsedWebhook = ({ ok: true } & ParsedItems) | { ok: false; error: string };

/** The fields besides `messages` whose events we record (see whatsapp-events.md, §4 and §5). */
export const EVENT_FIELDS = [
  'message_template_status_update',
  'message_template_quality_update',
  'template_category_update',
  'phone_number_quality_update',
  'account_update',
] as const;

/** Event values the catalogue lists per field; others are stored too, and logged once as new. */
const KNOWN_EVENTS: Partial<Record<string, readonly string[]>> = {
  message_template_status_update: [
    'APPROVED',
    'PENDING',
    'REJECTED',
    'PAUSED',
    'DISABLED',
    'FLAGGED',
    'REINSTATED',
    'IN_APPEAL',
    'LIMIT_EXCEEDED',
    'LOCKED',
    'ARCHIVED',
    'UNARCHIVED',
    'DELETED',
    'PENDING_DELETION',
  ],
  message_template_quality_update: ['GREEN', 'YELLOW', 'RED', 'UNKNOWN'],
  template_category_update: ['IMPENDING', 'COMPLETED'],
  phone_number_quality_update: [
    'ONBOARDING',
    'THROUGHPUT_UPGRADE',
    'FLAGGED',
    'UNFLAGGED',
    'UPGRADE',
    'DOWNGRADE',
  ],
  account_update: [
    'ACCOUNT_VIOLATION',
    'ACCOUNT_RESTRICTION',
    'DISABLED_UPDATE',
    'ACCOUNT_DELETED',
    'ACCOUNT_OFFBOARDED',
    'ACCOUNT_RECONNECTED',
    'PARTNER_ADDED',
    'PARTNER_REMOVED',
    'PARTNER_APP_INSTALLED',
    'PARTNER_APP_UNINSTALLED',
    'VOLUME_BASED_PRICING_TIER_UPDATE',
    'AUTH_INTL_PRICE_ELIGIBILITY_UPDATE',
    'BUSINESS_PRIMARY_LOCATION_COUNTRY_UPDATE',
    'PARTNER_CLIENT_CERTIFICATION_STATUS_UPDATE',
    'AD_ACCOUNT_LINKED',
    'MM_LITE_TERMS_SIGNED',
  ],
};

/** Whether the catalogue lists this event for its field (value-level errors are always known). */
export function isKnownEvent(field: string, event: string): boolean {
  if (field === 'messages') return true;
  return KNOWN_EVENTS[field]?.includes(event) ?? false;
}

/** Statuses Meta sends that mean nothing for a notification: skipped, not refused. */
const UNAPPLIED_STATUSES = new Set(['played', 'deleted', 'warning']);

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
  // Absent or "" for a user known by a username (BSUID only): statuses match by wamid alone.
  recipient_id: storableText.optional(),
  recipient_user_id: bsuid,
  // Whatever the sender put in the request; only a value that matches a claim is acted on.
  biz_opaque_callback_data: z.string().optional(),
  errors: z.array(statusErrorSchema).optional(),
});

const inboundSchema = z.looseObject({
  // A username user has no phone in the payload (`from` absent or ""), only a BSUID; the opt-out
  // list takes either, and a message naming neither is refused.
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

/** A `contacts[]` item: only the BSUID is read, to name the sender of a message without one. */
const contactSchema = z.looseObject({ wa_id: z.string().optional(), user_id: bsuid });

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

/** The item lists of the consent fields; the items themselves are read one by one. */
const preferencesValueSchema = z.looseObject({ user_preferences: z.array(z.unknown()) });
const userIdUpdateValueSchema = z.looseObject({ user_id_update: z.array(z.unknown()) });

export const messagesValueSchema = z.looseObject({
  messaging_product: z.literal('whatsapp').optional(),
  metadata: z
    .looseObject({
      display_phone_number: z.string().optional(),
      phone_number_id: storableText.min(1),
    })
    .optional(),
  // Items are read one by one (parseMessagesValue), so one bad item does not drop the others.
  statuses: z.array(z.unknown()).optional(),
  messages: z.array(z.unknown()).optional(),
  errors: z.array(z.unknown()).optional(),
  contacts: z.array(z.unknown()).optional(),
});

/** A value-level error (`value.errors[]`, e.g. 130429), sent with no statuses or messages. */
const valueErrorSchema = z.looseObject({
  code: errorCode,
  title: storableText.optional(),
  message: storableText.optional(),
  error_data: z.looseObject({ details: storableText.optional() }).optional(),
});

/** Template/number/account values: an object; `event` is read when present. */
const eventValueSchema = z.looseObject({ event: storableText.min(1).max(200).optional() });

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

/** Keys whose values are phone numbers or personal ids in event values; dropped before storing. */
const PERSONAL_KEYS = new Set([
  'display_phone_number',
  'wa_id',
  'phone_number',
  'from',
  'recipient_id',
  'user_id',
  'parent_user_id',
]);

/** A copy of an event value without phone numbers: personal keys dropped, phone-like runs masked. */
export function redactEventPayload(value: unknown, depth = 0): unknown {
  if (depth > 8) return '[deep]';
  if (typeof value === 'string') return maskPhonesIn(value);
  if (Array.isArray(value)) return value.slice(0, 50).map((v) => redactEventPayload(v, depth + 1));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [key, v] of Object.entries(value)) {
      if (!PERSONAL_KEYS.has(key)) out[key] = redactEventPayload(v, depth + 1);
    }
    return out;
  }
  return value;
}

/** An entry's `time` as a Date, when it is a plausible unix second. */
function entryTime(entry: Record<string, unknown>): { time?: Date } {
  const time = entry.time;
  return typeof time === 'number' && Number.isInteger(time) && time > 0 && time <= MAX_UNIX_SECONDS
    ? { time: new Date(time * 1000) }
    : {};
}

/** The event name of a template/number/account value; template_category_update has none. */
function eventName(field: string, value: Record<string, unknown> & { event?: string }): string {
  // Logged and shown by name: a signed body could still put a number there.
  if (value.event) return maskPhonesIn(value.event);
  if (field === 'template_category_update') {
    return 'correct_category' in value ? 'IMPENDING' : 'COMPLETED';
  }
  if (field === 'message_template_quality_update') {
    const score = value.new_quality_score;
    return typeof score === 'string' && isStorableText(score) ? score.slice(0, 50) : 'QUALITY';
  }
  return 'UNKNOWN';
}

export interface ParseOptions {
  /** Our sender phone number ids; a `messages` change from another is ignored. All when absent. */
  phoneNumberIds?: readonly string[];
}

/**
 * Validates a webhook body item by item: a status, message or value-level error that cannot be
 * read is set aside in `rejects` with its reason, and everything else in the body is still
 * returned. Only an unreadable envelope (not `whatsapp_business_account`, no `entry` list) fails
 * as a whole.
 */
export function parseWebhookPayload(json: unknown, options: ParseOptions = {}): ParsedWebhook {
  const outer = webhookPayloadSchema.safeParse(json);
  if (!outer.success) return { ok: false, error: describeIssues(outer.error, 'body') };

  const items: ParsedItems = {
    statuses: [],
    inbound: [],
    preferences: [],
    userIdUpdates: [],
    rejects: [],
    events: [],
    foreignChanges: 0,
    unknownFields: [],
    skippedStatuses: 0,
  };
  for (const [e, entry] of outer.data.entry.entries()) {
    for (const [c, change] of entry.changes.entries()) {
      const where = `entry.${e}.changes.${c}.value`;
      if (change.field === 'messages') {
        parseMessagesValue(change.value, where, options, items);
      } else if (change.field === 'user_preferences') {
        parsePreferences(change.value, where, items);
      } else if (change.field === 'user_id_update') {
        parseUserIdUpdates(change.value, where, items);
      } else if ((EVENT_FIELDS as readonly string[]).includes(change.field)) {
        const value = eventValueSchema.safeParse(change.value);
        if (!value.success) {
          items.rejects.push({
            field: change.field,
            kind: 'value',
            reason: describeIssues(value.error, where),
            raw: change.value,
          });
          continue;
        }
        items.events.push({
          field: change.field,
          event: eventName(change.field, value.data),
          ...(entry.id ? { wabaId: entry.id } : {}),
          ...entryTime(entry),
          payload: redactEventPayload(value.data) as Record<string, unknown>,
        });
      } else {
        items.unknownFields.push(change.field);
      }
    }
  }
  return { ok: true, ...items };
}

function parseMessagesValue(
  raw: unknown,
  where: string,
  options: ParseOptions,
  items: ParsedItems,
): void {
  const value = messagesValueSchema.safeParse(raw);
  if (!value.success) {
    items.rejects.push({
      field: 'messages',
      kind: 'value',
      reason: describeIssues(value.error, where),
      raw,
    });
    return;
  }
  const phoneNumberId = value.data.metadata?.phone_number_id;
  if (phoneNumberId && options.phoneNumberIds && !options.phoneNumberIds.includes(phoneNumberId)) {
    items.foreignChanges += 1;
    return;
  }
  for (const [i, item] of (value.data.statuses ?? []).entries()) {
    const s = statusSchema.safeParse(item);
    if (!s.success) {
      const reason = describeIssues(s.error, `${where}.statuses.${i}`);
      items.rejects.push({ field: 'messages', kind: 'status', reason, raw: item });
      continue;
    }
    if (!isStatus(s.data.status)) {
      if (UNAPPLIED_STATUSES.has(s.data.status)) items.skippedStatuses += 1;
      else {
        items.rejects.push({
          field: 'messages',
          kind: 'status',
          reason: `${where}.statuses.${i}.status: not a status we know`,
          raw: item,
        });
      }
      continue;
    }
    items.statuses.push({
      wamid: s.data.id,
      status: s.data.status,
      timestamp: toDate(s.data.timestamp),
      recipientId: s.data.recipient_id || undefined,
      recipientUserId: s.data.recipient_user_id,
      phoneNumberId,
      ...(s.data.biz_opaque_callback_data
        ? { callbackData: s.data.biz_opaque_callback_data.slice(0, 512) }
        : {}),
      errors: (s.data.errors ?? []).map((err) => ({
        code: err.code,
        title: err.title,
        message: err.message,
      })),
    });
  }
  const contacts = (value.data.contacts ?? []).map((item) => {
    // A contact we cannot read only costs the message its fallback BSUID.
    const contact = contactSchema.safeParse(item);
    return contact.success ? contact.data : undefined;
  });
  for (const [i, item] of (value.data.messages ?? []).entries()) {
    const m = inboundSchema.safeParse(item);
    if (!m.success) {
      const reason = describeIssues(m.error, `${where}.messages.${i}`);
      items.rejects.push({ field: 'messages', kind: 'message', reason, raw: item });
      continue;
    }
    // Meta pairs contacts with messages; with one contact it is the sender of every message.
    const contact = contacts.length === 1 ? contacts[0] : contacts[i];
    const fromUserId = m.data.from_user_id ?? contact?.user_id;
    if (!m.data.from && !fromUserId) {
      items.rejects.push({
        field: 'messages',
        kind: 'message',
        reason: `${where}.messages.${i}.from: neither a phone number nor a user id`,
        raw: item,
      });
      continue;
    }
    items.inbound.push({
      from: m.data.from,
      fromUserId,
      ...(m.data.type === 'system' && m.data.system
        ? {
            system: {
              type: m.data.system.type ?? '',
              waId: m.data.system.wa_id,
              userId: m.data.system.user_id,
            },
          }
        : {}),
      id: m.data.id,
      timestamp: toDate(m.data.timestamp),
      type: m.data.type,
      text: m.data.text?.body ?? m.data.button?.text,
      phoneNumberId,
    });
  }
  for (const [i, item] of (value.data.errors ?? []).entries()) {
    const err = valueErrorSchema.safeParse(item);
    if (!err.success) {
      const reason = describeIssues(err.error, `${where}.errors.${i}`);
      items.rejects.push({ field: 'messages', kind: 'error', reason, raw: item });
      continue;
    }
    items.events.push({
      field: 'messages',
      event: `error_${err.data.code}`,
      payload: redactEventPayload(err.data) as Record<string, unknown>,
    });
  }
}

/**
 * The items of a `user_preferences` value, each read alone: a malformed item (or one naming
 * nobody) is refused without dropping its neighbours, since consent must not be lost in a batch.
 */
function parsePreferences(raw: unknown, where: string, items: ParsedItems): void {
  const value = preferencesValueSchema.safeParse(raw);
  if (!value.success) {
    const reason = describeIssues(value.error, where);
    items.rejects.push({ field: 'user_preferences', kind: 'value', reason, raw });
    return;
  }
  for (const [i, item] of value.data.user_preferences.entries()) {
    const parsed = preferenceSchema.safeParse(item);
    const at = `${where}.user_preferences.${i}`;
    if (!parsed.success || (!parsed.data.wa_id && !parsed.data.user_id)) {
      const reason = parsed.success
        ? `${at}: neither wa_id nor user_id`
        : describeIssues(parsed.error, at);
      items.rejects.push({ field: 'user_preferences', kind: 'preference', reason, raw: item });
      continue;
    }
    items.preferences.push({
      waId: parsed.data.wa_id,
      userId: parsed.data.user_id,
      value: parsed.data.value,
      timestamp: toDate(parsed.data.timestamp),
    });
  }
}

/** The items of a `user_id_update` value, each read alone like preferences. */
function parseUserIdUpdates(raw: unknown, where: string, items: ParsedItems): void {
  const value = userIdUpdateValueSchema.safeParse(raw);
  if (!value.success) {
    const reason = describeIssues(value.error, where);
    items.rejects.push({ field: 'user_id_update', kind: 'value', reason, raw });
    return;
  }
  for (const [i, item] of value.data.user_id_update.entries()) {
    const parsed = userIdUpdateSchema.safeParse(item);
    if (!parsed.success) {
      const reason = describeIssues(parsed.error, `${where}.user_id_update.${i}`);
      items.rejects.push({ field: 'user_id_update', kind: 'user_id_update', reason, raw: item });
      continue;
    }
    const { wa_id, user_id } = parsed.data;
    items.userIdUpdates.push({ waId: wa_id, previous: user_id.previous, current: user_id.current });
  }
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
  /** Echoed as `biz_opaque_callback_data`, as Meta does when the send request set it. */
  callbackData?: string;
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
  if (input.callbackData) status.biz_opaque_callback_data = input.callbackData;
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

/** What `buildEventWebhook` sends for each field unless told otherwise: the catalogue's examples. */
export const SAMPLE_EVENT_VALUES: Record<(typeof EVENT_FIELDS)[number], Record<string, unknown>> = {
  message_template_status_update: {
    event: 'APPROVED',
    message_template_id: 1_000_000_001,
    message_template_name: 'hello_world',
    message_template_language: 'en-US',
    reason: 'NONE',
    message_template_category: 'UTILITY',
  },
  message_template_quality_update: {
    previous_quality_score: 'GREEN',
    new_quality_score: 'YELLOW',
    message_template_id: 1_000_000_001,
    message_template_name: 'hello_world',
    message_template_language: 'en-US',
  },
  template_category_update: {
    message_template_id: 1_000_000_001,
    message_template_name: 'hello_world',
    message_template_language: 'en-US',
    previous_category: 'UTILITY',
    new_category: 'MARKETING',
  },
  phone_number_quality_update: {
    display_phone_number: SANDBOX_DISPLAY_NUMBER,
    event: 'THROUGHPUT_UPGRADE',
    max_daily_conversations_per_business: 'TIER_10K',
  },
  account_update: {
    event: 'ACCOUNT_RESTRICTION',
    restriction_info: [
      { restriction_type: 'RESTRICTED_BIZ_INITIATED_MESSAGING', expiration: 1_800_000_000 },
    ],
  },
};

/**
 * A Meta-shaped body for a template, number or account field (the sample value with `value`'s
 * keys over it), or, for `errors`, a `messages` change carrying only a value-level error.
 */
export function buildEventWebhook(input: {
  field: (typeof EVENT_FIELDS)[number] | 'errors';
  value?: Record<string, unknown>;
  phoneNumberId: string;
  wabaId?: string;
}) {
  const wabaId = input.wabaId ?? SANDBOX_WABA_ID;
  if (input.field === 'errors') {
    const error = {
      code: 130429,
      title: 'Rate limit hit',
      message: 'Rate limit hit',
      error_data: { details: 'Cloud API message throughput has been reached.' },
      ...input.value,
    };
    return envelope(input.phoneNumberId, { errors: [error] }, wabaId);
  }
  return {
    object: 'whatsapp_business_account',
    entry: [
      {
        id: wabaId,
        time: Math.floor(Date.now() / 1000),
        changes: [
          {
            field: input.field,
            value: { ...SAMPLE_EVENT_VALUES[input.field], ...input.value },
          },
        ],
      },
    ],
  };
}

/** Malformed `statuses[]` items as a careless sender might write them; the webhook must skip them alone. */
export function malformedStatusItem(index: number): Record<string, unknown> {
  const timestamp = String(Math.floor(Date.now() / 1000));
  const shapes: Record<string, unknown>[] = [
    { status: 'delivered', timestamp, recipient_id: '' },
    { id: `wamid.MALFORMED${index}`, status: 'teleported', timestamp },
    { id: `wamid.MALFORMED${index}`, status: 'sent', timestamp: 'yesterday' },
  ];
  return shapes[index % shapes.length]!;
}
