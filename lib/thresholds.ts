/**
 * The one table of alarm thresholds: the alarms, the dashboard annotations and the runbook test all
 * read it, so a number changed here changes everywhere or fails the build.
 */

import type { Priority } from '#core/model/notification-request.ts';
import type { MetricName } from '#core/platform/metric-names.ts';
import { Metric } from '#core/platform/metric-names.ts';
import type { Severity } from './config.ts';

export const RUNBOOKS = [
  'queue-backlog',
  'dead-letter-queue',
  'api-errors',
  'api-latency',
  'delivery-failures',
  'whatsapp-rate-limiting',
  'panic-mode',
  'whatsapp-auth',
  'whatsapp-api-errors',
  'worker-errors',
  'database',
  'security',
  'callbacks',
] as const;
export type Runbook = (typeof RUNBOOKS)[number];

/** SEV-1 and SEV-2 page (critical topic); SEV-3 notifies (warning topic). See runbooks/README.md. */
export type SevLevel = 'SEV-1' | 'SEV-2' | 'SEV-3';

export type AlarmSource =
  | {
      kind: 'queue';
      priority: Priority;
      deadLetter: boolean;
      metric: 'ApproximateNumberOfMessagesVisible' | 'ApproximateAgeOfOldestMessage';
    }
  /** 100 × 5XXError / Count of the API stage. */
  | { kind: 'apiErrorRate' }
  | { kind: 'apiLatency'; statistic: 'p95' }
  /** One of our own metrics (namespace WhatsAppNotif, dimension service). */
  | { kind: 'serviceMetric'; metric: MetricName; statistic: 'Sum' | 'Maximum' | 'Minimum' }
  /** 100 × NotificationsFailed / (NotificationsSent + NotificationsFailed). */
  | { kind: 'deliveryFailureRate' }
  /** 100 × WhatsAppApiErrors / WhatsAppSendAttempts: Meta-side failures as a share of send calls. */
  | { kind: 'whatsappApiErrorRate' }
  | { kind: 'lambda'; fn: 'worker' | 'scheduler'; metric: 'Errors' | 'Throttles' | 'Invocations' }
  | { kind: 'databaseCpu' }
  /** 100 × FreeStorageSpace / allocated storage (from the stage configuration). */
  | { kind: 'databaseFreeStorage' }
  /**
   * 100 × DatabaseConnections / the connections the RDS proxy may open (max_connections from the
   * stage configuration × the proxy's maxConnectionsPercent).
   */
  | { kind: 'databaseConnections' }
  /** The callback dispatcher's queues (lib/callbacks.ts). */
  | {
      kind: 'callbackQueue';
      deadLetter: boolean;
      metric: 'ApproximateNumberOfMessagesVisible' | 'ApproximateAgeOfOldestMessage';
    }
  /** 100 × CallbackFailures / CallbackAttempts: client endpoints not taking our posts. */
  | { kind: 'callbackFailureRate' };

export type Comparison = '>' | '>=' | '<';
export type ThresholdUnit = 'messages' | 'seconds' | 'milliseconds' | 'percent' | 'count' | 'days';
export type MissingData = 'notBreaching' | 'breaching' | 'ignore' | 'missing';

export interface AlarmThreshold {
  /** Stable id: the alarm is named `whatsapp-notif-<stage>-<id>`. */
  id: string;
  severity: Severity;
  sev: SevLevel;
  runbook: Runbook;
  /** Heading of the runbook section (`## <section>`); the alarm links to its anchor. */
  section: string;
  source: AlarmSource;
  /** What is measured, as the runbook line reads it. */
  measure: string;
  comparison: Comparison;
  /** The number in the CloudWatch alarm, in `unit`. */
  threshold: number;
  unit: ThresholdUnit;
  /** Text after the value, e.g. " of requests" for a rate. */
  of?: string;
  periodSeconds: number;
  evaluationPeriods: number;
  datapointsToAlarm: number;
  /** Rates only: a period with fewer events than this counts as 0%, so two requests cannot page. */
  minimumSample?: { count: number; of: string };
  treatMissingData: MissingData;
}

const MINUTE = 60;
const HOUR = 60 * MINUTE;

