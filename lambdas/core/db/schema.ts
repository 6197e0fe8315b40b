/** The typed shape of the database, as the migrations leave it. Kysely reads it for every query. */
import type { ColumnType, Generated, Insertable, Selectable, Updateable } from 'kysely';
import type { ErrorClass } from '#core/model/error-class.ts';
import type { NotificationStatus } from '#core/model/lifecycle.ts';
import type { Priority } from '#core/model/notification-request.ts';

type Timestamp = ColumnType<Date, Date | string, Date | string>;
type CreatedAt = ColumnType<Date, Date | string | undefined, never>;
type Json = ColumnType<unknown, string, string>;

export type ApiScope = 'notifications:write' | 'notifications:read' | 'admin';

export interface ApiClientTable {
  id: string;
  name: string;
  created_at: CreatedAt;
  /** The fallback a notification of this client gets when it names none (seconds; null: none). */
  fallback_after_seconds: ColumnType<number | null, number | null | undefined, number | null>;
  /** Per-client limits (0012): notifications accepted per second, per UTC day, highest priority. */
  rate_per_second: ColumnType<number | null, number | null | undefined, number | null>;
  daily_quota: ColumnType<number | null, number | null | undefined, number | null>;
  max_priority: ColumnType<Priority | null, Priority | null | undefined, Priority | null>;
  /** The acceptance token bucket: null tokens is a full bucket. */
  quota_tokens: ColumnType<number | null, never, number | null>;
  quota_bucket_at: ColumnType<Date | null, never, Date | null>;
  /** The UTC day `quota_day_count` counts (a date, read as text so no time zone shifts it). */
  quota_day: ColumnType<string | null, never, string | null>;
  quota_day_count: ColumnType<number, never, number>;
}

export interface ApiKeyTable {
  id: string;
  client_id: string;
  /** Non-secret lookup handle, also what logs and the audit log show. */
  prefix: string;
  /** SHA-256 of the whole key, hex. Keys are 256-bit random, so a fast hash is enough. */
  key_hash: string;
  scopes: ApiScope[];
  created_at: CreatedAt;
  /** When set, the key stops working at that time (immediately for a revoke, later for a rotation). */
  revoked_at: Timestamp | null;
  last_used_at: Timestamp | null;
  /** Set at creation (0012): the key stops working then and answers 401 `api_key_expired`. */
  expires_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
}

export interface NotificationTable {
  id: string;
  client_id: string;
  idempotency_key: string | null;
  /** SHA-256 of the canonical request body, to tell a replay from a conflicting reuse of a key. */
  request_hash: string | null;
  /** The answer given to the first request, replayed for the same Idempotency-Key. */
  response: Json | null;
  request_id: string;
  recipient: string;
  sender_id: string | null;
  priority: Priority;
  message_type: 'template' | 'text';
  message: Json;
  metadata: Json | null;
  status: NotificationStatus;
  status_reason: string | null;
  send_at: Timestamp | null;
  attempts: Generated<number>;
  wamid: string | null;
  error_class: ErrorClass | null;
  error_code: number | null;
  error_message: string | null;
  next_attempt_at: Timestamp | null;
  created_at: CreatedAt;
  updated_at: Generated<Date>;
  queued_at: Timestamp | null;
  sent_at: Timestamp | null;
  delivered_at: Timestamp | null;
  read_at: Timestamp | null;
  failed_at: Timestamp | null;
  /** Fallback: seconds after send_at (or acceptance) by which it must be delivered; null: none. */
  fallback_after_seconds: ColumnType<number | null, number | null | undefined, number | null>;
  fallback_due_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  /** Set once, from null, when the client must reach the person another way (the event's trigger). */
  fallback_required_at: ColumnType<
    Date | null,
    Date | string | null | undefined,
    Date | string | null
  >;
  fallback_reason: ColumnType<string | null, string | null | undefined, string | null>;
  /** Times this row's send answered auth/account_blocked and parked it (capped; see panic-mode.ts). */
  circuit_opens: Generated<number>;
  /** When the retention or an erasure removed the number, text, parameters and metadata (0013). */
  redacted_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
  /** Bumped by the callback trigger (0010) for each client event; never written by code. */
  event_sequence: Generated<number>;
  /** The category of the notification's template when it was sent (the registry's, if known). */
  template_category: ColumnType<string | null, string | null | undefined, string | null>;
}

export interface NotificationEventTable {
  id: Generated<string>;
  notification_id: string;
  from_status: NotificationStatus | null;
  to_status: NotificationStatus;
  error_class: ErrorClass | null;
  error_code: number | null;
  attempt: number;
  at: CreatedAt;
}

export type OptOutScope = 'all' | 'marketing';
export type OptOutSource = 'keyword' | 'meta_131050' | 'user_preferences' | 'operator';

