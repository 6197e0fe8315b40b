/**
 * The scheduler's minute: mark notifications whose fallback fell due (cancelling those not yet
 * sent), enqueue scheduled notifications that fall due, sweep `accepted` rows whose
 * SQS send failed (the outbox), probe the Graph API while panic mode is on, and drain deferred rows
 * at a gentle rate once their reason has passed (rows held for the daily cap as soon as the cap
 * leaves room again); every few minutes, read the number's health from the Graph API; about once an
 * hour, read how long the access token has left; every template refresh interval, read the
 * template list into the registry; and apply the retention of personal data and of the audit log.
 * One run at a time, guarded by an advisory lock.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { type Kysely, sql } from 'kysely';
import type { Database } from '#core/db/schema.ts';
import { markDueFallbacks } from '#core/delivery/fallback.ts';
import {
  applyHealthReading,
  effectiveLimits,
  readGraphNumber,
  readNumberHealth,
} from '#core/delivery/number-health.ts';
import { emitPanicMetric, ensureSender, recordProbe } from '#core/delivery/panic-mode.ts';
import { getRollout } from '#core/delivery/rollout.ts';
import { applyPendingStatuses } from '#core/notifications/apply-status-update.ts';
import {
  enqueueNotifications,
  type QueuedNotification,
  type QueueTargets,
} from '#core/notifications/enqueue.ts';
import { applyRetention, type RetentionReport } from '#core/notifications/pii-retention.ts';
import { SQS_MAX_DELAY_SECONDS } from '#core/notifications/queue-settings.ts';
import {
  type RefreshOutcome,
  refreshDue,
  refreshTemplateRegistry,
  registryState,
} from '#core/notifications/template-registry.ts';
import { DEFAULT_AUDIT_RETENTION_DAYS, DEFAULT_PII_RETENTION_DAYS } from '#core/platform/config.ts';
import { Metric } from '#core/platform/metric-names.ts';
import type { GraphClient } from '#core/whatsapp/graph-client.ts';
import { pruneWebhookRecords } from '#core/whatsapp/webhook-records.ts';

export interface SchedulerDeps {
  db: Kysely<Database>;
  queue: QueueTargets;
  whatsapp: Pick<GraphClient, 'probe' | 'tokenStatus'> &
    Partial<Pick<GraphClient, 'listTemplates'>>;
  /** The WABA whose template list fills the registry (WHATSAPP_WABA_ID); none: no refresh. */
  wabaId?: string;
  senderId: string;
  now: () => Date;
  sleep: (ms: number) => Promise<void>;
  /** Milliseconds left before the invocation is killed (Lambda's getRemainingTimeInMillis). */
  remainingMs: () => number;
  logger: Logger;
  metrics?: Metrics;
  /**
   * When the access token was last checked. Without it the run never checks the token (tests that
   * are about something else); the handler keeps one per execution environment.
   */
  tokenCheck?: TokenCheckState;
  /**
   * When the number's health was last read outside the probes. Without it the run reads it only
   * through panic-mode probes (tests that are about something else); the handler keeps one per
   * execution environment, as for the token.
   */
  healthCheck?: TokenCheckState;
}

/**
 * Kept in memory for the life of a Lambda execution environment, not in the database. A recycled
 * or second environment starts empty and checks on its first run, so the worst case is a few
 * extra debug_token calls an hour, harmless and cheaper than a table and a migration for a
 * timestamp nobody else reads. The alarm's period spans several checks, so an uneven hour is fine.
 */
export interface TokenCheckState {
  lastCheckedAt?: Date;
}

export interface SchedulerOptions {
  /** Probes per run while the circuit is open (the Lambda runs each minute: 3 probes 15 s apart). */
  probesPerRun: number;
  probeIntervalMs: number;
  /** The longest one Graph API call can take: the client's timeout (WHATSAPP_TIMEOUT_MS). */
  graphCallMaxMs: number;
  /**
   * Time kept for what follows the probes (drain, late statuses, the token check, writing the run
   * row): a probe starts only if its wait, its worst case and this still fit in the invocation.
   */
  reserveMs: number;
  /** How often the access token's expiry is read with debug_token. */
  tokenCheckIntervalMs: number;
  /** How often the number's quality, tier, throughput and status are read from the Graph API. */
  healthCheckIntervalMs: number;
  /** How often the template list is read whole into the registry (a webhook may ask sooner). */
  templateRefreshIntervalMs: number;
  /** How far ahead scheduled rows are enqueued (with an SQS delay), normally the run interval. */
  lookaheadSeconds: number;
  /** An `accepted` row older than this lost its SQS send. */
  outboxAgeSeconds: number;
  /** Seconds between runs: the drain re-queues drainPerSecond × this many deferred rows a run. */
  runIntervalSeconds: number;
  batchLimit: number;
  /** Days a notification keeps its number, text and metadata (PII_RETENTION_DAYS). */
  piiRetentionDays: number;
  /** Days an audit entry is kept (AUDIT_RETENTION_DAYS). */
  auditRetentionDays: number;
}

