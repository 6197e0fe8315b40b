/**
 * The worker's rules for one SQS batch: load the rows in one query, drop what was already sent,
 * pass the gates, claim (`sending`) before calling Meta, send in parallel, record every outcome in
 * one statement, and hand back the records to retry with their backoff.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { ChangeMessageVisibilityBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { type Kysely, sql } from 'kysely';
import type { Database, NotificationRow } from '#core/db/schema.ts';
import {
  type BackoffPolicy,
  MAX_VISIBILITY_SECONDS,
  nextBackoffDelay,
} from '#core/delivery/backoff.ts';
import type { DeliveryGates, GateDecision, SendReport } from '#core/delivery/delivery-gates.ts';
import { ERROR_CLASS_POLICY, type ErrorClass } from '#core/model/error-class.ts';
import { ALREADY_SENT_STATUSES, type NotificationStatus } from '#core/model/lifecycle.ts';
import { applyPendingStatuses } from '#core/notifications/apply-status-update.ts';
import { sendToQueues } from '#core/notifications/enqueue.ts';
import { addOptOut } from '#core/notifications/opt-outs.ts';
import {
  SQS_MAX_DELAY_SECONDS,
  WORKER_TIMEOUT_SECONDS,
} from '#core/notifications/queue-settings.ts';
import { addTallies } from '#core/notifications/tallies.ts';
import { applyTransitions, type Transition } from '#core/notifications/transitions.ts';
import { isUuid } from '#core/platform/ids.ts';
import { Metric } from '#core/platform/metric-names.ts';
import type { GraphClient, OutboundMessage, SendResult } from '#core/whatsapp/graph-client.ts';

export interface DeliveryRecord {
  messageId: string;
  receiptHandle: string;
  body: string;
  receiveCount: number;
  requestId?: string | undefined;
  queueUrl: string;
}

export interface DeliveryDeps {
  db: Kysely<Database>;
  whatsapp: Pick<GraphClient, 'sendMessage'>;
  /** The sending phone number id. */
  senderId: string;
  sqs: SQSClient;
  gates: DeliveryGates;
  backoff: BackoffPolicy;
  now: () => Date;
  random: () => number;
  logger: Logger;
  metrics: Metrics;
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

export interface BatchResult {
  batchItemFailures: { itemIdentifier: string }[];
  outcomes: Map<string, RecordOutcome>;
}

/** Statuses the worker may claim; `sending` only when its claim is older than a worker's life. */
const CLAIMABLE: readonly NotificationStatus[] = ['accepted', 'queued', 'deferred'];
const STALE_CLAIM_SECONDS = WORKER_TIMEOUT_SECONDS + 5;
/** How long a record waits when another worker is sending the same row right now. */
const BUSY_RETRY_SECONDS = 30;
/** Meta's pair window is about 6 s; a recipient hit with 131056 waits at least this long. */
const PAIR_WINDOW_SECONDS = 6;

type Loaded = NotificationRow & { opted_out: boolean };

