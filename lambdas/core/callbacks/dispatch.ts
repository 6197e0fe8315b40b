/**
 * The callback dispatcher: claims due deliveries from the outbox, posts each signed body to its
 * endpoint, records every attempt, schedules a retry with full-jitter backoff until the retry
 * window closes, and disables an endpoint that keeps failing. It runs apart from sending (its own
 * function, queue and database role), so a slow or dead endpoint only ever slows this loop.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { type Kysely, sql } from 'kysely';
import { callbackEventBody } from '#core/callbacks/event-body.ts';
import type { PostCallback, PostResult } from '#core/callbacks/post-callback.ts';
import { callbackHeaders } from '#core/callbacks/signature.ts';
import type { CallbackEventRow, Database } from '#core/db/schema.ts';
import { writeAudit } from '#core/notifications/audit.ts';
import { Metric } from '#core/platform/metric-names.ts';

export interface DispatchSettings {
  /** Deliveries claimed per round. */
  batchSize: number;
  /** Posts in flight at once (deliveries of one notification to one endpoint go one by one). */
  concurrency: number;
  /**
   * Deliveries of one endpoint claimed per round at most (default: half the concurrency, rounded
   * up), so an endpoint that hangs until the timeout holds at most that many posts and the rest of
   * the round goes to other clients' endpoints instead of waiting behind it.
   */
  perEndpoint?: number;
  /** How long a claim holds a delivery; past it, a dispatcher that died has lost its claim. */
  leaseMs: number;
  /** Full jitter: the delay before retry n is random(0, min(cap, base · 2^n)). */
  backoffBaseMs: number;
  backoffCapMs: number;
  /** A delivery is retried until it is this old, then marked failed. */
  retryForMs: number;
  /** An endpoint is disabled after this many failed posts in a row... */
  disableAfterFailures: number;
  /** ...that have gone on for at least this long (a short outage with many events does not count). */
  disableAfterMs: number;
}

const HOUR = 3_600_000;

/** The documented numbers (README "Status callbacks"); tests shrink the times. */
export const DEFAULT_DISPATCH_SETTINGS: DispatchSettings = {
  batchSize: 50,
  concurrency: 10,
  leaseMs: 60_000,
  backoffBaseMs: 30_000,
  backoffCapMs: HOUR,
  retryForMs: 24 * HOUR,
  disableAfterFailures: 50,
  disableAfterMs: 24 * HOUR,
};

export interface DispatchDeps {
  db: Kysely<Database>;
  post: PostCallback;
  now: () => Date;
  random: () => number;
  settings: DispatchSettings;
  logger: Logger;
  metrics?: Metrics;
}

export interface DispatchSummary {
  claimed: number;
  delivered: number;
  failed: number;
  gaveUp: number;
  disabled: number;
}

interface ClaimedDelivery {
  id: string;
  attempts: number;
  created_at: Date;
  endpoint_id: string;
  notification_id: string;
  sequence: number;
  url: string;
  secret: string;
  previous_secret: string | null;
  previous_secret_expires_at: Date | null;
  event: CallbackEventRow;
}

/** `random(0, min(cap, base · 2^attempt))` in milliseconds; `attempt` counts from 1. */
export function callbackRetryDelayMs(
  attempt: number,
  settings: Pick<DispatchSettings, 'backoffBaseMs' | 'backoffCapMs'>,
  random: () => number,
): number {
  const ceiling = Math.min(
    settings.backoffCapMs,
    settings.backoffBaseMs * 2 ** Math.min(attempt, 30),
  );
  return Math.floor(random() * ceiling);
}

/**
 * Takes up to `limit` due deliveries of enabled endpoints. The claim pushes next_attempt_at one
 * lease ahead instead of setting a separate "in flight" state: a dispatcher killed mid-batch needs
 * no clean-up, its rows simply fall due again. SKIP LOCKED lets two dispatchers share the table.
 */