export const DEFAULT_SCHEDULER_OPTIONS: SchedulerOptions = {
  probesPerRun: 3,
  probeIntervalMs: 15_000,
  graphCallMaxMs: 10_000,
  // A token check at the Graph timeout, plus room for a full drain and the late statuses.
  reserveMs: 25_000,
  tokenCheckIntervalMs: 3_600_000,
  // Webhooks bring changes at once; the read is the backstop for a lost one and the first values.
  healthCheckIntervalMs: 900_000,
  templateRefreshIntervalMs: 900_000,
  lookaheadSeconds: 60,
  outboxAgeSeconds: 60,
  runIntervalSeconds: 60,
  batchLimit: 5_000,
  piiRetentionDays: DEFAULT_PII_RETENTION_DAYS,
  auditRetentionDays: DEFAULT_AUDIT_RETENTION_DAYS,
};

export type SchedulerReport =
  | { outcome: 'skipped' }
  | {
      outcome: 'done';
      scheduled: number;
      swept: number;
      /** Notifications found to need their fallback this run (those not yet sent were cancelled). */
      fallbacks: number;
      drained: number;
      probes: { ok: boolean }[];
      /** Probes left undone because the next one would not have fitted in the invocation. */
      probesSkippedForTime: number;
      circuitClosed: boolean;
      panicActive: boolean;
      /** Held open by a person (or Meta's account event): the probes report and do not close it. */
      panicHeld: boolean;
      /** Deferred rows released because the daily cap was raised or removed (or the tier rose). */
      releasedFromDailyCap: number;
      healthCheck: HealthCheckOutcome;
      lateStatuses: number;
      tokenCheck: TokenCheckOutcome;
      retention: RetentionReport;
      templates: TemplateRefreshReport;
    };

/** `read`: a good probe or the interval's read stored the number's health this run. */
export type HealthCheckOutcome = 'off' | 'not_due' | 'no_time' | 'read' | 'failed';

export type TemplateRefreshReport =
  | { outcome: 'off' | 'not_due' | 'no_time' }
  | ({ outcome: 'refreshed' | 'failed' } & RefreshOutcome);

export type TokenCheckOutcome =
  | { outcome: 'off' | 'not_due' | 'no_time' | 'never_expires' | 'invalid' }
  | { outcome: 'expires'; daysLeft: number }
  | { outcome: 'failed'; errorClass: string };

/**
 * Whether a probe fits in what is left of the invocation: its wait before it (none for the first),
 * its worst case, and the reserve for the rest of the run.
 */
export function probeFits(remainingMs: number, first: boolean, options: SchedulerOptions): boolean {
  const wait = first ? 0 : options.probeIntervalMs;
  return remainingMs >= wait + options.graphCallMaxMs + options.reserveMs;
}

/** Any constant works; it only has to be the same for every scheduler. */
export const SCHEDULER_LOCK_KEY = 7_362_019_411;

export async function runScheduler(
  deps: SchedulerDeps,
  options: SchedulerOptions = DEFAULT_SCHEDULER_OPTIONS,
): Promise<SchedulerReport> {
  // A session-level advisory lock lives on one connection, so the whole run holds that connection;
  // if the function dies mid-run the connection closes and the lock goes with it.
  return deps.db.connection().execute(async (conn) => {
    const locked = await sql<{
      got: boolean;
    }>`select pg_try_advisory_lock(${SCHEDULER_LOCK_KEY}) as got`.execute(conn);
    if (!locked.rows[0]?.got) {
      deps.logger.info('another scheduler run holds the lock; skipped');
      await conn
        .insertInto('scheduler_runs')
        .values({ outcome: 'skipped', finished_at: deps.now() })
        .execute();
      return { outcome: 'skipped' } as const;
    }
    const run = await conn
      .insertInto('scheduler_runs')
      .values({ outcome: 'running' })
      .returning('id')
      .executeTakeFirstOrThrow();
    try {
      const report = await runLocked(conn, deps, options);
      await conn
        .updateTable('scheduler_runs')
        .set({ outcome: 'done', finished_at: deps.now(), detail: JSON.stringify(report) })
        .where('id', '=', run.id)
        .execute();
      return report;
    } catch (error) {
      await conn
        .updateTable('scheduler_runs')
        .set({
          outcome: 'failed',
          finished_at: deps.now(),
          detail: JSON.stringify({ error: error instanceof Error ? error.name : 'error' }),
        })
        .where('id', '=', run.id)
        .execute();
      throw error;
    } finally {
      await sql`select pg_advisory_unlock(${SCHEDULER_LOCK_KEY})`.execute(conn);
    }
  });
}