export async function deliverBatch(
  deps: DeliveryDeps,
  records: readonly DeliveryRecord[],
): Promise<BatchResult> {
  const now = deps.now();
  const outcomes = new Map<string, RecordOutcome>();
  const retryAfter = new Map<string, number>(); // messageId → visibility seconds
  // Records held back without an attempt (rate limits, another worker's claim): they go back on
  // the queue as fresh delayed messages, so waiting never spends a receive toward the DLQ.
  const holdBack = new Map<string, number>(); // messageId → delay seconds
  const log = (record: DeliveryRecord, message: string, extra: Record<string, unknown> = {}) =>
    deps.logger.info(message, {
      requestId: record.requestId,
      messageId: record.messageId,
      notificationId: record.body,
      ...extra,
    });

  const valid = records.filter((record) => {
    if (isUuid(record.body)) return true;
    // Nothing we wrote looks like this; let it reach the DLQ where someone can look at it.
    outcomes.set(record.messageId, 'bad_body');
    deps.logger.error('queue message body is not a notification id', {
      messageId: record.messageId,
      requestId: record.requestId,
    });
    return false;
  });

  const rows = await loadRows(
    deps.db,
    valid.map((r) => r.body),
  );
  const candidates: { record: DeliveryRecord; row: Loaded }[] = [];
  const optedOut: Transition[] = [];
  const seen = new Set<string>();
  for (const record of valid) {
    const row = rows.get(record.body);
    if (!row) {
      outcomes.set(record.messageId, 'missing');
      deps.logger.warn('no notification for queue message', {
        notificationId: record.body,
        requestId: record.requestId,
      });
      continue;
    }
    if (seen.has(row.id)) {
      outcomes.set(record.messageId, 'skipped_duplicate');
      continue;
    }
    seen.add(row.id);
    if (
      (ALREADY_SENT_STATUSES as readonly string[]).includes(row.status) ||
      row.status === 'failed' ||
      row.status === 'skipped'
    ) {
      outcomes.set(record.messageId, 'skipped_duplicate');
      deps.metrics.addMetric(Metric.SkippedDuplicate, MetricUnit.Count, 1);
      log(record, 'already handled; nothing sent', { status: row.status });
      continue;
    }
    if (row.status === 'scheduled') {
      // The scheduler enqueues scheduled rows when they fall due; an early message is dropped.
      outcomes.set(record.messageId, 'skipped');
      continue;
    }
    if (
      row.status === 'sending' &&
      now.getTime() - row.updated_at.getTime() < STALE_CLAIM_SECONDS * 1000
    ) {
      outcomes.set(record.messageId, 'busy');
      holdBack.set(record.messageId, BUSY_RETRY_SECONDS);
      continue;
    }
    if (row.opted_out) {
      optedOut.push({
        id: row.id,
        to: 'skipped',
        from: [...CLAIMABLE, 'sending'],
        reason: 'opted_out',
      });
      outcomes.set(record.messageId, 'skipped');
      deps.metrics.addMetric(Metric.SkippedOptOut, MetricUnit.Count, 1);
      log(record, 'recipient opted out; skipped');
      continue;
    }
    candidates.push({ record, row });
  }
  await applyTransitions(deps.db, optedOut);

  const decisions = await deps.gates.admit(
    candidates.map((c) => c.row),
    now,
  );
  const parked: Transition[] = [];
  const toSend: { record: DeliveryRecord; row: Loaded }[] = [];
  for (const candidate of candidates) {
    const decision: GateDecision = decisions.get(candidate.row.id) ?? { kind: 'send' };
    const { record, row } = candidate;
    switch (decision.kind) {
      case 'send':
        toSend.push(candidate);
        break;
      case 'skip':
        parked.push({
          id: row.id,
          to: 'skipped',
          from: [...CLAIMABLE, 'sending'],
          reason: decision.reason,
        });
        outcomes.set(record.messageId, 'skipped');
        log(record, 'skipped by rollout', { reason: decision.reason });
        break;
      case 'defer':
        parked.push({
          id: row.id,
          to: 'deferred',
          from: [...CLAIMABLE, 'sending'],
          reason: decision.reason,
          nextAttemptAt: decision.until,
        });
        outcomes.set(record.messageId, 'deferred');
        log(record, 'deferred', { reason: decision.reason });
        break;
      case 'delay':
        outcomes.set(record.messageId, 'delayed');
        holdBack.set(record.messageId, Math.ceil(decision.seconds));
        deps.metrics.addMetric(Metric.SkippedRateLimit, MetricUnit.Count, 1);
        log(record, 'held back by rate limits', {
          reason: decision.reason,
          retryInSeconds: decision.seconds,
        });
        break;
    }
  }
  await applyTransitions(deps.db, parked);

  // Claim before the call: a crash after this point leaves `sending`, which a redelivery only
  // re-sends once the claim is older than a worker can live.
  const claimed = await claimRows(
    deps.db,
    toSend.map((c) => c.row.id),
    deps.senderId,
  );
  const lost = toSend.filter((c) => !claimed.has(c.row.id));
  for (const c of lost) {
    outcomes.set(c.record.messageId, 'busy');
    holdBack.set(c.record.messageId, BUSY_RETRY_SECONDS);
  }
  const sends = toSend.filter((c) => claimed.has(c.row.id));

  const results = await Promise.all(
    sends.map(async (c) => ({
      ...c,
      result: await deps.whatsapp.sendMessage(outboundMessage(c.row)),
    })),
  );

  const recorded: Transition[] = [];
  const reports: SendReport[] = [];
  const newOptOuts: string[] = [];
  const sentWamids: string[] = [];
  for (const { record, row, result } of results) {
    deps.metrics.addMetric(Metric.GraphApiLatency, MetricUnit.Milliseconds, result.latencyMs);
    deps.metrics.addMetric(Metric.WhatsAppSendAttempts, MetricUnit.Count, 1);
    if (result.ok) {
      recorded.push({
        id: row.id,
        to: 'sent',
        from: ['sending'],
        wamid: result.wamid,
        reason: result.messageStatus === 'accepted' ? null : result.messageStatus,
      });
      reports.push({ id: row.id, ok: true });
      sentWamids.push(result.wamid);
      outcomes.set(record.messageId, 'sent');
      deps.metrics.addMetric(Metric.NotificationsSent, MetricUnit.Count, 1);
      log(record, 'sent', { attempt: claimed.get(row.id), wamid: result.wamid });
      continue;
    }
    const errorClass = result.errorClass;
    reports.push({ id: row.id, ok: false, errorClass });
    countFailureSignals(deps.metrics, errorClass, result.httpStatus);
    const error = {
      errorClass,
      errorCode: result.code ?? null,
      errorMessage: result.message.slice(0, 300),
    };
    const action = ERROR_CLASS_POLICY[errorClass].action;
    if (action === 'fail') {
      recorded.push({ id: row.id, to: 'failed', from: ['sending'], ...error });
      outcomes.set(record.messageId, 'failed');
      deps.metrics.addMetric(Metric.NotificationsFailed, MetricUnit.Count, 1);
      addClassMetric(deps.metrics, errorClass);
      if (errorClass === 'opted_out') newOptOuts.push(row.recipient);
      deps.logger.warn('send failed permanently', {
        requestId: record.requestId,
        notificationId: row.id,
        errorClass,
        errorCode: result.code,
        ...(errorClass === 'outside_window'
          ? {
              hint: "free text is only delivered within 24 h of the user's last message; send a template",
            }
          : {}),
      });
    } else if (action === 'open_circuit') {
      // Every send from this sender would fail the same way: park the row instead of burning it.
      recorded.push({
        id: row.id,
        to: 'deferred',
        from: ['sending'],
        reason: 'circuit_open',
        ...error,
      });
      outcomes.set(record.messageId, 'deferred');
      deps.logger.error('sender is blocked or unauthorised; notification deferred', {
        requestId: record.requestId,
        notificationId: row.id,
        errorClass,
        errorCode: result.code,
      });
    } else {
      const attempt = Math.max(record.receiveCount, 1);
      let delay = nextBackoffDelay(attempt, deps.backoff, deps.random);
      if (errorClass === 'pair_rate_limited') delay = Math.max(delay, PAIR_WINDOW_SECONDS);
      recorded.push({
        id: row.id,
        to: 'queued',
        from: ['sending'],
        ...error,
        nextAttemptAt: new Date(now.getTime() + delay * 1000),
      });
      outcomes.set(record.messageId, 'retry');
      retryAfter.set(record.messageId, delay);
      deps.metrics.addMetric(Metric.DeliveryRetried, MetricUnit.Count, 1);
      deps.logger.warn('send failed; will retry', {
        requestId: record.requestId,
        notificationId: row.id,
        errorClass,
        errorCode: result.code,
        attempt,
        retryInSeconds: delay,
      });
    }
  }
  // Recording the outcomes is the step that must not be lost: if it throws, the whole batch is
  // retried and the claims' age decides when a resend is safe.
  await applyTransitions(deps.db, recorded);
  let duplicates = 0;
  let delayed = 0;
  for (const outcome of outcomes.values()) {
    if (outcome === 'skipped_duplicate') duplicates += 1;
    if (outcome === 'delayed') delayed += 1;
  }
  // What follows is bookkeeping with its own backstops (the scheduler re-applies pending statuses,
  // the next batch counts toward the circuit): a failure here is logged, it does not undo sends.
  await Promise.all([
    applyPendingStatuses(deps.db, sentWamids),
    ...newOptOuts.map((recipient) => addOptOut(deps.db, recipient, 'meta_131050')),
    deps.gates.report(reports, now),
    deps.gates.release(
      lost.map((c) => c.row),
      now,
    ),
    addTallies(deps.db, { skipped_duplicate: duplicates, skipped_rate_limit: delayed }, now),
  ]).catch((error: unknown) =>
    deps.logger.error('post-send bookkeeping failed', {
      error: error instanceof Error ? error.name : String(error),
    }),
  );

  const requeued = await requeue(deps, records, holdBack);
  for (const [messageId, seconds] of holdBack) {
    // Not back on the queue: keep the message itself, hidden for the delay, as a last resort.
    if (!requeued.has(messageId))
      retryAfter.set(messageId, Math.min(MAX_VISIBILITY_SECONDS, seconds));
  }
  await changeVisibility(deps.sqs, records, retryAfter, deps.logger);
  const batchItemFailures = records
    .filter((r) => {
      const outcome = outcomes.get(r.messageId);
      if (outcome === 'delayed' || outcome === 'busy') return !requeued.has(r.messageId);
      return outcome === 'retry' || outcome === 'bad_body';
    })
    .map((r) => ({ itemIdentifier: r.messageId }));
  return { batchItemFailures, outcomes };
}