export interface OptOutTable {
  /** E.164 phone number, or a business-scoped user id (BSUID) for a user known only by one. */
  recipient: string;
  scope: ColumnType<OptOutScope, OptOutScope | undefined, OptOutScope>;
  source: OptOutSource;
  created_at: CreatedAt;
  /** Meta's time of the consent change (the message, preference or status timestamp). */
  changed_at: ColumnType<Date, Date | undefined, Date>;
}

/** The newest consent change seen per recipient and scope, opt-out or opt-in. */
export interface ConsentClockTable {
  recipient: string;
  scope: OptOutScope;
  changed_at: Date;
}

/** Inbound message ids already acted on, kept past Meta's 7 days of retries. */
export interface InboundSeenTable {
  message_id: string;
  seen_at: CreatedAt;
}

/** The BSUID Meta reports for a phone number (statuses, inbound messages). */
export interface RecipientIdTable {
  phone: string;
  bsuid: string;
  updated_at: ColumnType<Date, Date | undefined, Date>;
}

export interface AuditLogTable {
  id: Generated<string>;
  at: CreatedAt;
  /** Who acted: `key:<prefix>`, `anonymous`, `system:<component>`, `operator:<name>`. */
  actor: string;
  action: string;
  outcome: 'ok' | 'denied';
  request_id: string | null;
  source_ip: string | null;
  detail: Json | null;
}

/** Statuses Meta reported for a wamid the worker had not stored yet; applied when it is. */
export interface PendingStatusTable {
  wamid: string;
  status: 'sent' | 'delivered' | 'read' | 'failed';
  occurred_at: Timestamp;
  error_code: number | null;
  error_title: string | null;
  received_at: CreatedAt;
}

export interface SenderStateTable {
  sender_id: string;
  circuit: Generated<'closed' | 'open'>;
  opened_at: Timestamp | null;
  opened_by: string | null;
  open_reason: string | null;
  consecutive_failures: Generated<number>;
  good_probes: Generated<number>;
  last_probe_at: Timestamp | null;
  tokens: Generated<number>;
  bucket_at: Generated<Date>;
  minute_start: Generated<Date>;
  minute_count: Generated<number>;
  day_start: Generated<Date>;
  day_count: Generated<number>;
  updated_at: Generated<Date>;
  /** Opened by a person or by Meta's account event: only a person closes it. */
  held: Generated<boolean>;
}

export interface RolloutSettingsTable {
  id: number;
  delivery_enabled: boolean;
  dry_run: boolean;
  pilot_prefixes: string[];
  rate_per_second: number;
  per_minute_cap: number | null;
  daily_cap: number | null;
  recipient_spacing_seconds: number;
  drain_per_second: number;
  updated_at: Generated<Date>;
  updated_by: string;
  /** True when an operator set rate_per_second; otherwise the rate follows the number's throughput. */
  rate_by_hand: Generated<boolean>;
}

export interface RecipientPacingTable {
  recipient: string;
  last_sent_at: Timestamp;
  /** Whose attempt took the slot: a retry of the same notification is not spaced against itself. */
  notification_id: string | null;
}

export interface SchedulerRunTable {
  id: Generated<string>;
  started_at: CreatedAt;
  finished_at: Timestamp | null;
  outcome: 'running' | 'done' | 'skipped' | 'failed';
  detail: Json | null;
}

export interface DeliveryTallyTable {
  hour: Timestamp;
  kind: TallyKind;
  count: ColumnType<string, number, number>;
}

export type TallyKind = 'skipped_duplicate' | 'skipped_rate_limit';

/** A webhook item the webhook could not read, kept raw for an operator (pruned after 7 days). */
export interface WebhookRejectTable {
  id: Generated<string>;
  received_at: CreatedAt;
  field: string;
  kind: string;
  reason: string;
  raw: Json;
}

/** A template, number or account event from Meta (fields other than `messages`), without PII. */
export interface WhatsAppEventTable {
  id: Generated<string>;
  received_at: CreatedAt;
  field: string;
  event: string;
  waba_id: string | null;
  payload: Json;
}

/** What Meta says about one sending number (webhooks and the scheduler's Graph read). */
export interface NumberHealthTable {
  sender_id: string;
  quality_rating: string | null;
  messaging_limit: string | null;
  throughput_level: string | null;
  account_state: Generated<string>;
  account_detail: string | null;
  source: string;
  checked_at: Timestamp | null;
  updated_at: Generated<Date>;
}

// --- Client callbacks (0010_callbacks) ---

/** An HTTPS endpoint a client registered for its events. */
export interface CallbackEndpointTable {
  id: string;
  client_id: string;
  url: string;
  /** Null: every event type. */
  event_types: string[] | null;
  secret: string;
  /** Still signs, next to the new one, until previous_secret_expires_at (a rotation's grace). */
  previous_secret: string | null;
  previous_secret_expires_at: Timestamp | null;
  consecutive_failures: Generated<number>;
  failing_since: Timestamp | null;
  disabled_at: Timestamp | null;
  disabled_reason: string | null;
  created_at: CreatedAt;
}

