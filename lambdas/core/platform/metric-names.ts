/**
 * Every CloudWatch metric the code emits (namespace WhatsAppNotif). The alarms, the dashboard and
 * the runbooks read these names, so they live in one place.
 */

export const METRICS_NAMESPACE = 'WhatsAppNotif';

export const Metric = {
  /** POST /v1/notifications stored a notification. Dimension: Priority. */
  NotificationsAccepted: 'NotificationsAccepted',
  /** Meta accepted a send (a wamid came back). */
  NotificationsSent: 'NotificationsSent',
  /** A notification ended in `failed` (from the send call or a Meta `failed` status). */
  NotificationsFailed: 'NotificationsFailed',
  /** Same as NotificationsFailed, with an ErrorClass dimension, for the dashboard. */
  NotificationsFailedByClass: 'NotificationsFailedByClass',
  /** A webhook reported `delivered`. */
  NotificationsDelivered: 'NotificationsDelivered',
  /** A webhook reported `read`. */
  NotificationsRead: 'NotificationsRead',
  /** A send attempt failed with a retryable class and went back on the queue. */
  DeliveryRetried: 'DeliveryRetried',
  /** A redelivered message found its row already sent and sent nothing. */
  SkippedDuplicate: 'SkippedDuplicate',
  /** A message waited for the rate limiter (visibility delay) instead of sending. */
  SkippedRateLimit: 'SkippedRateLimit',
  /** A notification was not sent because its recipient opted out. */
  SkippedOptOut: 'SkippedOptOut',
  /** A consent change in a webhook was older than the recipient's last one, or a seen message id. */
  ConsentReplaysIgnored: 'ConsentReplaysIgnored',
  /** Meta answered 429 or a throughput code (130429, 4, 80007, 131056). */
  WhatsAppRateLimited: 'WhatsAppRateLimited',
  /** Meta answered 190 or 401/403: the token is expired or invalid. */
  WhatsAppAuthFailures: 'WhatsAppAuthFailures',
  /**
   * A template error (132000–132016) failed a notification, the worker failed one whose template
   * is no longer APPROVED, or Meta moved a template to PAUSED, DISABLED or REJECTED.
   */
  TemplateFailures: 'TemplateFailures',
  /** Templates accepted without the registry check because the registry was never filled. */
  TemplateCheckSkipped: 'TemplateCheckSkipped',
  /** 1 while panic mode (the circuit) is open for any sender, 0 otherwise. */
  PanicModeActive: 'PanicModeActive',
  /** Time from the send call to Meta's answer, in milliseconds. */
  GraphApiLatency: 'GraphApiLatency',
  /** One send call to the Graph API, whatever came back: the denominator of the API error rate. */
  WhatsAppSendAttempts: 'WhatsAppSendAttempts',
  /**
   * A send call that failed on Meta's side rather than on the message: a class the worker retries
   * or that opens the circuit (upstream, rate limits, auth, account blocked).
   */
  WhatsAppApiErrors: 'WhatsAppApiErrors',
  /** Same as WhatsAppApiErrors, with an ErrorClass dimension, for the dashboard. */
  WhatsAppApiErrorsByClass: 'WhatsAppApiErrorsByClass',
  /** Days until the access token expires, from debug_token about once an hour; none if it never does. */
  WhatsAppTokenDaysLeft: 'WhatsAppTokenDaysLeft',
  /** A webhook item (status, message, value) that could not be read: skipped and kept raw. */
  WebhookItemsRejected: 'WebhookItemsRejected',
  /** A template, number or account event (or value-level error) recorded; also per Field. */
  WhatsAppEvents: 'WhatsAppEvents',
  /** A webhook change on a field we do not read; also per Field (first 100 names a process sees). */
  WebhookUnknownFields: 'WebhookUnknownFields',
  /** A `messages` change for a phone number id that is not ours: acknowledged, ignored. */
  WebhookForeignSender: 'WebhookForeignSender',
  /** The migrate function minted an admin key by break-glass while another admin key worked. */
  AdminKeyBreakGlass: 'AdminKeyBreakGlass',
  /**
   * The sending number slipped: quality to RED or FLAGGED, a lower messaging limit tier, or the
   * account scheduled to be disabled (webhook or the scheduler's Graph read).
   */
  NumberHealthWarnings: 'NumberHealthWarnings',
  /**
   * A status whose send was not recorded yet, settled through its callback data: a worker that
   * died between Meta's answer and its record, or (harmless) a webhook that beat a live worker.
   */
  SendsRecoveredFromWebhook: 'SendsRecoveredFromWebhook',
  /** An API request refused for a missing, malformed, unknown or revoked key (a 401). */
  ApiAuthDenied: 'ApiAuthDenied',
  /** A webhook POST refused for a missing or wrong X-Hub-Signature-256. */
  WebhookSignatureRejected: 'WebhookSignatureRejected',
  /** Notification rows whose personal data the retention removed (scheduler). */
  PiiRowsRedacted: 'PiiRowsRedacted',
  /** Audit log rows older than the audit retention, deleted (scheduler). */
  AuditRowsPruned: 'AuditRowsPruned',
  /** One post of a client callback, whatever came back: the denominator of the failure rate. */
  CallbackAttempts: 'CallbackAttempts',
  /** A callback post that did not get a 2xx in time (timeout, refused, 3xx, 4xx, 5xx). */
  CallbackFailures: 'CallbackFailures',
  /** A callback endpoint disabled by the dispatcher after failing past the threshold. */
  CallbackEndpointsDisabled: 'CallbackEndpointsDisabled',
} as const;

export type MetricName = (typeof Metric)[keyof typeof Metric];
