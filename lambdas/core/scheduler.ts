/**
 * The scheduler's minute: enqueue scheduled notifications that fall due, sweep `accepted` rows whose
 * SQS send failed (the outbox), probe the Graph API while panic mode is on, and drain deferred rows
 * at a gentle rate once their reason has passed. One run at a time, guarded by an advisory lock.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import type { Metrics } from '@aws-lambda-powertools/metrics';
import { type Kysely, sql } from 'kysely';
import { applyPendingStatuses } from './apply-status-update.ts';
import type { Database } from './db/schema.ts';
import { emitPanicMetric, ensureSender, recordProbe } from './panic-mode.ts';
import { enqueueNotifications, type QueuedNotification, type QueueTargets } from './queue.ts';
import { SQS_MAX_DELAY_SECONDS } from './queues.ts';
import { getRollout } from './rollout.ts';
import type { GraphClient } from './whatsapp/graph-client.ts';

export interface SchedulerDeps {
  db: Kysely<Database>;
  queue: QueueTargets;
  whatsapp: Pick<GraphClient, 'probe'>;
  senderId: string;
  now: () => Date;
  sleep: (ms: number) => Promise<void>;
  logger: Logger;
  metrics?: Metrics;
}

export interface SchedulerOptions {
  /** Probes per run while the circuit is open (the Lambda runs each minute: 3 probes 15 s apart). */
  probesPerRun: number;
  probeIntervalMs: number;
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
      circuitClosed: boolean;
      panicActive: boolean;
      lateStatuses: number;
    };

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
  let circuitClosed = false;
  let panicActive = await isCircuitOpen(db, deps.senderId);
  for (let i = 0; panicActive && i < options.probesPerRun; i++) {
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

  const report = {
    outcome: 'done' as const,
    scheduled,
    swept,
    drained,
    probes,
    circuitClosed,
    panicActive,
    lateStatuses,
  };
  if (scheduled || swept || drained || probes.length || lateStatuses)
    deps.logger.info('scheduler run', report);
  return report;
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
