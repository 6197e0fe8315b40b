/**
 * The record stage: every send result, one row per error class, to the row's transition, the
 * record's outcome and backoff, the circuit's report and the log line and metrics the alarms read.
 */
import { describe, expect, it } from 'vitest';
import {
  PAIR_WINDOW_SECONDS,
  type RecordPolicy,
  recordSend,
} from '#core/delivery/pipeline/record.ts';
import type { MetricPoint } from '#core/delivery/pipeline/verdict.ts';
import { ERROR_CLASSES, type ErrorClass } from '#core/model/error-class.ts';
import { Metric } from '#core/platform/metric-names.ts';
import type { GraphFailureResult, SendResult } from '#core/whatsapp/graph-client.ts';
import { NOW, RECIPIENT, sent } from './pipeline-fixtures.ts';

/** Base 5 s, a draw of 0.5: the first receive waits floor(0.5 · min(300, 5 · 2)) = 5 s. */
const POLICY: RecordPolicy = {
  now: NOW,
  backoff: { baseSeconds: 5, capSeconds: 300 },
  random: () => 0.5,
};
const FIRST_BACKOFF = 5;

function failure(
  errorClass: ErrorClass,
  code: number | undefined,
  httpStatus: number,
): GraphFailureResult {
  return {
    ok: false,
    errorClass,
    ...(code === undefined ? {} : { code }),
    httpStatus,
    message: `(#${code}) what Meta said`,
    latencyMs: 42,
  };
}

const { GraphApiLatency: LATENCY, WhatsAppSendAttempts: ATTEMPTS } = Metric;
const API_ERROR = (errorClass: ErrorClass) => [
  Metric.WhatsAppApiErrors,
  `${Metric.WhatsAppApiErrorsByClass}{${errorClass}}`,
];
const FAILED = (errorClass: ErrorClass) => [
  Metric.NotificationsFailed,
  `${Metric.NotificationsFailedByClass}{${errorClass}}`,
];

interface Case {
  name: string;
  result: SendResult;
  outcome: string;
  to: string;
  reason?: string | null;
  retryAfterSeconds?: number;
  /** Metric names in order; `Name{class}` for one published with an ErrorClass dimension. */
  metrics: string[];
  log: [level: string, message: string];
}

