/**
 * What on-call asks first, in one read for GET /v1/admin/status: the last 24 hours of outcomes,
 * queue and DLQ depths with the age of the oldest waiting notification, panic mode per sender, the
 * rate limiter, the rollout switches and the last scheduler run.
 */
import type { SQSClient } from '@aws-sdk/client-sqs';
import { type Kysely, sql } from 'kysely';
import { keysExpiringSoon } from '#core/admin/api-keys.ts';
import { type TemplateCheckReport, templateCheck } from '#core/admin/health.ts';
import type { Database } from '#core/db/schema.ts';
import {
  type EffectiveLimits,
  effectiveLimits,
  listNumberHealth,
  type NumberHealth,
} from '#core/delivery/number-health.ts';
import { listPanicStates, type PanicState } from '#core/delivery/panic-mode.ts';
import { getRollout, type Rollout } from '#core/delivery/rollout.ts';
import type { ErrorClass } from '#core/model/error-class.ts';
import type { Priority } from '#core/model/notification-request.ts';
import {
  DLQ_RETENTION_DAYS,
  MAX_RECEIVE_COUNT,
  PRIORITIES,
} from '#core/notifications/queue-settings.ts';
import { readTallies } from '#core/notifications/tallies.ts';
import { maskPhonesIn } from '#core/platform/phone.ts';
import { queueDepth } from '#core/platform/sqs.ts';

export const STATUS_WINDOW_HOURS = 24;

export interface StatusDeps {
  db: Kysely<Database>;
  sqs: SQSClient;
  queueUrls: Record<Priority, string>;
  deadLetterQueueUrls: Partial<Record<Priority, string>>;
  /** The configured sender phone number id, shown even before it has a row. */
  senderId?: string | undefined;
  /** Only set locally: the SQS emulator, so the ops CLI can reach the DLQs for a redrive. */
  sqsEndpoint?: string | undefined;
  now: () => Date;
  /** The WABA of the template registry (WHATSAPP_WABA_ID). */
  wabaId?: string | undefined;
}

export interface Last24h {
  since: string;
  /** Notifications the API accepted in the window; the other counts are about the same rows. */
  accepted: number;
  /** Reached Meta (a wamid came back), whatever happened after. */
  sent: number;
  delivered: number;
  read: number;
  failed: number;
  failedByClass: Partial<Record<ErrorClass | 'unknown', number>>;
  /** The most frequent failures, so "what failed and why" has an answer without a log search. */
  topErrors: {
    errorClass: string;
    errorCode: number | null;
    count: number;
    example: string | null;
  }[];
  skipped: number;
  deferred: number;
  /** Not final yet: scheduled, accepted, queued or sending. */
  inProgress: number;
  /** Counted by the worker per hour (a redelivery that found its row already sent). */
  skippedDuplicate: number;
  /** Counted by the worker per hour (a message that waited for the rate limiter). */
  skippedRateLimit: number;
  /** sent, delivered or read ÷ (those + failed), in percent; null before anything finished. */
  successRatePercent: number | null;
  /** Cancelled, by the client or by a fallback, among the window's notifications. */
  cancelled: number;
  /** Fallbacks found required in the window (by when they were marked), by reason. */
  fallbacksRequired: number;
  fallbacksByReason: Record<string, number>;
}

export interface QueueStatus {
  name: string;
  priority: Priority;
  kind: 'delivery' | 'dlq';
  url: string;
  /** ApproximateNumberOfMessages: waiting to be received. */
  visible: number | null;
  /** ApproximateNumberOfMessagesNotVisible: received and not yet deleted (a worker has them, or a retry waits). */
  inFlight: number | null;
  /** ApproximateNumberOfMessagesDelayed: sent with a delay (scheduled sends due within minutes). */
  delayed: number | null;
  /**
   * Seconds since the oldest notification still waiting on this queue was first queued, from the
   * notifications table (SQS gives no oldest age through its API; CloudWatch's
   * ApproximateAgeOfOldestMessage is the alarm's source). Null when the queue is empty.
   */
  oldestAgeSeconds: number | null;
  /** Notifications the table says are waiting here (can differ from SQS after a purge or a local restart). */
  waitingNotifications: number;
  error?: string;
}