/** Queue alarms exist per delivery queue; the high queue pages, the bulk queue notifies. */
function perQueue(
  make: (priority: Priority, severity: Severity, sev: SevLevel) => AlarmThreshold,
): AlarmThreshold[] {
  return [make('high', 'critical', 'SEV-2'), make('bulk', 'warning', 'SEV-3')];
}

export const ALARM_THRESHOLDS: readonly AlarmThreshold[] = [
  ...perQueue((priority, severity, sev) => ({
    id: `queue-backlog-${priority}`,
    severity,
    sev,
    runbook: 'queue-backlog',
    section: 'Queue backlog',
    source: {
      kind: 'queue',
      priority,
      deadLetter: false,
      metric: 'ApproximateNumberOfMessagesVisible',
    },
    measure: `visible messages in the ${priority} queue`,
    comparison: '>',
    threshold: 1000,
    unit: 'messages',
    periodSeconds: MINUTE,
    evaluationPeriods: 5,
    datapointsToAlarm: 5,
    // SQS stops reporting an idle, empty queue: no data means nothing is waiting.
    treatMissingData: 'notBreaching',
  })),
  ...perQueue((priority, severity, sev) => ({
    id: `oldest-message-age-${priority}`,
    severity,
    sev,
    runbook: 'queue-backlog',
    section: 'Oldest message age',
    source: { kind: 'queue', priority, deadLetter: false, metric: 'ApproximateAgeOfOldestMessage' },
    measure: `age of the oldest message in the ${priority} queue`,
    comparison: '>',
    threshold: 5 * MINUTE,
    unit: 'seconds',
    periodSeconds: MINUTE,
    evaluationPeriods: 3,
    datapointsToAlarm: 3,
    treatMissingData: 'notBreaching',
  })),
  ...(['high', 'bulk'] as const).map(
    (priority): AlarmThreshold => ({
      id: `dlq-not-empty-${priority}`,
      severity: 'warning',
      sev: 'SEV-3',
      runbook: 'dead-letter-queue',
      section: 'Dead-letter queue not empty',
      source: {
        kind: 'queue',
        priority,
        deadLetter: true,
        metric: 'ApproximateNumberOfMessagesVisible',
      },
      measure: `messages in the ${priority} dead-letter queue`,
      comparison: '>=',
      threshold: 1,
      unit: 'messages',
      periodSeconds: MINUTE,
      evaluationPeriods: 1,
      datapointsToAlarm: 1,
      // A DLQ nobody touches goes quiet after six hours while still holding messages: keep the
      // alarm where it is instead of turning OK on silence.
      treatMissingData: 'ignore',
    }),
  ),
  {
    id: 'api-5xx-rate-warning',
    severity: 'warning',
    sev: 'SEV-3',
    runbook: 'api-errors',
    section: 'API 5xx rate',
    source: { kind: 'apiErrorRate' },
    measure: '5xx answers',
    of: ' of requests',
    comparison: '>',
    threshold: 1,
    unit: 'percent',
    periodSeconds: MINUTE,
    evaluationPeriods: 5,
    datapointsToAlarm: 5,
    minimumSample: { count: 5, of: 'requests' },
    treatMissingData: 'notBreaching',
  },
  {
    id: 'api-5xx-rate-critical',
    severity: 'critical',
    sev: 'SEV-2',
    runbook: 'api-errors',
    section: 'API 5xx rate',
    source: { kind: 'apiErrorRate' },
    measure: '5xx answers',
    of: ' of requests',
    comparison: '>',
    threshold: 5,
    unit: 'percent',
    periodSeconds: MINUTE,
    evaluationPeriods: 3,
    datapointsToAlarm: 3,
    minimumSample: { count: 5, of: 'requests' },
    treatMissingData: 'notBreaching',
  },
  {
    id: 'api-latency-p95-warning',
    severity: 'warning',
    sev: 'SEV-3',
    runbook: 'api-latency',
    section: 'API latency p95',
    source: { kind: 'apiLatency', statistic: 'p95' },
    measure: 'p95 API Gateway latency',
    comparison: '>',
    threshold: 2000,
    unit: 'milliseconds',
    periodSeconds: MINUTE,
    evaluationPeriods: 10,
    datapointsToAlarm: 10,
    // No requests, no latency: nothing is slow.
    treatMissingData: 'notBreaching',
  },
  {
    id: 'api-latency-p95-critical',
    severity: 'critical',
    sev: 'SEV-2',
    runbook: 'api-latency',
    section: 'API latency p95',
    source: { kind: 'apiLatency', statistic: 'p95' },
    measure: 'p95 API Gateway latency',
    comparison: '>',
    threshold: 5000,
    unit: 'milliseconds',
    periodSeconds: MINUTE,
    evaluationPeriods: 5,
    datapointsToAlarm: 5,
    treatMissingData: 'notBreaching',
  },
  {
    id: 'delivery-failure-rate-warning',
    severity: 'warning',
    sev: 'SEV-3',
    runbook: 'delivery-failures',
    section: 'Delivery failure rate',
    source: { kind: 'deliveryFailureRate' },
    measure: 'failed notifications',
    of: ' of sent + failed',
    comparison: '>',
    threshold: 10,
    unit: 'percent',
    periodSeconds: 5 * MINUTE,
    evaluationPeriods: 3,
    datapointsToAlarm: 3,
    minimumSample: { count: 20, of: 'sent + failed' },
    treatMissingData: 'notBreaching',
  },
  {
    id: 'delivery-failure-rate-critical',
    severity: 'critical',
    sev: 'SEV-2',
    runbook: 'delivery-failures',
    section: 'Delivery failure rate',
    source: { kind: 'deliveryFailureRate' },
    measure: 'failed notifications',
    of: ' of sent + failed',
    comparison: '>',
    threshold: 20,
    unit: 'percent',
    periodSeconds: 5 * MINUTE,
    evaluationPeriods: 2,
    datapointsToAlarm: 2,
    minimumSample: { count: 20, of: 'sent + failed' },
    treatMissingData: 'notBreaching',
  },
  {
    id: 'whatsapp-rate-limited',
    severity: 'warning',
    sev: 'SEV-3',
    runbook: 'whatsapp-rate-limiting',
    section: 'Sustained WhatsApp rate limiting',
    source: { kind: 'serviceMetric', metric: Metric.WhatsAppRateLimited, statistic: 'Sum' },
    measure: `${Metric.WhatsAppRateLimited} per minute`,
    comparison: '>=',
    threshold: 1,
    unit: 'count',
    periodSeconds: MINUTE,
    evaluationPeriods: 10,
    datapointsToAlarm: 10,
    // The worker emits the metric only when Meta throttles: silence is good news.
    treatMissingData: 'notBreaching',
  },
  {
    id: 'panic-mode-active',
    severity: 'critical',
    sev: 'SEV-2',
    runbook: 'panic-mode',
    section: 'Panic mode active',
    source: { kind: 'serviceMetric', metric: Metric.PanicModeActive, statistic: 'Maximum' },
    measure: `${Metric.PanicModeActive} (maximum)`,
    comparison: '>=',
    threshold: 1,
    unit: 'count',
    periodSeconds: MINUTE,
    evaluationPeriods: 1,
    datapointsToAlarm: 1,
    // If the emitter goes quiet while the circuit is open, stay in ALARM rather than clear on
    // silence; scheduler-errors and scheduler-stopped report the quiet emitter itself.
    treatMissingData: 'ignore',
  },
  {
    id: 'whatsapp-auth-failing',
    severity: 'critical',
    sev: 'SEV-1',
    runbook: 'whatsapp-auth',
    section: 'WhatsApp auth failing',
    source: { kind: 'serviceMetric', metric: Metric.WhatsAppAuthFailures, statistic: 'Sum' },
    measure: Metric.WhatsAppAuthFailures,
    comparison: '>=',
    threshold: 1,
    unit: 'count',
    periodSeconds: MINUTE,
    evaluationPeriods: 1,
    datapointsToAlarm: 1,
    treatMissingData: 'notBreaching',
  },
  {
    id: 'worker-errors',
    severity: 'critical',
    sev: 'SEV-2',
    runbook: 'worker-errors',
    section: 'Worker errors',
    source: { kind: 'lambda', fn: 'worker', metric: 'Errors' },
    measure: 'worker invocation errors per minute',
    comparison: '>',
    threshold: 0,
    unit: 'count',
    periodSeconds: MINUTE,
    evaluationPeriods: 5,
    datapointsToAlarm: 5,
    // Lambda reports only when invoked: an idle worker has no errors.
    treatMissingData: 'notBreaching',
  },
  {
    id: 'worker-throttles',
    severity: 'warning',
    sev: 'SEV-3',
    runbook: 'worker-errors',
    section: 'Worker throttles',
    source: { kind: 'lambda', fn: 'worker', metric: 'Throttles' },
    measure: 'worker throttles per minute',
    comparison: '>',
    threshold: 0,
    unit: 'count',
    periodSeconds: MINUTE,
    evaluationPeriods: 5,
    datapointsToAlarm: 5,
    treatMissingData: 'notBreaching',
  },
  {
    id: 'scheduler-errors',
    severity: 'warning',
    sev: 'SEV-3',
    runbook: 'worker-errors',
    section: 'Scheduler errors',
    source: { kind: 'lambda', fn: 'scheduler', metric: 'Errors' },
    measure: 'scheduler invocation errors per minute',
    comparison: '>',
    threshold: 0,
    unit: 'count',
    periodSeconds: MINUTE,
    evaluationPeriods: 5,
    datapointsToAlarm: 5,
    treatMissingData: 'notBreaching',
  },
  {
    id: 'database-cpu',
    severity: 'warning',
    sev: 'SEV-3',
    runbook: 'database',
    section: 'Database CPU',
    source: { kind: 'databaseCpu' },
    measure: 'database CPU',
    comparison: '>',
    threshold: 80,
    unit: 'percent',
    periodSeconds: 5 * MINUTE,
    evaluationPeriods: 3,
    datapointsToAlarm: 3,
    // RDS reports every minute while the instance runs; a gap shows as INSUFFICIENT_DATA on the
    // dashboard, and the API and queue alarms catch a database that is down.
    treatMissingData: 'missing',
  },
  {
    id: 'database-free-storage',
    severity: 'warning',
    sev: 'SEV-3',
    runbook: 'database',
    section: 'Database free storage',
    source: { kind: 'databaseFreeStorage' },
    measure: 'free storage',
    of: ' of allocated storage',
    comparison: '<',
    threshold: 20,
    unit: 'percent',
    periodSeconds: 5 * MINUTE,
    evaluationPeriods: 1,
    datapointsToAlarm: 1,
    treatMissingData: 'missing',
  },
  {
    id: 'database-connections',
    severity: 'warning',
    sev: 'SEV-3',
    runbook: 'database',
    section: 'Database connections',
    source: { kind: 'databaseConnections' },
    measure: 'database connections',
    // The proxy never opens more than its maxConnectionsPercent of max_connections, so a share of
    // max_connections could sit under a threshold the pool can never reach; this is a share of
    // the pool itself, and at its full size functions queue for a connection.
    of: ' of what the RDS proxy may open',
    comparison: '>',
    threshold: 80,
    unit: 'percent',
    periodSeconds: MINUTE,
    evaluationPeriods: 5,
    datapointsToAlarm: 5,
    treatMissingData: 'missing',
  },
  {
    id: 'scheduler-stopped',
    severity: 'critical',
    sev: 'SEV-2',
    runbook: 'worker-errors',
    section: 'Scheduler stopped',
    source: { kind: 'lambda', fn: 'scheduler', metric: 'Invocations' },
    measure: 'scheduler invocations per 5 min',
    comparison: '<',
    threshold: 1,
    unit: 'count',
    periodSeconds: 5 * MINUTE,
    evaluationPeriods: 2,
    datapointsToAlarm: 2,
    // Lambda publishes nothing for a function nobody invokes: here silence is the failure itself.
    // Critical because nothing else notices: scheduled rows stay put and panic mode never closes.
    treatMissingData: 'breaching',
  },
  {
    id: 'whatsapp-api-error-rate-warning',
    severity: 'warning',
    sev: 'SEV-3',
    runbook: 'whatsapp-api-errors',
    section: 'WhatsApp API error rate',
    source: { kind: 'whatsappApiErrorRate' },
    measure: 'WhatsApp API errors and retries',
    of: ' of send attempts',
    comparison: '>',
    threshold: 5,
    unit: 'percent',
    periodSeconds: 5 * MINUTE,
    evaluationPeriods: 3,
    datapointsToAlarm: 3,
    minimumSample: { count: 20, of: 'send attempts' },
    treatMissingData: 'notBreaching',
  },
  {
    id: 'whatsapp-api-error-rate-critical',
    severity: 'critical',
    sev: 'SEV-2',
    runbook: 'whatsapp-api-errors',
    section: 'WhatsApp API error rate',
    source: { kind: 'whatsappApiErrorRate' },
    measure: 'WhatsApp API errors and retries',
    of: ' of send attempts',
    comparison: '>',
    threshold: 10,
    unit: 'percent',
    periodSeconds: 5 * MINUTE,
    evaluationPeriods: 2,
    datapointsToAlarm: 2,
    minimumSample: { count: 20, of: 'send attempts' },
    treatMissingData: 'notBreaching',
  },
  {
    id: 'template-failures',
    severity: 'warning',
    sev: 'SEV-3',
    runbook: 'delivery-failures',
    section: 'Template failures',
    source: { kind: 'serviceMetric', metric: Metric.TemplateFailures, statistic: 'Sum' },
    measure: `${Metric.TemplateFailures} per 5 min`,
    comparison: '>=',
    // One is enough since acceptance checks templates against the registry: what still counts is a
    // template Meta stopped (a PAUSED/DISABLED/REJECTED webhook, or a queued notification failed
    // unsent for it) or a registry out of step with Meta, each worth a look.
    threshold: 1,
    unit: 'count',
    periodSeconds: 5 * MINUTE,
    evaluationPeriods: 1,
    datapointsToAlarm: 1,
    // Emitted only when a template fails or is stopped: silence is good news.
    treatMissingData: 'notBreaching',
  },
  {
    id: 'whatsapp-token-expiring',
    severity: 'warning',
    sev: 'SEV-3',
    runbook: 'whatsapp-auth',
    section: 'WhatsApp token expiring',
    source: { kind: 'serviceMetric', metric: Metric.WhatsAppTokenDaysLeft, statistic: 'Minimum' },
    measure: `${Metric.WhatsAppTokenDaysLeft} (minimum)`,
    comparison: '<',
    threshold: 7,
    unit: 'days',
    // The scheduler checks the token about once an hour; a period several checks long keeps one
    // late check from reading as missing data and clearing the alarm in between.
    periodSeconds: 6 * HOUR,
    evaluationPeriods: 1,
    datapointsToAlarm: 1,
    // A token that never expires publishes nothing, and that is fine.
    treatMissingData: 'notBreaching',
  },
  // Issue 16: an admin key minted by break-glass while another worked is a security event.
  {
    id: 'admin-key-break-glass',
    severity: 'critical',
    sev: 'SEV-2',
    runbook: 'security',
    section: 'Admin key minted by break-glass',
    source: { kind: 'serviceMetric', metric: Metric.AdminKeyBreakGlass, statistic: 'Sum' },
    measure: `${Metric.AdminKeyBreakGlass} per 5 min`,
    comparison: '>=',
    threshold: 1,
    unit: 'count',
    periodSeconds: 5 * MINUTE,
    evaluationPeriods: 1,
    datapointsToAlarm: 1,
    // Emitted only by a break-glass mint: silence is the normal state.
    treatMissingData: 'notBreaching',
  },
  // Number health (issue 13): Meta lowered the number's quality or messaging limit.
  {
    id: 'whatsapp-number-health',
    severity: 'warning',
    sev: 'SEV-3',
    runbook: 'whatsapp-rate-limiting',
    section: 'Number quality or messaging limit dropped',
    source: { kind: 'serviceMetric', metric: Metric.NumberHealthWarnings, statistic: 'Sum' },
    measure: `${Metric.NumberHealthWarnings} per 5 min`,
    comparison: '>=',
    threshold: 1,
    unit: 'count',
    periodSeconds: 5 * MINUTE,
    evaluationPeriods: 1,
    // One slip is worth a look: Meta pauses templates and lowers limits next if nothing changes.
    datapointsToAlarm: 1,
    // Emitted only when the number's standing gets worse: silence is good news.
    treatMissingData: 'notBreaching',
  },
  // --- Client callbacks (issue 15) ---
  {
    id: 'callback-dlq-not-empty',
    severity: 'warning',
    sev: 'SEV-3',
    runbook: 'callbacks',
    section: 'Callback dead-letter queue not empty',
    source: {
      kind: 'callbackQueue',
      deadLetter: true,
      metric: 'ApproximateNumberOfMessagesVisible',
    },
    measure: 'messages in the callback dead-letter queue',
    comparison: '>=',
    threshold: 1,
    unit: 'messages',
    periodSeconds: MINUTE,
    evaluationPeriods: 1,
    datapointsToAlarm: 1,
    // As the delivery DLQs: a quiet DLQ that still holds messages keeps the alarm.
    treatMissingData: 'ignore',
  },
  {
    id: 'callback-failure-rate',
    severity: 'warning',
    sev: 'SEV-3',
    runbook: 'callbacks',
    section: 'Callback failure rate',
    source: { kind: 'callbackFailureRate' },
    measure: 'failed callback posts',
    of: ' of callback posts',
    comparison: '>',
    threshold: 25,
    unit: 'percent',
    periodSeconds: 5 * MINUTE,
    evaluationPeriods: 3,
    datapointsToAlarm: 3,
    minimumSample: { count: 20, of: 'callback posts' },
    // No callbacks registered or nothing happening: nothing failing.
    treatMissingData: 'notBreaching',
  },
];