const cases: Case[] = [
  {
    name: 'records an accepted send as sent',
    result: { ok: true, wamid: 'wamid.A', messageStatus: 'accepted', latencyMs: 42 },
    outcome: 'sent',
    to: 'sent',
    reason: null,
    metrics: [LATENCY, ATTEMPTS, Metric.NotificationsSent],
    log: ['info', 'sent'],
  },
  {
    name: 'records a send Meta holds for quality assessment as sent, with that as its reason',
    result: {
      ok: true,
      wamid: 'wamid.B',
      messageStatus: 'held_for_quality_assessment',
      latencyMs: 42,
    },
    outcome: 'sent',
    to: 'sent',
    reason: 'held_for_quality_assessment',
    metrics: [LATENCY, ATTEMPTS, Metric.NotificationsSent],
    log: ['info', 'sent'],
  },
  {
    name: 'retries rate_limited with backoff and counts it as throttling',
    result: failure('rate_limited', 130429, 400),
    outcome: 'retry',
    to: 'queued',
    retryAfterSeconds: FIRST_BACKOFF,
    metrics: [
      LATENCY,
      ATTEMPTS,
      Metric.WhatsAppRateLimited,
      ...API_ERROR('rate_limited'),
      Metric.DeliveryRetried,
    ],
    log: ['warn', 'send failed; will retry'],
  },
  {
    name: "retries pair_rate_limited no sooner than Meta's pair window",
    result: failure('pair_rate_limited', 131056, 400),
    outcome: 'retry',
    to: 'queued',
    retryAfterSeconds: PAIR_WINDOW_SECONDS,
    metrics: [
      LATENCY,
      ATTEMPTS,
      Metric.WhatsAppRateLimited,
      ...API_ERROR('pair_rate_limited'),
      Metric.DeliveryRetried,
    ],
    log: ['warn', 'send failed; will retry'],
  },
  {
    name: 'retries upstream with backoff as an API error, not as throttling',
    result: failure('upstream', undefined, 500),
    outcome: 'retry',
    to: 'queued',
    retryAfterSeconds: FIRST_BACKOFF,
    metrics: [LATENCY, ATTEMPTS, ...API_ERROR('upstream'), Metric.DeliveryRetried],
    log: ['warn', 'send failed; will retry'],
  },
  {
    name: 'counts an HTTP 429 as throttling whatever its class',
    result: failure('upstream', 131000, 429),
    outcome: 'retry',
    to: 'queued',
    retryAfterSeconds: FIRST_BACKOFF,
    metrics: [
      LATENCY,
      ATTEMPTS,
      Metric.WhatsAppRateLimited,
      ...API_ERROR('upstream'),
      Metric.DeliveryRetried,
    ],
    log: ['warn', 'send failed; will retry'],
  },
  {
    name: 'parks the row as deferred behind the circuit on auth, counted as an auth failure',
    result: failure('auth', 190, 401),
    outcome: 'deferred',
    to: 'deferred',
    reason: 'circuit_open',
    metrics: [LATENCY, ATTEMPTS, Metric.WhatsAppAuthFailures, ...API_ERROR('auth')],
    log: ['error', 'sender is blocked or unauthorised; notification deferred'],
  },
  {
    name: 'parks the row as deferred behind the circuit when the account is blocked',
    result: failure('account_blocked', 368, 400),
    outcome: 'deferred',
    to: 'deferred',
    reason: 'circuit_open',
    metrics: [LATENCY, ATTEMPTS, ...API_ERROR('account_blocked')],
    log: ['error', 'sender is blocked or unauthorised; notification deferred'],
  },
  ...(
    [
      ['invalid_recipient', 131026],
      ['opted_out', 131050],
      ['outside_window', 131047],
      ['invalid_request', 100],
    ] as const
  ).map(
    ([errorClass, code]): Case => ({
      name: `fails ${errorClass} (${code}) for good, counted by class`,
      result: failure(errorClass, code, 400),
      outcome: 'failed',
      to: 'failed',
      metrics: [LATENCY, ATTEMPTS, ...FAILED(errorClass)],
      log: ['warn', 'send failed permanently'],
    }),
  ),
  {
    name: 'fails template for good and counts it for the template alarm',
    result: failure('template', 132001, 404),
    outcome: 'failed',
    to: 'failed',
    metrics: [LATENCY, ATTEMPTS, Metric.TemplateFailures, ...FAILED('template')],
    log: ['warn', 'send failed permanently'],
  },
];

const metricNames = (points: readonly MetricPoint[] | undefined) =>
  (points ?? []).map((m) => (m.errorClass ? `${m.name}{${m.errorClass}}` : m.name));