export interface RateLimiterStatus {
  limits: Pick<
    Rollout,
    'ratePerSecond' | 'perMinuteCap' | 'dailyCap' | 'recipientSpacingSeconds' | 'drainPerSecond'
  >;
  senders: {
    senderId: string;
    /** Tokens in the bucket now (it holds one second of sends and refills continuously). */
    tokensAvailable: number;
    /** Sends counted in the current UTC minute and day, against perMinuteCap and dailyCap. */
    minuteCount: number;
    dayCount: number;
  }[];
}

export interface SchedulerStatus {
  lastRun: {
    startedAt: string;
    finishedAt: string | null;
    outcome: string;
    detail: unknown;
  } | null;
  lastSuccessfulRunAt: string | null;
}

export interface AdminStatus {
  generatedAt: string;
  last24h: Last24h;
  queues: QueueStatus[];
  sqs: { endpoint: string | null };
  panic: { active: boolean; senders: PanicState[] };
  rateLimiter: RateLimiterStatus;
  rollout: Rollout;
  scheduler: SchedulerStatus;
  /** Keys that stop working within KEY_EXPIRY_WARNING_DAYS (issue 16): a warning in `ops status`. */
  keys: {
    warningDays: number;
    expiringSoon: { prefix: string; name: string; expiresAt: string }[];
  };
  /** What Meta says of each sending number, and the limits the workers apply to it because of it. */
  numberHealth: NumberHealthStatus[];
  templates: TemplateRegistryStatus;
}

/** The template registry: is acceptance checking, and which templates would be refused. */
export interface TemplateRegistryStatus extends TemplateCheckReport {
  notApproved: { name: string; language: string; status: string }[];
}

async function readTemplateRegistry(deps: StatusDeps): Promise<TemplateRegistryStatus> {
  const check = await templateCheck(deps);
  if (!deps.wabaId) return { ...check, notApproved: [] };
  const notApproved = await deps.db
    .selectFrom('message_templates')
    .select(['name', 'language', 'status'])
    .where('waba_id', '=', deps.wabaId)
    .where('status', 'not in', ['APPROVED', 'DELETED'])
    .orderBy('name')
    .limit(50)
    .execute();
  return { ...check, notApproved };
}

export interface NumberHealthStatus extends NumberHealth {
  limits: EffectiveLimits;
}

/** Every sender with health recorded, plus the configured one (nothing known yet) when it has none. */
export async function readNumberHealthStatus(
  db: Kysely<Database>,
  rollout: Rollout,
  senderId: string | undefined,
): Promise<NumberHealthStatus[]> {
  const rows = await listNumberHealth(db);
  const statuses = rows.map((h) => ({ ...h, limits: effectiveLimits(rollout, h) }));
  if (senderId && !rows.some((h) => h.senderId === senderId)) {
    const unknown: NumberHealth = {
      senderId,
      qualityRating: null,
      messagingLimit: null,
      throughputLevel: null,
      accountState: 'OK',
      accountDetail: null,
      source: 'none',
      checkedAt: null,
      updatedAt: new Date(0).toISOString(),
    };
    statuses.unshift({ ...unknown, limits: effectiveLimits(rollout, null) });
  }
  return statuses;
}

export const KEY_EXPIRY_WARNING_DAYS = 14;

const count = (value: unknown): number => Number(value ?? 0);

export async function readLast24h(db: Kysely<Database>, now: Date): Promise<Last24h> {
  return readOutcomes(db, new Date(now.getTime() - STATUS_WINDOW_HOURS * 3_600_000), now);
}

/**
 * The outcomes of the notifications accepted from `since` until (not including) `until`: what the
 * 24 h status shows, for any window (`ops status --hours`, `--compare yesterday`).
 */