/** The outbox: one client event, written by the notifications trigger. */
export interface CallbackEventTable {
  id: Generated<string>;
  notification_id: string;
  client_id: string;
  type: string;
  sequence: number;
  previous_status: string | null;
  reason: string | null;
  /** The notification row at the event, as `to_jsonb` writes it (timestamps as strings). */
  snapshot: ColumnType<Record<string, unknown>, string, string>;
  created_at: CreatedAt;
  published_at: Timestamp | null;
}

export type CallbackDeliveryStatus = 'pending' | 'delivered' | 'failed';

export interface CallbackDeliveryTable {
  id: Generated<string>;
  event_id: string;
  endpoint_id: string;
  notification_id: string;
  sequence: number;
  status: Generated<CallbackDeliveryStatus>;
  attempts: Generated<number>;
  next_attempt_at: ColumnType<Date, Date | string | undefined, Date | string>;
  last_status_code: number | null;
  last_error: string | null;
  delivered_at: Timestamp | null;
  /** Also the start of the retry window; a redelivery starts a new one. */
  created_at: ColumnType<Date, Date | string | undefined, Date | string>;
}

export interface CallbackAttemptTable {
  id: Generated<string>;
  delivery_id: string;
  at: CreatedAt;
  status_code: number | null;
  latency_ms: number;
  error: string | null;
}

/** What a template's components need from a send (see whatsapp/template-parameters.ts). */
export interface TemplateParametersJson {
  format: 'POSITIONAL' | 'NAMED';
  header: { kind: 'none' | 'text' | 'media'; count: number; names: string[]; format?: string };
  body: { count: number; names: string[] };
  /** Buttons by index: `required` ones need a parameter (URL suffix, copy code), others may have one. */
  buttons: { index: number; type: string; required: boolean }[];
}

/** One template of a WABA in one language, as Meta last said (the template registry). */
export interface MessageTemplateTable {
  waba_id: string;
  name: string;
  language: string;
  template_id: string | null;
  status: string;
  category: string | null;
  quality: string | null;
  rejected_reason: string | null;
  parameters: ColumnType<TemplateParametersJson | null, string | null, string | null>;
  header_params: number | null;
  body_params: number | null;
  button_params: number | null;
  source: string;
  last_seen_at: ColumnType<Date, Date | undefined, Date>;
  updated_at: ColumnType<Date, Date | undefined, Date>;
}

/** When a WABA's template list was last read whole, and whether a webhook asked for a re-read. */
export interface TemplateRegistryStateTable {
  waba_id: string;
  filled_at: Timestamp | null;
  refreshed_at: Timestamp | null;
  attempted_at: Timestamp | null;
  last_error: string | null;
  refresh_requested_at: Timestamp | null;
}

export interface Database {
  api_clients: ApiClientTable;
  api_keys: ApiKeyTable;
  notifications: NotificationTable;
  notification_events: NotificationEventTable;
  opt_outs: OptOutTable;
  consent_clock: ConsentClockTable;
  inbound_seen: InboundSeenTable;
  recipient_ids: RecipientIdTable;
  audit_log: AuditLogTable;
  pending_statuses: PendingStatusTable;
  sender_state: SenderStateTable;
  rollout_settings: RolloutSettingsTable;
  recipient_pacing: RecipientPacingTable;
  scheduler_runs: SchedulerRunTable;
  delivery_tallies: DeliveryTallyTable;
  webhook_rejects: WebhookRejectTable;
  whatsapp_events: WhatsAppEventTable;
  number_health: NumberHealthTable;
  callback_endpoints: CallbackEndpointTable;
  callback_events: CallbackEventTable;
  callback_deliveries: CallbackDeliveryTable;
  callback_attempts: CallbackAttemptTable;
  message_templates: MessageTemplateTable;
  template_registry_state: TemplateRegistryStateTable;
}

export type SenderStateRow = Selectable<SenderStateTable>;
export type RolloutSettingsRow = Selectable<RolloutSettingsTable>;
export type NumberHealthRow = Selectable<NumberHealthTable>;

export type ApiKeyRow = Selectable<ApiKeyTable>;
export type NotificationRow = Selectable<NotificationTable>;
export type NewNotification = Insertable<NotificationTable>;
export type NotificationUpdate = Updateable<NotificationTable>;
export type NotificationEventRow = Selectable<NotificationEventTable>;
export type AuditEntry = Insertable<AuditLogTable>;
export type CallbackEndpointRow = Selectable<CallbackEndpointTable>;
export type CallbackEventRow = Selectable<CallbackEventTable>;
export type CallbackDeliveryRow = Selectable<CallbackDeliveryTable>;
export type MessageTemplateRow = Selectable<MessageTemplateTable>;
