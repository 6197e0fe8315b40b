/**
 * The scheduler's minute: enqueue scheduled notifications that fall due, sweep `accepted` rows whose
 * SQS send failed (the outbox), probe the Graph API while panic mode is on, and drain deferred rows
 * at a gentle rate once their reason has passed; about once an hour, read how long the access token
 * has left; every template refresh interval, read the template list into the registry. One run at
 * a time, guarded by an advisory lock.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { type Kysely, sql } from 'kysely';
import type { Database } from '#core/db/schema.ts';
import { emitPanicMetric, ensureSender, recordProbe } from '#core/delivery/panic-mode.ts';
import { getRollout } from '#core/delivery/rollout.ts';
import { applyPendingStatuses } from '#core/notifications/apply-status-update.ts';
import {
  enqueueNotifications,
  type QueuedNotification,
  type QueueTargets,
} from '#core/notifications/enqueue.ts';
import { SQS_MAX_DELAY_SECONDS } from '#core/notifications/queue-settings.ts';
import {
  type RefreshOutcome,
  refreshDue,
  refreshTemplateRegistry,
  registryState,
} from '#core/notifications/template-registry.ts';
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
  /** How often the template list is read whole into the registry (a webhook may ask sooner). */
  templateRefreshIntervalMs: number;
  /** How far ahead scheduled rows are enqueued (with an SQS delay), normally the run interval. */
  lookaheadSeconds: number;
  /** An `accepted` row older than this lost its SQS send. */
  outboxAgeSeconds: number;
  /** Seconds between runs: the drain re-queues drainPerSecond × this many deferred rows a run. */
  runIntervalSeconds: number;
  batchLimit: number;
}

export const DEFAULT_SCHEDULER_OPTIONS: SchedulerOptions = {
  probesPerRun: 3,
  probeIntervalMs: 15_000,
  graphCallMaxMs: 10_000,
  // A token check at the Graph timeout, plus room for a full drain and the late statuses.
  reserveMs: 25_000,
  tokenCheckIntervalMs: 3_600_000,
  templateRefreshIntervalMs: 900_000,
  lookaheadSeconds: 60,
  outboxAgeSeconds: 60,
  runIntervalSeconds: 60,
  batchLimit: 5_000,
};

export type SchedulerReport =
  | { outcome: 'skipped' }
  | {
      outcome: 'done';
      scheduled: number;
      swept: number;
      drained: number;
      probes: { ok: boolean }[];
      /** Probes left undone because the next one would not have fitted in the invocation. */
      probesSkippedForTime: number;
      circuitClosed: boolean;
      panicActive: boolean;
      lateStatuses: number;
      tokenCheck: TokenCheckOutcome;
      templates: TemplateRefreshReport;
    };

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
const SCHEDULER_LOCK_KEY = 7_362_019_411;

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
    const result = await recordProbe(db, {
      senderId: deps.senderId,
      ok: probe.ok,
      ...(deps.metrics ? { metrics: deps.metrics } : {}),
    });
    deps.logger.info('panic mode probe', {
      ok: probe.ok,
      goodProbes: result.goodProbes,
      errorClass: probe.errorClass,
    });
    if (result.closed) {
      circuitClosed = true;
      panicActive = false;
      deps.logger.info('panic mode closed after good probes; draining deferred notifications');
    }
  }
  emitPanicMetric(deps.metrics, panicActive);

  let drained = 0;
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

  const tokenCheck = await checkToken(deps, options);
  const templates = await refreshTemplates(db, deps, options);

  const report = {
    outcome: 'done' as const,
    scheduled,
    swept,
    drained,
    probes,
    probesSkippedForTime,
    circuitClosed,
    panicActive,
    lateStatuses,
    prunedWebhookRecords,
    tokenCheck,
    templates,
  };
  if (
    scheduled ||
    swept ||
    drained ||
    probes.length ||
    probesSkippedForTime ||
    lateStatuses ||
    prunedWebhookRecords ||
    (tokenCheck.outcome !== 'not_due' && tokenCheck.outcome !== 'off') ||
    (templates.outcome !== 'not_due' && templates.outcome !== 'off')
  )
    deps.logger.info('scheduler run', report);
  return report;
}

const DAY_MS = 86_400_000;

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
