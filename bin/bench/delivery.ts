/**
 * Delivery throughput: notifications put in the database and on the high queue while no worker
 * runs (as the API leaves them: a `queued` row, its id on SQS), then the worker process drains them
 * to the sandbox. Counted from the moment the worker polls to the moment the last send is recorded.
 */
import { type Kysely, sql } from 'kysely';
import type { Database } from '#core/db/schema.ts';
import { enqueueNotifications, type QueueTargets } from '#core/notifications/enqueue.ts';
import { uuidv7 } from '#core/platform/ids.ts';
import type { WorkerStats } from '../chaos/worker-process.ts';
import { percentile } from './stats.ts';

export interface SeedInput {
  db: Kysely<Database>;
  queue: QueueTargets;
  clientId: string;
  count: number;
  /** request_id prefix of the rows, to find them again. */
  tag: string;
  /** Three digits after +57; with a 7-digit counter, distinct recipients. */
  recipientPrefix: string;
}

/** Inserts `queued` rows in chunks and puts their ids on the high queue, ten to a call. */
export async function seedQueuedNotifications(input: SeedInput): Promise<string[]> {
  const now = new Date();
  const rows = Array.from({ length: input.count }, (_, i) => ({
    id: uuidv7(now.getTime()),
    client_id: input.clientId,
    request_id: `${input.tag}-${i}`,
    recipient: `+57${input.recipientPrefix}${String(i).padStart(7, '0')}`,
    priority: 'high' as const,
    message_type: 'template' as const,
    message: JSON.stringify({ name: 'hello_world', language: 'en_US' }),
    status: 'queued' as const,
    queued_at: now,
    created_at: now,
    updated_at: now,
  }));
  for (let i = 0; i < rows.length; i += 1000) {
    await input.db
      .insertInto('notifications')
      .values(rows.slice(i, i + 1000))
      .execute();
  }
  for (let i = 0; i < rows.length; i += 500) {
    const chunk = rows.slice(i, i + 500);
    const failed = await enqueueNotifications(
      input.queue,
      chunk.map((r) => ({ id: r.id, priority: r.priority, requestId: r.request_id })),
    );
    if (failed.size > 0) throw new Error(`could not enqueue ${failed.size} notifications`);
  }
  return rows.map((r) => r.id);
}

export interface PhaseProgress {
  total: number;
  /** Rows whose send is recorded (sent or later, or failed). */
  recorded: number;
  read: number;
  /** Rows in a final state: read, failed, skipped. */
  terminal: number;
  pending: number;
}

/** Where the rows of some phases stand. A scan without an index; cheap at benchmark sizes. */
export async function phaseProgress(
  db: Kysely<Database>,
  tag: string | string[],
): Promise<PhaseProgress> {
  const patterns = (Array.isArray(tag) ? tag : [tag]).map((t) => `${t}-%`);
  const result = await sql<{
    total: string;
    recorded: string;
    read: string;
    terminal: string;
    pending: string;
  }>`
    select count(*) as total,
      count(*) filter (where status in ('sent', 'delivered', 'read', 'failed', 'skipped')) as recorded,
      count(*) filter (where status = 'read') as read,
      count(*) filter (where status in ('read', 'failed', 'skipped')) as terminal,
      count(*) filter (where status in ('accepted', 'queued', 'sending', 'deferred', 'scheduled')) as pending
    from notifications where request_id like any(${sql.val(patterns)}::text[])`.execute(db);
  const row = result.rows[0]!;
  return {
    total: Number(row.total),
    recorded: Number(row.recorded),
    read: Number(row.read),
    terminal: Number(row.terminal),
    pending: Number(row.pending),
  };
}

/** Polls until `done` says so or the time runs out; returns the last progress. */
export async function waitForPhase(
  db: Kysely<Database>,
  tag: string | string[],
  done: (p: PhaseProgress) => boolean,
  timeoutMs: number,
  intervalMs = 250,
): Promise<{ progress: PhaseProgress; timedOut: boolean }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const progress = await phaseProgress(db, tag);
    if (done(progress)) return { progress, timedOut: false };
    if (Date.now() > deadline) return { progress, timedOut: true };
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

export interface SendTimeline {
  sent: number;
  firstSentAt: number;
  lastSentAt: number;
  /** Sends per second between the 10th and the 90th percentile send, the steady state. */
  steadyPerSecond: number;
}

/** When the phases' sends were recorded (sent_at, the database clock). */
export async function sendTimeline(
  db: Kysely<Database>,
  tag: string | string[],
): Promise<SendTimeline> {
  const patterns = (Array.isArray(tag) ? tag : [tag]).map((t) => `${t}-%`);
  const rows = await db
    .selectFrom('notifications')
    .select('sent_at')
    .where(sql<boolean>`request_id like any(${sql.val(patterns)}::text[])`)
    .where('sent_at', 'is not', null)
    .execute();
  const times = rows.map((r) => r.sent_at!.getTime());
  const p10 = percentile(times, 10);
  const p90 = percentile(times, 90);
  return {
    sent: times.length,
    firstSentAt: times.length ? Math.min(...times) : Number.NaN,
    lastSentAt: times.length ? Math.max(...times) : Number.NaN,
    steadyPerSecond: p90 > p10 ? (0.8 * times.length) / ((p90 - p10) / 1000) : Number.NaN,
  };
}

export interface WorkerPathFigures {
  /** Statements the worker's pool sent, per notification recorded as sent. */
  queriesPerNotification: number;
  queries: number;
  notifications: number;
  batches: number;
  /** Messages per batch on average (redeliveries included). */
  meanBatchSize: number;
  /** Wall time inside the handler per batch, ms. */
  meanHandlerMs: number;
  byStatement: Record<string, number>;
  cpuMs: number;
}

/** The worker's counters between two readings, per notification. */
export function workerPathFigures(
  before: WorkerStats,
  after: WorkerStats,
  notifications: number,
): WorkerPathFigures {
  const byStatement: Record<string, number> = {};
  for (const [shape, count] of Object.entries(after.byStatement)) {
    const delta = count - (before.byStatement[shape] ?? 0);
    if (delta > 0) byStatement[shape] = delta;
  }
  const queries = after.queries - before.queries;
  const batches = after.invocations - before.invocations;
  const messages = after.records - before.records;
  return {
    queriesPerNotification: notifications ? queries / notifications : Number.NaN,
    queries,
    notifications,
    batches,
    meanBatchSize: batches ? messages / batches : Number.NaN,
    meanHandlerMs: batches ? (after.handlerMs - before.handlerMs) / batches : Number.NaN,
    byStatement,
    cpuMs:
      (after.cpuUserMicros +
        after.cpuSystemMicros -
        before.cpuUserMicros -
        before.cpuSystemMicros) /
      1000,
  };
}

/** Rows of a phase by status, and the reasons of those not finished: what a timeout left behind. */
export async function unfinishedRows(
  db: Kysely<Database>,
  tag: string | string[],
): Promise<Record<string, number>> {
  const patterns = (Array.isArray(tag) ? tag : [tag]).map((t) => `${t}-%`);
  const rows = await sql<{ key: string; n: string }>`
    select status || coalesce(':' || status_reason, '') || coalesce(':' || error_class, '') as key,
      count(*) as n
    from notifications
    where request_id like any(${sql.val(patterns)}::text[])
      and status not in ('sent', 'delivered', 'read')
    group by 1 order by 2 desc`.execute(db);
  return Object.fromEntries(rows.rows.map((r) => [r.key, Number(r.n)]));
}