async function runLocked(
  db: Kysely<Database>,
  deps: SchedulerDeps,
  options: SchedulerOptions,
): Promise<SchedulerReport & { outcome: 'done' }> {
  const now = deps.now();
  // First, so that a row whose fallback fell due is cancelled before it could be enqueued or drained.
  const fallbacks = (await markDueFallbacks(db, now, options.batchLimit)).length;
  const scheduled = await enqueueRows(db, deps, {
    label: 'scheduled',
    select: (q) =>
      q
        .where('status', '=', 'scheduled')
        .where('send_at', '<=', new Date(now.getTime() + options.lookaheadSeconds * 1000))
        .orderBy('send_at'),
    delaySeconds: (row) =>
      row.send_at ? Math.ceil((row.send_at.getTime() - deps.now().getTime()) / 1000) : 0,
    limit: options.batchLimit,
  });
  const swept = await enqueueRows(db, deps, {
    label: 'outbox',
    select: (q) =>
      q
        .where('status', '=', 'accepted')
        .where('created_at', '<', new Date(now.getTime() - options.outboxAgeSeconds * 1000))
        .orderBy('created_at'),
    delaySeconds: () => 0,
    limit: options.batchLimit,
  });

  await ensureSender(db, deps.senderId);
  const probes: { ok: boolean }[] = [];
  let probesSkippedForTime = 0;
  let circuitClosed = false;
  let panicHeld = false;
  let healthRead = false;
  let panicActive = await isCircuitOpen(db, deps.senderId);
  for (let i = 0; panicActive && i < options.probesPerRun; i++) {
    // Checked before the wait: a probe that cannot finish must not cost the drain its time.
    const remainingMs = deps.remainingMs();
    if (!probeFits(remainingMs, i === 0, options)) {
      probesSkippedForTime = options.probesPerRun - i;
      deps.logger.warn('panic mode probes stopped early: the next one would not fit in this run', {
        probesDone: i,
        probesSkipped: probesSkippedForTime,
        remainingMs,
        neededMs:
          (i === 0 ? 0 : options.probeIntervalMs) + options.graphCallMaxMs + options.reserveMs,
      });
      break;
    }
    if (i > 0) await deps.sleep(options.probeIntervalMs);
    const probe = await deps.whatsapp.probe();
    probes.push({ ok: probe.ok });
    if (probe.ok) healthRead = (await recordGraphHealth(db, deps, probe)) || healthRead;
    const result = await recordProbe(db, {
      senderId: deps.senderId,
      ok: probe.ok,
      ...(deps.metrics ? { metrics: deps.metrics } : {}),
    });
    panicHeld = result.held;
    deps.logger.info('panic mode probe', {
      ok: probe.ok,
      goodProbes: result.goodProbes,
      errorClass: probe.errorClass,
      ...(result.held ? { held: true } : {}),
    });
    if (result.closed) {
      circuitClosed = true;
      panicActive = false;
      deps.logger.info('panic mode closed after good probes; draining deferred notifications');
    }
  }
  if (panicHeld) {
    deps.logger.info('panic mode is held open until a person closes it; probes only report');
  }
  const healthCheck = await checkHealth(db, deps, options, healthRead);
  // A health read may have opened the circuit (an account restriction seen by the Graph API).
  if (!panicActive) panicActive = await isCircuitOpen(db, deps.senderId);
  emitPanicMetric(deps.metrics, panicActive);

  let drained = 0;
  let releasedFromDailyCap = 0;
  const rollout = await getRollout(db);
  if (!panicActive && rollout.deliveryEnabled) {
    const perRun = rollout.drainPerSecond * options.runIntervalSeconds;
    let index = 0;
    drained = await enqueueRows(db, deps, {
      label: 'deferred',
      select: (q) =>
        q
          .where('status', '=', 'deferred')
          .where((eb) =>
            eb.or([eb('next_attempt_at', 'is', null), eb('next_attempt_at', '<=', now)]),
          )
          .orderBy('updated_at'),
      // Spread over the run interval at the drain rate, so recovery does not hit the limits again.
      delaySeconds: () => Math.floor(index++ / rollout.drainPerSecond),
      limit: Math.min(perRun, options.batchLimit),
    });
    releasedFromDailyCap = await releaseDailyCapRows(db, deps, {
      rollout,
      now,
      limit: Math.min(Math.max(0, perRun - drained), options.batchLimit),
      delayFrom: drained,
    });
  }

  // A backstop for the webhook/worker race: statuses kept for wamids that are stored by now.
  const late = await db
    .selectFrom('pending_statuses')
    .innerJoin('notifications', 'notifications.wamid', 'pending_statuses.wamid')
    .select('pending_statuses.wamid')
    .distinct()
    .limit(1000)
    .execute();
  const lateStatuses = (
    await applyPendingStatuses(
      db,
      late.map((r) => r.wamid),
    )
  ).length;
  await db
    .deleteFrom('pending_statuses')
    .where('received_at', '<', new Date(now.getTime() - 7 * 24 * 3_600_000))
    .execute();
  // Refused webhook items and Meta's events are kept for a while for the operator, then dropped.
  const prunedWebhookRecords = await pruneWebhookRecords(db, now);
  // Personal data past the stage's retention, and old audit entries (pii-retention.ts).
  const retention = await applyRetention(db, now, {
    piiRetentionDays: options.piiRetentionDays,
    auditRetentionDays: options.auditRetentionDays,
    batchLimit: options.batchLimit,
  });
  if (retention.notificationsRedacted) {
    deps.metrics?.addMetric(
      Metric.PiiRowsRedacted,
      MetricUnit.Count,
      retention.notificationsRedacted,
    );
  }
  if (retention.auditPruned) {
    deps.metrics?.addMetric(Metric.AuditRowsPruned, MetricUnit.Count, retention.auditPruned);
  }

  const tokenCheck = await checkToken(deps, options);
  const templates = await refreshTemplates(db, deps, options);

  const report = {
    outcome: 'done' as const,
    scheduled,
    swept,
    fallbacks,
    drained,
    probes,
    probesSkippedForTime,
    circuitClosed,
    panicActive,
    panicHeld,
    releasedFromDailyCap,
    healthCheck,
    lateStatuses,
    prunedWebhookRecords,
    tokenCheck,
    retention,
    templates,
  };
  if (
    scheduled ||
    swept ||
    fallbacks ||
    drained ||
    releasedFromDailyCap ||
    healthCheck === 'read' ||
    healthCheck === 'failed' ||
    probes.length ||
    probesSkippedForTime ||
    lateStatuses ||
    prunedWebhookRecords ||
    Object.values(retention).some((n) => n > 0) ||
    (tokenCheck.outcome !== 'not_due' && tokenCheck.outcome !== 'off') ||
    (templates.outcome !== 'not_due' && templates.outcome !== 'off')
  )
    deps.logger.info('scheduler run', report);
  return report;
}

