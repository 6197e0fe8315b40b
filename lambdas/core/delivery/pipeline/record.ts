/**
 * The record stage, pure: turns one send result into the row's transition, the record's outcome
 * and, for a retry, its backoff, following the error-class policy (DESIGN §4); with the report the
 * circuit counts and the log line and metrics the alarms read.
 */
import { type BackoffPolicy, nextBackoffDelay } from '#core/delivery/backoff.ts';
import type { SendReport } from '#core/delivery/delivery-gates.ts';
import { MAX_CIRCUIT_OPENS_PER_NOTIFICATION } from '#core/delivery/panic-mode.ts';
import { ERROR_CLASS_POLICY, type ErrorClass } from '#core/model/error-class.ts';
import type { Transition } from '#core/notifications/transitions.ts';
import { Metric } from '#core/platform/metric-names.ts';
import type { GraphFailureResult } from '#core/whatsapp/graph-client.ts';
import type { Sent } from './send.ts';
import { infoLine, type MetricPoint, type Verdict } from './verdict.ts';

/** Meta's pair window is about 6 s; a recipient hit with 131056 waits at least this long. */
export const PAIR_WINDOW_SECONDS = 6;

export interface RecordPolicy {
  now: Date;
  backoff: BackoffPolicy;
  random: () => number;
}

export interface Recorded extends Verdict {
  transition: Transition;
  /** What the circuit is told about this send. */
  report: SendReport;
  /** Meta's message id, to apply the statuses that reached the webhook before this record. */
  wamid?: string;
  /** A recipient Meta says has opted out (131050), for the opt-out list. Never logged. */
  optOutRecipient?: string;
}

export function recordSend({ record, row, attempt, result }: Sent, policy: RecordPolicy): Recorded {
  const signals: MetricPoint[] = [
    { name: Metric.GraphApiLatency, unit: 'Milliseconds', value: result.latencyMs },
    { name: Metric.WhatsAppSendAttempts, unit: 'Count', value: 1 },
  ];
  if (result.ok) {
    return {
      record,
      outcome: 'sent',
      transition: {
        id: row.id,
        to: 'sent',
        from: ['sending'],
        wamid: result.wamid,
        reason: result.messageStatus === 'accepted' ? null : result.messageStatus,
      },
      report: { id: row.id, ok: true },
      wamid: result.wamid,
      metrics: [...signals, { name: Metric.NotificationsSent, unit: 'Count', value: 1 }],
      log: infoLine(record, 'sent', { attempt, wamid: result.wamid }),
    };
  }
  const { errorClass } = result;
  const failure = {
    record,
    report: { id: row.id, ok: false, errorClass },
    metrics: [...signals, ...failureSignals(result)],
  };
  const error = {
    errorClass,
    errorCode: result.code ?? null,
    errorMessage: result.message.slice(0, 300),
  };
  const fields = {
    requestId: record.requestId,
    notificationId: row.id,
    errorClass,
    errorCode: result.code,
  };
  // A row that has parked itself for an auth or account block as often as allowed fails instead:
  // a probe that passes while Meta keeps refusing this message must not make a loop of it.
  const spent =
    ERROR_CLASS_POLICY[errorClass].action === 'open_circuit' &&
    row.circuit_opens >= MAX_CIRCUIT_OPENS_PER_NOTIFICATION;
  switch (spent ? 'fail' : ERROR_CLASS_POLICY[errorClass].action) {
    case 'fail':
      return {
        ...failure,
        ...(spent ? { report: { ...failure.report, opensCircuit: false } } : {}),
        outcome: 'failed',
        transition: {
          id: row.id,
          to: 'failed',
          from: ['sending'],
          ...error,
          ...(spent
            ? {
                reason: `parked ${row.circuit_opens} times for ${errorClass}; failed instead of opening the circuit again`,
              }
            : {}),
        },
        metrics: [
          ...failure.metrics,
          { name: Metric.NotificationsFailed, unit: 'Count', value: 1 },
          { name: Metric.NotificationsFailedByClass, unit: 'Count', value: 1, errorClass },
        ],
        ...(errorClass === 'opted_out' ? { optOutRecipient: row.recipient } : {}),
        log: {
          level: 'warn',
          message: 'send failed permanently',
          fields: {
            ...fields,
            ...(spent ? { circuitOpens: row.circuit_opens } : {}),
            ...(errorClass === 'outside_window'
              ? {
                  hint: "free text is only delivered within 24 h of the user's last message; send a template",
                }
              : {}),
          },
        },
      };
    case 'open_circuit':
      // Every send from this sender would fail the same way: park the row instead of burning it.
      return {
        ...failure,
        outcome: 'deferred',
        transition: {
          id: row.id,
          to: 'deferred',
          from: ['sending'],
          reason: 'circuit_open',
          ...error,
        },
        log: {
          level: 'error',
          message: 'sender is blocked or unauthorised; notification deferred',
          fields,
        },
      };
    case 'retry': {
      const receive = Math.max(record.receiveCount, 1);
      const delay = retryDelay(errorClass, receive, policy);
      return {
        ...failure,
        outcome: 'retry',
        transition: {
          id: row.id,
          to: 'queued',
          from: ['sending'],
          ...error,
          nextAttemptAt: new Date(policy.now.getTime() + delay * 1000),
        },
        retryAfterSeconds: delay,
        metrics: [...failure.metrics, { name: Metric.DeliveryRetried, unit: 'Count', value: 1 }],
        log: {
          level: 'warn',
          message: 'send failed; will retry',
          fields: { ...fields, attempt: receive, retryInSeconds: delay },
        },
      };
    }
  }
}

/** Full-jitter backoff on the queue's receive count; a pair-rate hit outwaits Meta's pair window. */
function retryDelay(errorClass: ErrorClass, receive: number, policy: RecordPolicy): number {
  const delay = nextBackoffDelay(receive, policy.backoff, policy.random);
  return errorClass === 'pair_rate_limited' ? Math.max(delay, PAIR_WINDOW_SECONDS) : delay;
}

/** What a failed call tells the alarms, beyond the failure itself. */
function failureSignals({ errorClass, httpStatus }: GraphFailureResult): MetricPoint[] {
  const points: MetricPoint[] = [];
  if (errorClass === 'rate_limited' || errorClass === 'pair_rate_limited' || httpStatus === 429) {
    points.push({ name: Metric.WhatsAppRateLimited, unit: 'Count', value: 1 });
  }
  if (errorClass === 'auth')
    points.push({ name: Metric.WhatsAppAuthFailures, unit: 'Count', value: 1 });
  if (errorClass === 'template')
    points.push({ name: Metric.TemplateFailures, unit: 'Count', value: 1 });
  // Meta's side failed, not the message: what the WhatsApp API error-rate alarms count.
  if (ERROR_CLASS_POLICY[errorClass].action !== 'fail') {
    points.push(
      { name: Metric.WhatsAppApiErrors, unit: 'Count', value: 1 },
      { name: Metric.WhatsAppApiErrorsByClass, unit: 'Count', value: 1, errorClass },
    );
  }
  return points;
}