async function loadRows(
  db: Kysely<Database>,
  ids: readonly string[],
): Promise<Map<string, Loaded>> {
  if (ids.length === 0) return new Map();
  const rows = await db
    .selectFrom('notifications as n')
    .selectAll('n')
    .select(
      sql<boolean>`exists (select 1 from opt_outs o where o.recipient = n.recipient)`.as(
        'opted_out',
      ),
    )
    .where('n.id', 'in', [...new Set(ids)])
    .execute();
  return new Map(rows.map((r) => [r.id, r]));
}

/** Moves rows to `sending` and counts the attempt; returns id → attempt number for those it won. */
async function claimRows(
  db: Kysely<Database>,
  ids: readonly string[],
  senderId: string,
): Promise<Map<string, number>> {
  if (ids.length === 0) return new Map();
  const rows = await db
    .updateTable('notifications')
    .set((eb) => ({
      status: 'sending',
      attempts: eb('attempts', '+', 1),
      sender_id: senderId,
      updated_at: sql`now()`,
    }))
    .where('id', 'in', ids)
    .where((eb) =>
      eb.or([
        eb('status', 'in', CLAIMABLE),
        eb.and([
          eb('status', '=', 'sending'),
          eb('updated_at', '<', sql<Date>`now() - make_interval(secs => ${STALE_CLAIM_SECONDS})`),
        ]),
      ]),
    )
    .returning(['id', 'attempts'])
    .execute();
  return new Map(rows.map((r) => [r.id, r.attempts]));
}