const DAY_MS = 86_400_000;

/**
 * Stores what a good probe or health read saw of the number, and acts on it: a restricted or banned
 * number opens (and holds) the circuit, a slip raises NumberHealthWarnings. True when stored.
 */
async function recordGraphHealth(
  db: Kysely<Database>,
  deps: SchedulerDeps,
  probe: Awaited<ReturnType<SchedulerDeps['whatsapp']['probe']>>,
): Promise<boolean> {
  const result = await applyHealthReading(db, {
    senderId: deps.senderId,
    reading: readGraphNumber(probe),
    source: 'graph',
    actor: 'system:scheduler',
    checked: true,
    ...(deps.metrics ? { metrics: deps.metrics } : {}),
  });
  for (const warning of result.warnings) {
    deps.metrics?.addMetric(Metric.NumberHealthWarnings, MetricUnit.Count, 1);
    deps.logger.warn('number health got worse', { warning, source: 'graph' });
  }
  if (result.opened) {
    deps.logger.error('the Graph API reports the number blocked; panic mode opened and held', {
      accountState: result.after.accountState,
    });
  }
  return true;
}

/** Reads the number's health when the last read is an interval old (a good probe counts as one). */
async function checkHealth(
  db: Kysely<Database>,
  deps: SchedulerDeps,
  options: SchedulerOptions,
  readByProbe: boolean,
): Promise<HealthCheckOutcome> {
  const state = deps.healthCheck;
  if (!state) return readByProbe ? 'read' : 'off';
  const now = deps.now();
  if (readByProbe) {
    state.lastCheckedAt = now;
    return 'read';
  }
  if (
    state.lastCheckedAt &&
    now.getTime() - state.lastCheckedAt.getTime() < options.healthCheckIntervalMs
  ) {
    return 'not_due';
  }
  if (deps.remainingMs() < options.graphCallMaxMs + options.reserveMs) return 'no_time';
  state.lastCheckedAt = now;
  const probe = await deps.whatsapp.probe();
  if (!probe.ok) {
    deps.logger.warn('could not read the number health', {
      errorClass: probe.errorClass,
      errorCode: probe.code,
    });
    return 'failed';
  }
  await recordGraphHealth(db, deps, probe);
  return 'read';
}