export async function readOutcomes(
  db: Kysely<Database>,
  since: Date,
  until: Date,
): Promise<Last24h> {
  // One pass over the window's rows through notifications_created_idx: the counts describe the
  // notifications accepted in the window and how far each got.
  const totalsQuery = db
    .selectFrom('notifications')
    .select([
      sql<string>`count(*)`.as('accepted'),
      sql<string>`count(*) filter (where sent_at is not null)`.as('sent'),
      sql<string>`count(*) filter (where delivered_at is not null)`.as('delivered'),
      sql<string>`count(*) filter (where read_at is not null)`.as('read'),
      sql<string>`count(*) filter (where status = 'failed')`.as('failed'),
      sql<string>`count(*) filter (where status in ('sent', 'delivered', 'read'))`.as('succeeded'),
      sql<string>`count(*) filter (where status = 'skipped')`.as('skipped'),
      sql<string>`count(*) filter (where status = 'deferred')`.as('deferred'),
      sql<string>`count(*) filter (where status = 'cancelled')`.as('cancelled'),
      sql<string>`count(*) filter (where status in ('scheduled', 'accepted', 'queued', 'sending'))`.as(
        'in_progress',
      ),
    ])
    .where('created_at', '>=', since)
    .where('created_at', '<', until)
    .executeTakeFirstOrThrow();
  const failuresQuery = db
    .selectFrom('notifications')
    .select([
      'error_class',
      'error_code',
      sql<string>`count(*)`.as('count'),
      sql<string | null>`min(error_message)`.as('example'),
    ])
    .where('created_at', '>=', since)
    .where('created_at', '<', until)
    .where('status', '=', 'failed')
    .groupBy(['error_class', 'error_code'])
    .orderBy(sql`count(*)`, 'desc')
    .execute();
  // Counted by when fallback was marked, not when the notification came in: a fallback a week
  // after a scheduled send counts the day it told the client.
  const fallbacksQuery = db
    .selectFrom('notifications')
    .select(['fallback_reason', sql<string>`count(*)`.as('count')])
    .where('fallback_required_at', '>=', since)
    .where('fallback_required_at', '<', until)
    .groupBy('fallback_reason')
    .execute();
  const [totals, failures, tallies, fallbacks] = await Promise.all([
    totalsQuery,
    failuresQuery,
    readTallies(db, since, until),
    fallbacksQuery,
  ]);
  const fallbacksByReason: Record<string, number> = {};
  for (const row of fallbacks) {
    fallbacksByReason[row.fallback_reason ?? 'unknown'] = count(row.count);
  }
  const failedByClass: Last24h['failedByClass'] = {};
  for (const row of failures) {
    const key = row.error_class ?? 'unknown';
    failedByClass[key] = (failedByClass[key] ?? 0) + count(row.count);
  }
  const succeeded = count(totals.succeeded);
  const failed = count(totals.failed);
  return {
    since: since.toISOString(),
    accepted: count(totals.accepted),
    sent: count(totals.sent),
    delivered: count(totals.delivered),
    read: count(totals.read),
    failed,
    failedByClass,
    topErrors: failures.slice(0, 10).map((row) => ({
      errorClass: row.error_class ?? 'unknown',
      errorCode: row.error_code,
      count: count(row.count),
      // Meta's titles are scrubbed when stored; masked again here because this leaves the service.
      example: row.example ? maskPhonesIn(row.example) : null,
    })),
    skipped: count(totals.skipped),
    deferred: count(totals.deferred),
    inProgress: count(totals.in_progress),
    skippedDuplicate: tallies.skipped_duplicate,
    skippedRateLimit: tallies.skipped_rate_limit,
    successRatePercent:
      succeeded + failed === 0 ? null : Math.round((succeeded / (succeeded + failed)) * 1000) / 10,
    cancelled: count(totals.cancelled),
    fallbacksRequired: Object.values(fallbacksByReason).reduce((a, b) => a + b, 0),
    fallbacksByReason,
  };
}