const COMPARISON_TEXT: Record<Comparison, string> = { '>': '>', '>=': '≥', '<': '<' };

function renderSeconds(seconds: number): string {
  if (seconds >= HOUR && seconds % HOUR === 0) return `${seconds / HOUR} h`;
  if (seconds >= MINUTE && seconds % MINUTE === 0) return `${seconds / MINUTE} min`;
  return `${seconds} s`;
}

function renderValue(value: number, unit: ThresholdUnit): string {
  switch (unit) {
    case 'percent':
      return `${value}%`;
    case 'seconds':
      return renderSeconds(value);
    case 'milliseconds':
      return value % 1000 === 0 ? `${value / 1000} s` : `${value} ms`;
    case 'days':
      return `${value} days`;
    case 'messages':
    case 'count':
      return String(value);
  }
}

function renderDuration(t: AlarmThreshold): string {
  if (t.datapointsToAlarm === t.evaluationPeriods) {
    return `for ${renderSeconds(t.periodSeconds * t.evaluationPeriods)}`;
  }
  return `in ${t.datapointsToAlarm} of ${t.evaluationPeriods} periods of ${renderSeconds(t.periodSeconds)}`;
}

/** The threshold as people read it: "visible messages in the high queue > 1000 for 5 min". */
export function renderThreshold(t: AlarmThreshold): string {
  const sample = t.minimumSample
    ? ` (a ${renderSeconds(t.periodSeconds)} period counts only with at least ${t.minimumSample.count} ${t.minimumSample.of})`
    : '';
  return `${t.measure} ${COMPARISON_TEXT[t.comparison]} ${renderValue(t.threshold, t.unit)}${t.of ?? ''} ${renderDuration(t)}${sample}`;
}

/** GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens. */
export function headingAnchor(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

export function runbookLink(t: AlarmThreshold): string {
  return `runbooks/${t.runbook}.md#${headingAnchor(t.section)}`;
}

/**
 * The line each runbook section carries for each of its alarms, checked word for word by
 * test/infra/runbook-thresholds.test.ts.
 */
export function runbookAlarmLine(t: AlarmThreshold): string {
  return `Alarm \`${t.id}\` · ${t.severity} (${t.sev}) · ${renderThreshold(t)}`;
}

export function alarmName(stage: string, t: Pick<AlarmThreshold, 'id'>): string {
  return `whatsapp-notif-${stage}-${t.id}`;
}

/** Every alarm of a stage, as an ARN resource-name pattern: the alarm topics accept these only. */
export function alarmNamePattern(stage: string): string {
  return alarmName(stage, { id: '*' });
}

export function alarmDescription(t: AlarmThreshold): string {
  return `${t.section} (${t.severity}, ${t.sev}): ${renderThreshold(t)}. Runbook: ${runbookLink(t)}`;
}

export function thresholdById(id: string): AlarmThreshold {
  const found = ALARM_THRESHOLDS.find((t) => t.id === id);
  if (!found) throw new Error(`no alarm threshold with id ${id}`);
  return found;
}

/**
 * Issue 17: bounds of the daily checklist (runbooks/daily-checks.md, `ops status --check`) that
 * no alarm carries. Every other bound of that list is read from the alarm rows above.
 */
export const DAILY_CHECK_BOUNDS = {
  /** A delivery queue on a normal day holds fewer than this (seed 004's daily "< 100"). */
  queueNearEmptyMessages: 100,
} as const;