export async function claimDueDeliveries(
  db: Kysely<Database>,
  limit: number,
  leaseMs: number,
  perEndpoint: number = limit,
): Promise<ClaimedDelivery[]> {
  // The oldest due deliveries, at most `perEndpoint` of each endpoint; the window looks at a
  // bounded slice of the due ones so a large backlog does not make every claim sort all of it.
  const { rows } = await sql<Omit<ClaimedDelivery, 'event'> & { event_id: string }>`
    with candidates as (
      select d.id, d.endpoint_id, d.next_attempt_at, d.notification_id, d.sequence
      from callback_deliveries d
      join callback_endpoints e on e.id = d.endpoint_id and e.disabled_at is null
      where d.status = 'pending' and d.next_attempt_at <= now()
      order by d.next_attempt_at
      limit ${limit * 20}
    ), ranked as (
      select c.*, row_number() over (
        partition by c.endpoint_id order by c.next_attempt_at, c.notification_id, c.sequence) as n
      from candidates c
    ), due as (
      select d.id from callback_deliveries d
      join ranked r on r.id = d.id
      where r.n <= ${perEndpoint} and d.status = 'pending' and d.next_attempt_at <= now()
      order by r.next_attempt_at, r.notification_id, r.sequence
      limit ${limit}
      for update of d skip locked
    )
    update callback_deliveries d
    set next_attempt_at = now() + ${leaseMs} * interval '1 millisecond', attempts = d.attempts + 1
    from due, callback_endpoints e
    where d.id = due.id and e.id = d.endpoint_id
    returning d.id, d.attempts, d.created_at, d.endpoint_id, d.notification_id, d.sequence, d.event_id,
      e.url, e.secret, e.previous_secret, e.previous_secret_expires_at`.execute(db);
  if (rows.length === 0) return [];
  const events = await db
    .selectFrom('callback_events')
    .selectAll()
    .where(
      'id',
      'in',
      rows.map((r) => r.event_id),
    )
    .execute();
  const byId = new Map(events.map((e) => [e.id, e]));
  return rows.map((r) => ({ ...r, event: byId.get(r.event_id)! }));
}

/** The secrets that sign now: the current one, and the previous one while its grace lasts. */
export function signingSecrets(
  endpoint: Pick<ClaimedDelivery, 'secret' | 'previous_secret' | 'previous_secret_expires_at'>,
  now: Date,
): string[] {
  const inGrace =
    endpoint.previous_secret &&
    endpoint.previous_secret_expires_at &&
    endpoint.previous_secret_expires_at.getTime() > now.getTime();
  return inGrace ? [endpoint.secret, endpoint.previous_secret!] : [endpoint.secret];
}

/** One round: claim, post (in sequence order per notification and endpoint), record. */
export async function dispatchDueCallbacks(deps: DispatchDeps): Promise<DispatchSummary> {
  const { settings } = deps;
  const claimed = await claimDueDeliveries(
    deps.db,
    settings.batchSize,
    settings.leaseMs,
    settings.perEndpoint ?? Math.ceil(Math.max(1, settings.concurrency) / 2),
  );
  const summary: DispatchSummary = {
    claimed: claimed.length,
    delivered: 0,
    failed: 0,
    gaveUp: 0,
    disabled: 0,
  };
  const lanes = new Map<string, ClaimedDelivery[]>();
  for (const delivery of claimed) {
    const key = `${delivery.endpoint_id}/${delivery.notification_id}`;
    lanes.set(key, [...(lanes.get(key) ?? []), delivery]);
  }
  const queue = [...lanes.values()].map((lane) => lane.sort((a, b) => a.sequence - b.sequence));
  const worker = async () => {
    for (let lane = queue.shift(); lane; lane = queue.shift()) {
      for (const delivery of lane) await deliverOne(deps, delivery, summary);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, settings.concurrency) }, worker));
  return summary;
}

async function deliverOne(
  deps: DispatchDeps,
  delivery: ClaimedDelivery,
  summary: DispatchSummary,
): Promise<void> {
  const now = deps.now();
  const body = JSON.stringify(callbackEventBody(delivery.event));
  const headers = callbackHeaders({
    eventId: delivery.event.id,
    body,
    secrets: signingSecrets(delivery, now),
    timestamp: Math.floor(now.getTime() / 1000),
  });
  const result = await deps.post(delivery.url, body, headers);
  deps.metrics?.addMetric(Metric.CallbackAttempts, MetricUnit.Count, 1);
  if (result.error === null) summary.delivered += 1;
  else {
    summary.failed += 1;
    deps.metrics?.addMetric(Metric.CallbackFailures, MetricUnit.Count, 1);
  }
  const outcome = await recordAttempt(deps, delivery, result);
  if (outcome.gaveUp) summary.gaveUp += 1;
  if (outcome.disabled) {
    summary.disabled += 1;
    deps.metrics?.addMetric(Metric.CallbackEndpointsDisabled, MetricUnit.Count, 1);
    deps.logger.warn('callback endpoint disabled', {
      endpointId: delivery.endpoint_id,
      reason: outcome.disabled,
    });
  }
}

/**
 * The attempt, the delivery's new state and the endpoint's health in one transaction, so a
 * crash between them cannot record a success the endpoint never saw or lose a failure count.
 */