export function outboundMessage(row: NotificationRow): OutboundMessage {
  if (row.message_type === 'template') {
    const template = row.message as { name: string; language: string; components?: unknown[] };
    return { kind: 'template', to: row.recipient, template };
  }
  const text = row.message as { body: string; previewUrl?: boolean };
  return { kind: 'text', to: row.recipient, text };
}

function countFailureSignals(metrics: Metrics, errorClass: ErrorClass, httpStatus?: number) {
  if (errorClass === 'rate_limited' || errorClass === 'pair_rate_limited' || httpStatus === 429) {
    metrics.addMetric(Metric.WhatsAppRateLimited, MetricUnit.Count, 1);
  }
  if (errorClass === 'auth') metrics.addMetric(Metric.WhatsAppAuthFailures, MetricUnit.Count, 1);
  if (errorClass === 'template') metrics.addMetric(Metric.TemplateFailures, MetricUnit.Count, 1);
  // Meta's side failed, not the message: what the WhatsApp API error-rate alarms count.
  if (ERROR_CLASS_POLICY[errorClass].action !== 'fail') {
    metrics.addMetric(Metric.WhatsAppApiErrors, MetricUnit.Count, 1);
    const single = metrics.singleMetric();
    single.addDimension('ErrorClass', errorClass);
    single.addMetric(Metric.WhatsAppApiErrorsByClass, MetricUnit.Count, 1);
  }
}

