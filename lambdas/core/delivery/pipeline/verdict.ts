/**
 * What the delivery pipeline decides for one queue record, as data: the outcome, the row's move,
 * what happens to the queue message, and the log line and metrics that say so. The pure stages
 * return verdicts; `announce` is the one place they reach the logger and the metrics.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import type { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { NotificationRow } from '#core/db/schema.ts';
import type { Transition } from '#core/notifications/transitions.ts';
import type { MetricName } from '#core/platform/metric-names.ts';

export interface DeliveryRecord {
  messageId: string;
  receiptHandle: string;
  body: string;
  receiveCount: number;
  requestId?: string | undefined;
  queueUrl: string;
}

export type RecordOutcome =
  | 'sent'
  | 'failed'
  | 'retry'
  | 'deferred'
  | 'skipped'
  | 'skipped_duplicate'
  | 'delayed'
  | 'busy'
  | 'missing'
  | 'bad_body';

/** A stored notification with whether its recipient is on the opt-out list, read in one query. */
export type LoadedRow = NotificationRow & {
  opted_out: boolean;
  /** A marketing-only opt-out (131050, user_preferences): stops marketing templates only. */
  marketing_opted_out?: boolean;
  /** The template's status and category in the registry now; absent or null when unknown. */
  registry_status?: string | null;
  registry_category?: string | null;
};

/** A record whose row may still be sent: it passed triage. */
export interface Candidate {
  record: DeliveryRecord;
  row: LoadedRow;
}

export interface LogLine {
  level: 'info' | 'warn' | 'error';
  message: string;
  fields: Record<string, unknown>;
}

export interface MetricPoint {
  name: MetricName;
  unit: (typeof MetricUnit)[keyof typeof MetricUnit];
  value: number;
  /** Published on its own with this ErrorClass dimension (the dashboard's by-class widgets). */
  errorClass?: string;
}

export interface Verdict {
  record: DeliveryRecord;
  outcome: RecordOutcome;
  /** The row's guarded move; a stage's moves are written together in one statement. */
  transition?: Transition;
  /** Put back on the queue as a new message delayed this long: waiting spends no receive. */
  holdBackSeconds?: number;
  /** Left on the queue, hidden this long, and reported failed: a retry that spends a receive. */
  retryAfterSeconds?: number;
  log?: LogLine;
  metrics?: readonly MetricPoint[];
}

/** Statuses the worker may claim; `sending` only when its claim is older than a worker's life. */
export const CLAIMABLE = ['accepted', 'queued', 'deferred'] as const;

/** The worker's info line about a record: which request, which queue message, which notification. */
export function infoLine(
  record: DeliveryRecord,
  message: string,
  extra: Record<string, unknown> = {},
): LogLine {
  return {
    level: 'info',
    message,
    fields: {
      requestId: record.requestId,
      messageId: record.messageId,
      notificationId: record.body,
      ...extra,
    },
  };
}

/** Writes each verdict's metrics, then its log line, in the order of the verdicts. */
export function announce(
  observability: { logger: Logger; metrics: Metrics },
  verdicts: readonly Verdict[],
  rows?: ReadonlyMap<string, Pick<LoadedRow, 'client_id'>>,
): void {
  const { logger, metrics } = observability;
  for (const verdict of verdicts) {
    for (const point of verdict.metrics ?? []) {
      if (point.errorClass === undefined) {
        metrics.addMetric(point.name, point.unit, point.value);
      } else {
        const single = metrics.singleMetric();
        single.addDimension('ErrorClass', point.errorClass);
        single.addMetric(point.name, point.unit, point.value);
      }
    }
    const line = verdict.log;
    // The client id on every line, so "which client is failing?" is one Logs Insights query.
    const clientId = rows?.get(verdict.record.body)?.client_id;
    if (line)
      logger[line.level](line.message, clientId ? { ...line.fields, clientId } : line.fields);
  }
}

/** The guarded moves of some verdicts, for one `applyTransitions` statement. */
export function transitionsOf(verdicts: readonly Verdict[]): Transition[] {
  return verdicts.flatMap((v) => (v.transition ? [v.transition] : []));
}