/**
 * Re-queues rows deferred for the daily cap before the next UTC day when the cap leaves room again
 * (raised or removed by hand, or a higher messaging tier), at most as many as it leaves.
 */
async function releaseDailyCapRows(
  db: Kysely<Database>,
  deps: SchedulerDeps,
  input: {
    rollout: Awaited<ReturnType<typeof getRollout>>;
    now: Date;
    limit: number;
    delayFrom: number;
  },
): Promise<number> {
  if (input.limit <= 0) return 0;
  const limits = effectiveLimits(input.rollout, await readNumberHealth(db, deps.senderId));
  let room = input.limit;
  if (limits.dailyCap !== null) {
    const used = await db
      .selectFrom('sender_state')
      .select(
        sql<number>`case when day_start < date_trunc('day', clock_timestamp()) then 0 else day_count end`.as(
          'used',
        ),
      )
      .where('sender_id', '=', deps.senderId)
      .executeTakeFirst();
    room = Math.min(room, limits.dailyCap - Number(used?.used ?? 0));
  }
  if (room <= 0) return 0;
  let index = input.delayFrom;
  return enqueueRows(db, deps, {
    label: 'daily_cap',
    select: (q) =>
      q
        .where('status', '=', 'deferred')
        .where('status_reason', '=', 'daily_cap')
        // The gates run before the claim stamps a sender: a row held back is this sender's or
        // nobody's yet (one sender per deployment); another sender's rows wait for its own cap.
        .where((eb) => eb.or([eb('sender_id', '=', deps.senderId), eb('sender_id', 'is', null)]))
        .where('next_attempt_at', '>', input.now)
        .orderBy('updated_at'),
    delaySeconds: () => Math.floor(index++ / input.rollout.drainPerSecond),
    limit: room,
  });
}

/**
 * Reads the token's expiry with debug_token when the last check is an interval old, and publishes
 * the days left. A token without expiry publishes nothing (the alarm reads silence as fine); one
 * Meta calls invalid, or refuses with an auth error, has no life left and publishes 0.
 */
async function checkToken(
  deps: SchedulerDeps,
  options: SchedulerOptions,
): Promise<TokenCheckOutcome> {
  const state = deps.tokenCheck;
  if (!state) return { outcome: 'off' };
  const now = deps.now();
  if (
    state.lastCheckedAt &&
    now.getTime() - state.lastCheckedAt.getTime() < options.tokenCheckIntervalMs
  ) {
    return { outcome: 'not_due' };
  }
  // Left for the next run rather than risk the invocation: the check is hourly, not urgent.
  if (deps.remainingMs() < options.graphCallMaxMs + 2_000) return { outcome: 'no_time' };
  // Counted as checked whatever the answer: a failing check retries next interval, not every minute.
  state.lastCheckedAt = now;
  const status = await deps.whatsapp.tokenStatus();
  let daysLeft: number | undefined;
  let outcome: TokenCheckOutcome;
  if (!status.ok) {
    if (status.errorClass === 'auth') daysLeft = 0;
    outcome = { outcome: 'failed', errorClass: status.errorClass };
    deps.logger.warn('could not read the access token expiry', {
      errorClass: status.errorClass,
      errorCode: status.code,
    });
  } else if (!status.valid) {
    daysLeft = 0;
    outcome = { outcome: 'invalid' };
  } else if (status.expiresAt === null) {
    outcome = { outcome: 'never_expires' };
  } else {
    daysLeft = Math.max(0, (status.expiresAt.getTime() - now.getTime()) / DAY_MS);
    outcome = { outcome: 'expires', daysLeft: Math.round(daysLeft * 100) / 100 };
  }
  if (daysLeft !== undefined) {
    deps.metrics?.addMetric(Metric.WhatsAppTokenDaysLeft, MetricUnit.Count, daysLeft);
  }
  return outcome;
}