export function addClassMetric(metrics: Metrics, errorClass: string) {
  const single = metrics.singleMetric();
  single.addDimension('ErrorClass', errorClass);
  single.addMetric(Metric.NotificationsFailedByClass, MetricUnit.Count, 1);
}

/**
 * Puts held-back records back on their queue as new messages delayed by their wait; returns the
 * message ids that made it (the originals are then deleted). If the send succeeds and the delete
 * does not, two messages carry one id, and the second finds the row sent or claimed.
 */
async function requeue(
  deps: DeliveryDeps,
  records: readonly DeliveryRecord[],
  holdBack: Map<string, number>,
): Promise<Set<string>> {
  const held = records.filter((r) => holdBack.has(r.messageId));
  if (held.length === 0) return new Set();
  const failed = await sendToQueues(
    deps.sqs,
    held.map((record) => ({
      queueUrl: record.queueUrl,
      body: record.body,
      requestId: record.requestId,
      delaySeconds: Math.min(SQS_MAX_DELAY_SECONDS, Math.max(1, holdBack.get(record.messageId)!)),
    })),
  );
  if (failed.size > 0) {
    deps.logger.warn('could not re-queue held-back records; they stay on the queue', {
      count: failed.size,
    });
  }
  return new Set(held.filter((_, index) => !failed.has(index)).map((r) => r.messageId));
}

async function changeVisibility(
  sqs: SQSClient,
  records: readonly DeliveryRecord[],
  retryAfter: Map<string, number>,
  logger: Logger,
) {
  const byQueue = new Map<
    string,
    { Id: string; ReceiptHandle: string; VisibilityTimeout: number }[]
  >();
  for (const record of records) {
    const seconds = retryAfter.get(record.messageId);
    if (seconds === undefined) continue;
    const entries = byQueue.get(record.queueUrl) ?? [];
    entries.push({
      Id: String(entries.length),
      ReceiptHandle: record.receiptHandle,
      VisibilityTimeout: seconds,
    });
    byQueue.set(record.queueUrl, entries);
  }
  await Promise.all(
    [...byQueue].flatMap(([queueUrl, entries]) => {
      const calls = [];
      for (let i = 0; i < entries.length; i += 10) {
        calls.push(
          sqs
            .send(
              new ChangeMessageVisibilityBatchCommand({
                QueueUrl: queueUrl,
                Entries: entries.slice(i, i + 10),
              }),
            )
            .catch((error: unknown) =>
              // The record is still reported failed, so it comes back after the queue's own visibility timeout.
              logger.warn('could not set the retry delay', {
                error: error instanceof Error ? error.name : String(error),
              }),
            ),
        );
      }
      return calls;
    }),
  );
}

export type { SendResult };