describe('recordSend', () => {
  it.each(cases)('$name', (c) => {
    // prepare
    const send = sent(c.result);

    // act
    const recorded = recordSend(send, POLICY);

    // assess
    expect(recorded.record).toBe(send.record);
    expect(recorded.outcome).toBe(c.outcome);
    expect(recorded.transition).toMatchObject({ id: send.row.id, to: c.to, from: ['sending'] });
    if (c.reason !== undefined) expect(recorded.transition.reason).toBe(c.reason);
    expect(recorded.retryAfterSeconds).toBe(c.retryAfterSeconds);
    expect(recorded.holdBackSeconds).toBeUndefined();
    expect(metricNames(recorded.metrics)).toEqual(c.metrics);
    expect([recorded.log?.level, recorded.log?.message]).toEqual(c.log);
    expect(JSON.stringify(recorded.log)).not.toContain(RECIPIENT.slice(1));
    if (c.result.ok) {
      expect(recorded.report).toEqual({ id: send.row.id, ok: true });
      expect(recorded.wamid).toBe(c.result.wamid);
      expect(recorded.transition.wamid).toBe(c.result.wamid);
    } else {
      const { errorClass, code } = c.result;
      expect(recorded.report).toEqual({ id: send.row.id, ok: false, errorClass });
      expect(recorded.wamid).toBeUndefined();
      expect(recorded.transition).toMatchObject({
        errorClass,
        errorCode: code ?? null,
        errorMessage: c.result.message,
      });
      expect(recorded.log?.fields).toMatchObject({
        requestId: send.record.requestId,
        notificationId: send.row.id,
        errorClass,
        errorCode: code,
      });
    }
  });

  it('has a row for every error class', () => {
    const covered = new Set(cases.flatMap((c) => (c.result.ok ? [] : [c.result.errorClass])));
    expect([...covered].sort()).toEqual([...ERROR_CLASSES].sort());
  });

  it('logs a sent notification with its claim attempt and wamid, and times the call', () => {
    // prepare
    const send = sent(
      { ok: true, wamid: 'wamid.C', messageStatus: 'accepted', latencyMs: 87 },
      { attempt: 3 },
    );

    // act
    const recorded = recordSend(send, POLICY);

    // assess
    expect(recorded.log?.fields).toEqual({
      requestId: send.record.requestId,
      messageId: send.record.messageId,
      notificationId: send.record.body,
      attempt: 3,
      wamid: 'wamid.C',
    });
    expect(recorded.metrics?.[0]).toEqual({
      name: Metric.GraphApiLatency,
      unit: 'Milliseconds',
      value: 87,
    });
  });

  it("backs off on the queue's receive count and stores when the retry is due", () => {
    // prepare: fourth receive → window min(300, 5 · 2^4) = 80 s, half of it drawn
    const send = sent(failure('upstream', undefined, 503), { attempt: 9, receiveCount: 4 });

    // act
    const recorded = recordSend(send, POLICY);

    // assess
    expect(recorded.retryAfterSeconds).toBe(40);
    expect(recorded.transition.nextAttemptAt).toEqual(new Date(NOW.getTime() + 40_000));
    expect(recorded.log?.fields).toMatchObject({ attempt: 4, retryInSeconds: 40 });
  });

  it('counts a first receive reported as zero as attempt 1', () => {
    const send = sent(failure('upstream', undefined, 503), { receiveCount: 0 });
    expect(recordSend(send, POLICY).log?.fields).toMatchObject({ attempt: 1 });
  });

  it('keeps a pair-rate retry at the backoff when that is longer than the pair window', () => {
    // prepare: fifth receive → window 160 s, half drawn = 80 s
    const send = sent(failure('pair_rate_limited', 131056, 400), { receiveCount: 5 });

    // act / assess
    expect(recordSend(send, POLICY).retryAfterSeconds).toBe(80);
  });

  it('adds the recipient to the opt-outs only when Meta says they opted out', () => {
    // act
    const optedOut = recordSend(sent(failure('opted_out', 131050, 400)), POLICY);
    const invalid = recordSend(sent(failure('invalid_recipient', 131026, 400)), POLICY);

    // assess
    expect(optedOut.optOutRecipient).toBe(RECIPIENT);
    expect(invalid.optOutRecipient).toBeUndefined();
  });

  it('tells the client outside the 24-hour window to send a template', () => {
    const recorded = recordSend(sent(failure('outside_window', 131047, 400)), POLICY);
    expect(recorded.log?.fields.hint).toMatch(/send a template/);
    const other = recordSend(sent(failure('invalid_request', 100, 400)), POLICY);
    expect(other.log?.fields).not.toHaveProperty('hint');
  });

  it("stores at most 300 characters of Meta's message", () => {
    // prepare
    const result = { ...failure('invalid_request', 100, 400), message: 'x'.repeat(1000) };

    // act
    const recorded = recordSend(sent(result), POLICY);

    // assess
    expect(recorded.transition.errorMessage).toBe('x'.repeat(300));
  });
});