/**
 * Reads the whole template list into the registry when it is due (an interval since the last
 * attempt, never read, or a webhook asked). The time of the attempt lives in the database, so one
 * refresh serves every execution environment, and a failing Graph API is asked once an interval.
 */
async function refreshTemplates(
  db: Kysely<Database>,
  deps: SchedulerDeps,
  options: SchedulerOptions,
): Promise<TemplateRefreshReport> {
  const list = deps.whatsapp.listTemplates;
  if (!deps.wabaId || !list) return { outcome: 'off' };
  const now = deps.now();
  const state = await registryState(db, deps.wabaId);
  if (!refreshDue(state, now, options.templateRefreshIntervalMs)) return { outcome: 'not_due' };
  // A refresh reads page after page: left for the next run unless a few calls fit.
  if (deps.remainingMs() < 3 * options.graphCallMaxMs + 2_000) return { outcome: 'no_time' };
  // 100 pages of 100: above Meta's largest template allowance, so a read is whole.
  const refreshed = await refreshTemplateRegistry(db, {
    wabaId: deps.wabaId,
    list: () => list({ full: true, maxPages: 100 }),
    now,
  });
  if (!refreshed.ok) {
    deps.logger.warn('could not refresh the template registry', { error: refreshed.error });
  }
  return { outcome: refreshed.ok ? 'refreshed' : 'failed', ...refreshed };
}

async function isCircuitOpen(db: Kysely<Database>, senderId: string): Promise<boolean> {
  const row = await db
    .selectFrom('sender_state')
    .select('circuit')
    .where('sender_id', '=', senderId)
    .executeTakeFirst();
  return row?.circuit === 'open';
}

type RowSelect = ReturnType<typeof baseSelect>;
function baseSelect(db: Kysely<Database>) {
  return db
    .selectFrom('notifications')
    .select(['id', 'priority', 'request_id', 'send_at', 'status']);
}

/**
 * Enqueues the selected rows and marks them `queued`, in one transaction whose rows are taken with
 * `for update skip locked`: a second scheduler (or anything else holding a row) is stepped around,
 * never waited on, and no row is enqueued twice by two runs.
 */
async function enqueueRows(
  db: Kysely<Database>,
  deps: SchedulerDeps,
  spec: {
    label: string;
    select: (q: RowSelect) => RowSelect;
    delaySeconds: (row: { send_at: Date | null }) => number;
    limit: number;
  },
): Promise<number> {
  let total = 0;
  for (let remaining = spec.limit; remaining > 0; ) {
    const chunk = Math.min(remaining, 500);
    const { enqueued, more } = await db.transaction().execute(async (trx) => {
      const rows = await spec
        .select(baseSelect(trx))
        .limit(chunk)
        .forUpdate()
        .skipLocked()
        .execute();
      if (rows.length === 0) return { enqueued: 0, more: false };
      const items: QueuedNotification[] = rows.map((row) => ({
        id: row.id,
        priority: row.priority,
        requestId: row.request_id,
        delaySeconds: Math.min(SQS_MAX_DELAY_SECONDS, Math.max(0, spec.delaySeconds(row))),
      }));
      const failed = await enqueueNotifications(deps.queue, items);
      const ids = items.filter((i) => !failed.has(i.id)).map((i) => i.id);
      if (failed.size) {
        deps.logger.warn('enqueue failed; will retry next run', {
          kind: spec.label,
          failed: failed.size,
        });
      }
      if (ids.length) {
        await trx
          .updateTable('notifications')
          .set({
            status: 'queued',
            status_reason: null,
            queued_at: deps.now(),
            updated_at: sql`now()`,
          })
          .where('id', 'in', ids)
          .execute();
      }
      // Stop when the source ran dry or the queue is failing; the next run picks up the rest.
      return { enqueued: ids.length, more: rows.length === chunk && failed.size === 0 };
    });
    total += enqueued;
    remaining -= chunk;
    if (!more) break;
  }
  return total;
}
