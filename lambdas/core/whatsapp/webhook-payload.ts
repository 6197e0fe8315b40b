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
  /** Empty when Meta withheld the phone number (usernames). */
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

/** An item of a POST that could not be read: skipped alone, kept raw for an operator. */
export interface RejectedItem {
  /** The change's `field` (`messages`, ...), or `body` when the envelope itself is unreadable. */
  field: string;
  /** What was refused: `status`, `message`, `error`, `value` (a whole change), `body`. */
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
  payload: Record<string, unknown>;
}

export interface ParsedItems {
  statuses: StatusUpdate[];
  inbound: InboundMessage[];
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

const statusSchema = z.looseObject({
  id: storableText.min(1).max(512),
  // Read as a string: Meta has other statuses ('deleted', 'warning') that we skip, not reject.
  status: z.string().min(1),
  timestamp: unixSeconds,
  // Absent or "" for a user known by a username (BSUID only): statuses match by wamid alone.
  recipient_id: storableText.optional(),
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
      recipientId: s.data.recipient_id ?? '',
      phoneNumberId,
      errors: (s.data.errors ?? []).map((err) => ({
        code: err.code,
        title: err.title,
        message: err.message,
      })),
    });
  }
  for (const [i, item] of (value.data.messages ?? []).entries()) {
    const m = inboundSchema.safeParse(item);
    if (!m.success) {
      const reason = describeIssues(m.error, `${where}.messages.${i}`);
      items.rejects.push({ field: 'messages', kind: 'message', reason, raw: item });
      continue;
    }
    items.inbound.push({
      from: m.data.from,
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