interface Depth {
  visible: number | null;
  inFlight: number | null;
  delayed: number | null;
  error?: string;
}

/** A queue's depth, or nulls and the error's name: the status page shows what it could read. */
async function depthOrError(sqs: SQSClient, url: string): Promise<Depth> {
  try {
    return await queueDepth(sqs, url);
  } catch (error) {
    return {
      visible: null,
      inFlight: null,
      delayed: null,
      error: error instanceof Error ? error.name : 'error',
    };
  }
}

/**
 * Waiting notifications per queue from the table. A row `queued` or `sending` is on its priority's
 * queue, unless it has used every receive (MAX_RECEIVE_COUNT attempts) and its last retry time has
 * passed with nobody picking it up: then SQS has moved its message to the DLQ. (A redriven row
 * counts as the DLQ's until the worker takes it again, a few seconds.) The DLQ keeps the original
 * enqueue time, so both ages count from `queued_at`.
 */
async function waitingRows(db: Kysely<Database>, now: Date) {
  // One expression, written once: PostgreSQL matches the GROUP BY to the select list by its text.
  const inDeadLetterQueue = sql<boolean>`(attempts >= ${sql.lit(MAX_RECEIVE_COUNT)} and coalesce(next_attempt_at, queued_at) <= now())`;
  const rows = await db
    .selectFrom('notifications')
    .select([
      'priority',
      inDeadLetterQueue.as('exhausted'),
      sql<string>`count(*)`.as('count'),
      sql<Date | null>`min(queued_at)`.as('oldest'),
    ])
    .where('status', 'in', ['queued', 'sending'])
    // Older messages are past the DLQ's retention: SQS has dropped them.
    .where('created_at', '>=', new Date(now.getTime() - DLQ_RETENTION_DAYS * 86_400_000))
    .groupBy(['priority', inDeadLetterQueue])
    .execute();
  const key = (priority: string, dlq: boolean) => `${priority}:${dlq}`;
  return new Map(rows.map((r) => [key(r.priority, Boolean(r.exhausted)), r]));
}

export async function readQueueStatus(
  deps: Pick<StatusDeps, 'db' | 'sqs' | 'queueUrls' | 'deadLetterQueueUrls' | 'now'>,
): Promise<QueueStatus[]> {
  const now = deps.now();
  const targets: { name: string; priority: Priority; kind: 'delivery' | 'dlq'; url: string }[] = [];
  for (const priority of PRIORITIES) {
    targets.push({ name: priority, priority, kind: 'delivery', url: deps.queueUrls[priority] });
    const dlq = deps.deadLetterQueueUrls[priority];
    if (dlq) targets.push({ name: `${priority}-dlq`, priority, kind: 'dlq', url: dlq });
  }
  const [waiting, ...depths] = await Promise.all([
    waitingRows(deps.db, now),
    ...targets.map((t) => depthOrError(deps.sqs, t.url)),
  ]);
  return targets.map((target, i) => {
    const depth = depths[i]!;
    const row = waiting.get(`${target.priority}:${target.kind === 'dlq'}`);
    const onQueue = (depth.visible ?? 0) + (depth.inFlight ?? 0) + (depth.delayed ?? 0);
    const reachable = depth.error === undefined;
    const oldest = row?.oldest ? new Date(row.oldest) : null;
    return {
      ...target,
      visible: depth.visible,
      inFlight: depth.inFlight,
      delayed: depth.delayed,
      oldestAgeSeconds:
        oldest && (onQueue > 0 || !reachable)
          ? Math.max(0, Math.round((now.getTime() - oldest.getTime()) / 1000))
          : null,
      waitingNotifications: count(row?.count),
      ...(depth.error ? { error: depth.error } : {}),
    };
  });
}