async function recordAttempt(
  deps: DispatchDeps,
  delivery: ClaimedDelivery,
  result: PostResult,
): Promise<{ gaveUp: boolean; disabled: string | null }> {
  const { settings } = deps;
  const now = deps.now();
  return deps.db.transaction().execute(async (trx) => {
    await trx
      .insertInto('callback_attempts')
      .values({
        delivery_id: delivery.id,
        status_code: result.statusCode,
        latency_ms: result.latencyMs,
        error: result.error,
      })
      .execute();
    if (result.error === null) {
      await trx
        .updateTable('callback_deliveries')
        .set({
          status: 'delivered',
          delivered_at: now,
          last_status_code: result.statusCode,
          last_error: null,
        })
        .where('id', '=', delivery.id)
        .execute();
      await trx
        .updateTable('callback_endpoints')
        .set({ consecutive_failures: 0, failing_since: null })
        .where('id', '=', delivery.endpoint_id)
        .where('consecutive_failures', '>', 0)
        .execute();
      return { gaveUp: false, disabled: null };
    }
    const gaveUp = now.getTime() - delivery.created_at.getTime() >= settings.retryForMs;
    const retryAt = new Date(
      now.getTime() + callbackRetryDelayMs(delivery.attempts, settings, deps.random),
    );
    await trx
      .updateTable('callback_deliveries')
      .set({
        ...(gaveUp ? { status: 'failed' as const } : { next_attempt_at: retryAt }),
        last_status_code: result.statusCode,
        last_error: result.error,
      })
      .where('id', '=', delivery.id)
      .execute();
    // The counter and the disabling are one guarded statement: two dispatchers failing on the
    // same endpoint at once cannot both miss the threshold or both disable it.
    const disabledReason = `failed ${settings.disableAfterFailures} times in a row over at least ${Math.round(settings.disableAfterMs / 1000)} s`;
    const endpoint = await trx
      .updateTable('callback_endpoints')
      .set((eb) => ({
        consecutive_failures: eb('consecutive_failures', '+', 1),
        failing_since: sql<Date>`coalesce(failing_since, ${now})`,
        disabled_at: sql<Date | null>`case
          when disabled_at is null
            and consecutive_failures + 1 >= ${settings.disableAfterFailures}
            and coalesce(failing_since, ${now}) <= ${new Date(now.getTime() - settings.disableAfterMs)}
          then ${now}::timestamptz else disabled_at end`,
        disabled_reason: sql<string | null>`case
          when disabled_at is null
            and consecutive_failures + 1 >= ${settings.disableAfterFailures}
            and coalesce(failing_since, ${now}) <= ${new Date(now.getTime() - settings.disableAfterMs)}
          then ${disabledReason} else disabled_reason end`,
      }))
      .where('id', '=', delivery.endpoint_id)
      .returning(['disabled_at', 'client_id'])
      .executeTakeFirst();
    const justDisabled = endpoint?.disabled_at?.getTime() === now.getTime();
    if (justDisabled) {
      await writeAudit(trx, {
        actor: 'system:dispatcher',
        action: 'callbacks.endpoint_disabled',
        outcome: 'ok',
        detail: {
          endpointId: delivery.endpoint_id,
          clientId: endpoint!.client_id,
          reason: disabledReason,
        },
      });
    }
    return { gaveUp, disabled: justDisabled ? disabledReason : null };
  });
}

export interface DrainOptions {
  /** Stop starting rounds once less than this is left (a round may take a post timeout). */
  stopWithMsLeft: number;
  remainingMs: () => number;
  /** Wait between rounds that found nothing due. */
  idleMs: number;
  sleep: (ms: number) => Promise<void>;
  /** Runs before every round, e.g. publishing to EventBridge. */
  beforeRound?: () => Promise<void>;
}

/**
 * Rounds until the time budget runs out. Keeping one invocation polling (one cheap indexed query
 * per idle second) gives callbacks within about a second of the change without any sending path
 * having to wake the dispatcher.
 */
export async function drainCallbacks(
  deps: DispatchDeps,
  options: DrainOptions,
): Promise<DispatchSummary> {
  const total: DispatchSummary = { claimed: 0, delivered: 0, failed: 0, gaveUp: 0, disabled: 0 };
  while (options.remainingMs() > options.stopWithMsLeft) {
    await options.beforeRound?.();
    const round = await dispatchDueCallbacks(deps);
    for (const key of Object.keys(total) as (keyof DispatchSummary)[]) total[key] += round[key];
    if (round.claimed < deps.settings.batchSize) await options.sleep(options.idleMs);
  }
  return total;
}

/** Deletes events (with their deliveries and attempts) past retention, a bounded slice per call. */
export async function pruneCallbackEvents(
  db: Kysely<Database>,
  olderThan: Date,
  limit = 1000,
): Promise<number> {
  const result = await sql`
    delete from callback_events where id in (
      select id from callback_events where created_at < ${olderThan} limit ${limit})`.execute(db);
  return Number(result.numAffectedRows ?? 0);
}
