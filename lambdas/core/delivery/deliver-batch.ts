/**
 * The worker's rules for one SQS batch, as six stages in `pipeline/`: triage what the stored rows
 * already settle, admit through the gates, claim (`sending`) before calling Meta, send in parallel,
 * record every outcome in one statement, and feed back to the queue what must wait or be retried.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { Kysely } from 'kysely';
import type { Database } from '#core/db/schema.ts';
import type { BackoffPolicy } from '#core/delivery/backoff.ts';
import type { DeliveryGates } from '#core/delivery/delivery-gates.ts';
import { admit } from '#core/delivery/pipeline/admit.ts';
import { keepBooks } from '#core/delivery/pipeline/bookkeeping.ts';
import { claim } from '#core/delivery/pipeline/claim.ts';
import { loadRows, notificationIds } from '#core/delivery/pipeline/load.ts';
import { feedBackToQueue } from '#core/delivery/pipeline/queue-feedback.ts';
import { recordSend } from '#core/delivery/pipeline/record.ts';
import { sendAll } from '#core/delivery/pipeline/send.ts';
import { reclaimAfterSeconds, triage } from '#core/delivery/pipeline/triage.ts';
import {
  announce,
  type DeliveryRecord,
  type RecordOutcome,
  transitionsOf,
} from '#core/delivery/pipeline/verdict.ts';
import { applyTransitions } from '#core/notifications/transitions.ts';
import { Metric } from '#core/platform/metric-names.ts';
import type { GraphClient, SendResult } from '#core/whatsapp/graph-client.ts';

export { outboundMessage } from '#core/delivery/pipeline/send.ts';
export type { DeliveryRecord, RecordOutcome, SendResult };

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
  /**
   * Seconds a dead worker's `sending` claim waits for Meta's status webhook, beyond the worker's
   * lifetime, before the row is sent again (CLAIM_GRACE_SECONDS; default DEFAULT_CLAIM_GRACE_SECONDS).
   */
  claimGraceSeconds?: number;
  /**
   * The WABA whose template registry triage reads: a template no longer APPROVED fails unsent,
   * and a MARKETING one is held from a recipient who stopped marketing. None: neither check.
   */
  wabaId?: string;
}

export interface BatchResult {
  batchItemFailures: { itemIdentifier: string }[];
  outcomes: Map<string, RecordOutcome>;
}

export async function deliverBatch(
  deps: DeliveryDeps,
  records: readonly DeliveryRecord[],
): Promise<BatchResult> {
  const now = deps.now();
  const reclaimAfter = reclaimAfterSeconds(deps.claimGraceSeconds);

  // 1. Triage: what the rows, read in one query, settle on their own (a redelivery sends nothing).
  const rows = await loadRows(deps.db, notificationIds(records), deps.wabaId);
  const triaged = triage(records, rows, now, reclaimAfter);
  announce(deps, triaged.settled, rows);

  // 2. Admit: rollout, panic mode and rate limits decide for the rest.
  const admission = await admit(deps.gates, triaged.candidates, now);
  announce(deps, admission.settled, rows);
  // Opt-outs, rollout skips and parked rows move together, once the gates have spoken: one statement.
  await applyTransitions(deps.db, transitionsOf([...triaged.settled, ...admission.settled]));

  // 3. Claim: `sending` is written before the call, so a redelivery cannot send twice.
  const claimed = await claim(
    deps.db,
    admission.admitted,
    deps.senderId,
    reclaimAfter,
    deps.wabaId,
  );

  // 4. Send, all in parallel.
  const sent = await sendAll(deps.whatsapp, claimed.won);

  // 5. Record: each result becomes a transition, an outcome and, for a retry, a backoff.
  const policy = { now, backoff: deps.backoff, random: deps.random };
  const recorded = sent.map((s) => recordSend(s, policy));
  announce(deps, recorded, rows);
  // Recording the outcomes is the step that must not be lost: if it throws, the whole batch is
  // retried and the claims' age decides when a resend is safe.
  await applyTransitions(deps.db, transitionsOf(recorded));
  const verdicts = [...triaged.settled, ...admission.settled, ...claimed.lost, ...recorded];
  await keepBooks(deps, { recorded, lost: claimed.lost, verdicts }, now);

  // 6. Queue feedback: re-queue what waits, hide retries for their backoff, report what stays.
  const batchItemFailures = await feedBackToQueue(deps, records, verdicts);
  return {
    batchItemFailures,
    outcomes: new Map(verdicts.map((v) => [v.record.messageId, v.outcome])),
  };
}

/** Counts a failed notification by error class (the send here, a `failed` status in the webhook). */
export function addClassMetric(metrics: Metrics, errorClass: string) {
  const single = metrics.singleMetric();
  single.addDimension('ErrorClass', errorClass);
  single.addMetric(Metric.NotificationsFailedByClass, MetricUnit.Count, 1);
}