/** The limiter as the workers see it now: the same refill and window resets as rate-limits.ts. */
export async function readRateLimiter(
  db: Kysely<Database>,
  rollout: Rollout,
): Promise<RateLimiterStatus> {
  const rate = rollout.ratePerSecond;
  const rows = await db
    .selectFrom('sender_state')
    .select([
      'sender_id',
      sql<number>`least(${rate}::float8, tokens + extract(epoch from (clock_timestamp() - bucket_at)) * ${rate}::float8)`.as(
        'tokens_now',
      ),
      sql<number>`case when minute_start < date_trunc('minute', clock_timestamp()) then 0 else minute_count end`.as(
        'minute_used',
      ),
      sql<number>`case when day_start < date_trunc('day', clock_timestamp()) then 0 else day_count end`.as(
        'day_used',
      ),
    ])
    .orderBy('sender_id')
    .execute();
  return {
    limits: {
      ratePerSecond: rollout.ratePerSecond,
      perMinuteCap: rollout.perMinuteCap,
      dailyCap: rollout.dailyCap,
      recipientSpacingSeconds: rollout.recipientSpacingSeconds,
      drainPerSecond: rollout.drainPerSecond,
    },
    senders: rows.map((row) => ({
      senderId: row.sender_id,
      tokensAvailable: Math.floor(Math.max(0, Number(row.tokens_now))),
      minuteCount: Number(row.minute_used),
      dayCount: Number(row.day_used),
    })),
  };
}

export async function readSchedulerStatus(db: Kysely<Database>): Promise<SchedulerStatus> {
  const [last, lastDone] = await Promise.all([
    db
      .selectFrom('scheduler_runs')
      .select(['started_at', 'finished_at', 'outcome', 'detail'])
      .orderBy('started_at', 'desc')
      .limit(1)
      .executeTakeFirst(),
    db
      .selectFrom('scheduler_runs')
      .select('finished_at')
      .where('outcome', '=', 'done')
      .orderBy('started_at', 'desc')
      .limit(1)
      .executeTakeFirst(),
  ]);
  return {
    lastRun: last
      ? {
          startedAt: last.started_at.toISOString(),
          finishedAt: last.finished_at?.toISOString() ?? null,
          outcome: last.outcome,
          detail: last.detail ?? null,
        }
      : null,
    lastSuccessfulRunAt: lastDone?.finished_at?.toISOString() ?? null,
  };
}

/** Every sender with a row, plus the configured one when it has none yet (closed, never used). */
export async function readPanicStatus(
  db: Kysely<Database>,
  senderId: string | undefined,
): Promise<{ active: boolean; senders: PanicState[] }> {
  const senders = await listPanicStates(db);
  if (senderId && !senders.some((s) => s.senderId === senderId)) {
    senders.unshift({
      senderId,
      active: false,
      openedAt: null,
      openedBy: null,
      reason: null,
      consecutiveFailures: 0,
      goodProbes: 0,
      lastProbeAt: null,
      held: false,
    });
  }
  return { active: senders.some((s) => s.active), senders };
}

export async function readAdminStatus(deps: StatusDeps): Promise<AdminStatus> {
  const now = deps.now();
  const rollout = await getRollout(deps.db);
  const [last24h, queues, panic, rateLimiter, scheduler, numberHealth, templates] =
    await Promise.all([
      readLast24h(deps.db, now),
      readQueueStatus(deps),
      readPanicStatus(deps.db, deps.senderId),
      readRateLimiter(deps.db, rollout),
      readSchedulerStatus(deps.db),
      readNumberHealthStatus(deps.db, rollout, deps.senderId),
      readTemplateRegistry(deps),
    ]);
  const expiring = await keysExpiringSoon(deps.db, now, KEY_EXPIRY_WARNING_DAYS);
  return {
    generatedAt: now.toISOString(),
    last24h,
    queues,
    sqs: { endpoint: deps.sqsEndpoint ?? null },
    panic,
    rateLimiter,
    rollout,
    scheduler,
    keys: {
      warningDays: KEY_EXPIRY_WARNING_DAYS,
      expiringSoon: expiring.map((k) => ({
        prefix: k.prefix,
        name: k.clientName,
        expiresAt: k.expiresAt.toISOString(),
      })),
    },
    numberHealth,
    templates,
  };
}
