/**
 * Factories for the delivery-control tests (rate limits, panic mode, rollout, priorities, the
 * scheduler) on the real local parts: senders, numbers and rollouts of a test's own, notifications
 * made through the real API app, the worker as Lambda's event source would run it, SQS sends
 * recorded on their way out, and the locks that keep this suite's files out of each other's rows.
 */
import { randomUUID } from 'node:crypto';
import type { Metrics } from '@aws-lambda-powertools/metrics';
import { type Message, ReceiveMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { SQSEvent } from 'aws-lambda';
import { type Kysely, sql } from 'kysely';
import type { Database, NotificationRow } from '#core/db/schema.ts';
import type { DeliveryDeps } from '#core/delivery/deliver-batch.ts';
import { ensureSender } from '#core/delivery/panic-mode.ts';
import { getRollout, type Rollout } from '#core/delivery/rollout.ts';
import {
  runScheduler,
  type SchedulerDeps,
  type SchedulerOptions,
  type SchedulerReport,
} from '#core/delivery/scheduler.ts';
import { createWorkerDeps } from '#core/delivery/worker-deps.ts';
import type { Priority } from '#core/model/notification-request.ts';
import { deleteMessages } from '#core/platform/sqs.ts';
import type { GraphClient } from '#core/whatsapp/graph-client.ts';
import type { SqsHandler } from '../../bin/local/sqs-event-source.ts';
import type { SandboxHandle, SandboxOptions } from '../../bin/sandbox/server.ts';
import { deliverSqsBatch } from '../../lambdas/worker/records.ts';
import { apiEvent, createTestClient, testApiApp, testSqsClient } from './api.ts';
import {
  createTestQueues,
  deleteTestQueues,
  runWorkerPass,
  sandboxGraphClient,
  startTestSandbox,
  TEST_WORKER_SETTINGS,
  type TestQueue,
  type WorkerPass,
} from './delivery.ts';
import { silentLogger, testMetrics } from './observability.ts';

export { recordingLogger, recordingMetrics } from './observability.ts';
export { digits, uniqueMobile } from './phones.ts';

// ------------------------------------------------------------------ ids and numbers

/** A sender (sending phone number id) of the test's own: its bucket and circuit are nobody else's. */
export function uniqueSenderId(label = 'sender'): string {
  return `test-dc-${label}-${randomUUID().slice(0, 12)}`;
}

// ------------------------------------------------------------------ rollout and gates

/** A rollout that lets everything through at a generous rate; the test overrides what it studies. */
export function testRollout(overrides: Partial<Rollout> = {}): Rollout {
  return {
    deliveryEnabled: true,
    dryRun: false,
    pilotPrefixes: [],
    ratePerSecond: 1_000,
    rateByHand: true,
    perMinuteCap: null,
    dailyCap: null,
    recipientSpacingSeconds: 0,
    drainPerSecond: 10,
    updatedAt: new Date().toISOString(),
    updatedBy: 'test',
    ...overrides,
  };
}

/**
 * The `rollout` function databaseGates takes, answering `rollout` without touching the global
 * `rollout_settings` row (which every parallel test file shares).
 */
export function injectedRollout(rollout: Rollout): () => Promise<Rollout> {
  return async () => rollout;
}

// ------------------------------------------------------------------ the API

export interface NotifyOptions {
  priority?: Priority;
  sendAt?: Date;
}

export interface NotificationMaker {
  /** POST /v1/notifications through the real API app; returns the notification id. */
  notify(to: string, options?: NotifyOptions): Promise<string>;
  /** Many at once, `parallel` requests in flight; ids in the order of `recipients`. */
  notifyMany(
    recipients: readonly string[],
    options?: NotifyOptions,
    parallel?: number,
  ): Promise<string[]>;
}

/**
 * The real API app with an API client of its own, putting ids on `queueUrls`. A queue URL that does
 * not exist leaves the rows `accepted`, as when SQS is down: what the outbox sweep is for.
 */
export async function notificationMaker(
  db: Kysely<Database>,
  sqs: SQSClient,
  queueUrls: Record<Priority, string>,
): Promise<NotificationMaker> {
  const { key } = await createTestClient(db);
  const api = testApiApp(db, { sqs, queue: { sqs, queueUrls } });
  const notify = async (to: string, options: NotifyOptions = {}) => {
    const response = await api(
      apiEvent({
        method: 'POST',
        path: '/v1/notifications',
        headers: { 'X-API-Key': key },
        body: {
          to,
          template: { name: 'hello_world', language: 'en_US' },
          ...(options.priority ? { priority: options.priority } : {}),
          ...(options.sendAt ? { sendAt: options.sendAt.toISOString() } : {}),
        },
      }),
    );
    if (response.statusCode !== 202) {
      throw new Error(`POST /v1/notifications answered ${response.statusCode}: ${response.body}`);
    }
    return (JSON.parse(response.body) as { id: string }).id;
  };
  return {
    notify,
    async notifyMany(recipients, options = {}, parallel = 16) {
      const ids: string[] = new Array(recipients.length);
      let next = 0;
      const lane = async () => {
        while (next < recipients.length) {
          const index = next++;
          ids[index] = await notify(recipients[index]!, options);
        }
      };
      await Promise.all(Array.from({ length: Math.min(parallel, recipients.length) }, lane));
      return ids;
    },
  };
}

/** A queue URL on the emulator that names no queue: every send to it fails. */
export function missingQueueUrl(): string {
  return `${process.env.SQS_ENDPOINT}/000000000000/test-dc-missing-${randomUUID().slice(0, 8)}`;
}

// ------------------------------------------------------------------ rows

export async function readRows(
  db: Kysely<Database>,
  ids: readonly string[],
): Promise<Map<string, NotificationRow>> {
  if (ids.length === 0) return new Map();
  const rows = await db.selectFrom('notifications').selectAll().where('id', 'in', ids).execute();
  return new Map(rows.map((r) => [r.id, r]));
}

export async function statusesOf(
  db: Kysely<Database>,
  ids: readonly string[],
): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const row of (await readRows(db, ids)).values()) {
    counts[row.status] = (counts[row.status] ?? 0) + 1;
  }
  return counts;
}

export async function readSender(db: Kysely<Database>, senderId: string) {
  return db
    .selectFrom('sender_state')
    .selectAll()
    .where('sender_id', '=', senderId)
    .executeTakeFirstOrThrow();
}

/**
 * Deletes a test sender's state row. Readiness (/v1/health) reports degraded while any sender's
 * circuit is open, so a test that opened one must not leave it behind for other files.
 */
export async function forgetSender(db: Kysely<Database>, senderId: string): Promise<void> {
  await db.deleteFrom('sender_state').where('sender_id', '=', senderId).execute();
}

export async function auditRows(db: Kysely<Database>, senderId: string, action?: string) {
  let query = db
    .selectFrom('audit_log')
    .selectAll()
    .where(sql<boolean>`detail->>'senderId' = ${senderId}`)
    .orderBy('id');
  if (action) query = query.where('action', '=', action);
  return query.execute();
}

// ------------------------------------------------------------------ the worker

/**
 * Runs worker passes on `queue` until every id in `ids` has been in a batch (or the deadline
 * passes); returns the passes. Messages of other ids are handled too, as the worker would.
 */
export async function passUntilSeen(
  deps: DeliveryDeps,
  queue: TestQueue,
  ids: readonly string[],
  timeoutMs = 60_000,
): Promise<WorkerPass[]> {
  const waiting = new Set(ids);
  const passes: WorkerPass[] = [];
  const deadline = Date.now() + timeoutMs;
  while (waiting.size > 0 && Date.now() < deadline) {
    const pass = await runWorkerPass(deps, queue, {
      minMessages: Math.min(waiting.size, 10),
      waitMs: 1_000,
    });
    passes.push(pass);
    for (const m of pass.messages) waiting.delete(m.Body ?? '');
  }
  if (waiting.size > 0) throw new Error(`${waiting.size} notifications never reached the worker`);
  return passes;
}

/** The worker Lambda's handler around `deps`, for startSqsEventSource. */
export function workerHandler(deps: DeliveryDeps, queueUrls: readonly string[]): SqsHandler {
  return (event: SQSEvent) => deliverSqsBatch(deps, event, queueUrls);
}

// ------------------------------------------------------------------ queues

export interface RecordedEntry {
  queueUrl: string;
  body: string;
  delaySeconds: number;
}

/**
 * An SQS client to the emulator that also records every message it sends (body and DelaySeconds),
 * in the order the sends were made: the real queue still gets them.
 */
export function recordingSqsClient(): { sqs: SQSClient; sent: RecordedEntry[] } {
  const sqs = testSqsClient();
  const sent: RecordedEntry[] = [];
  sqs.middlewareStack.add(
    (next, context) => async (args) => {
      const input = args.input as {
        QueueUrl?: string;
        MessageBody?: string;
        DelaySeconds?: number;
        Entries?: { MessageBody?: string; DelaySeconds?: number }[];
      };
      if (context.commandName === 'SendMessageBatchCommand') {
        for (const e of input.Entries ?? []) {
          sent.push({
            queueUrl: input.QueueUrl ?? '',
            body: e.MessageBody ?? '',
            delaySeconds: e.DelaySeconds ?? 0,
          });
        }
      } else if (context.commandName === 'SendMessageCommand') {
        sent.push({
          queueUrl: input.QueueUrl ?? '',
          body: input.MessageBody ?? '',
          delaySeconds: input.DelaySeconds ?? 0,
        });
      }
      return next(args);
    },
    { step: 'initialize', name: 'recordSends' },
  );
  return { sqs, sent };
}

export interface Receipt {
  message: Message;
  /** Date.now() when the receive that returned it answered. */
  receivedAt: number;
}

/**
 * Receives (and deletes) from `queueUrl` until `done(receipts)` holds or the deadline passes,
 * polling every 20 ms without long polls, so each receipt's time is when it first became visible
 * to within a poll.
 */
export async function receiveUntil(
  sqs: SQSClient,
  queueUrl: string,
  done: (receipts: readonly Receipt[]) => boolean,
  timeoutMs = 30_000,
): Promise<Receipt[]> {
  const receipts: Receipt[] = [];
  const deadline = Date.now() + timeoutMs;
  while (!done(receipts) && Date.now() < deadline) {
    const answer = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 0,
        MessageAttributeNames: ['All'],
      }),
    );
    const receivedAt = Date.now();
    const messages = answer.Messages ?? [];
    for (const message of messages) receipts.push({ message, receivedAt });
    if (messages.length > 0) {
      await deleteMessages(
        sqs,
        queueUrl,
        messages.map((m) => m.ReceiptHandle!),
      );
    } else {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
  return receipts;
}

// ------------------------------------------------------------------ the scheduler

/**
 * Scheduler dependencies for a test: its sleeps are instant and kept in `sleeps`, and it has the
 * time a Lambda with a generous timeout would have.
 */
export function testSchedulerDeps(
  input: Pick<SchedulerDeps, 'db' | 'queue' | 'whatsapp' | 'senderId'> & Partial<SchedulerDeps>,
): SchedulerDeps & { sleeps: number[] } {
  const sleeps: number[] = [];
  return {
    now: () => new Date(),
    sleep: async (ms) => {
      sleeps.push(ms);
    },
    remainingMs: () => 15 * 60_000,
    logger: silentLogger(),
    ...input,
    sleeps,
  };
}

/**
 * Options for a test's scheduler run. The defaults keep it off other files' rows as far as it can:
 * no look-ahead (only overdue scheduled rows), an outbox age nobody else's live rows reach, and no drain
 * (`runIntervalSeconds: 0` drains nothing); probes are instant with an injected sleep.
 */
export function schedulerOptions(overrides: Partial<SchedulerOptions> = {}): SchedulerOptions {
  return {
    probesPerRun: 3,
    probeIntervalMs: 15_000,
    graphCallMaxMs: 10_000,
    reserveMs: 25_000,
    tokenCheckIntervalMs: 3_600_000,
    healthCheckIntervalMs: 900_000,
    templateRefreshIntervalMs: 900_000,
    lookaheadSeconds: 0,
    outboxAgeSeconds: 3_600,
    runIntervalSeconds: 0,
    batchLimit: 500,
    piiRetentionDays: 90,
    auditRetentionDays: 365,
    ...overrides,
  };
}

/**
 * Runs the scheduler, and again while another run holds its advisory lock (another test file's,
 * since the lock is global): returns the first report of a run that did its work.
 */
export async function runSchedulerWhenFree(
  deps: SchedulerDeps,
  options: SchedulerOptions,
  timeoutMs = 60_000,
): Promise<SchedulerReport & { outcome: 'done' }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const report = await runScheduler(deps, options);
    if (report.outcome === 'done') return report;
    if (Date.now() > deadline) throw new Error('the scheduler lock stayed taken');
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

// ------------------------------------------------------------------ locks between this suite's files

/** Any constant; only this suite's files take it. */
const SUITE_LOCK_KEY = 7_362_019_500;

/**
 * Runs `fn` holding an advisory lock that this suite's files take while they have `deferred` rows
 * they assert on, or while their scheduler drains: the drain re-queues every deferred row in the
 * database, whoever parked it.
 */
export async function withSuiteLock<T>(db: Kysely<Database>, fn: () => Promise<T>): Promise<T> {
  return db.connection().execute(async (conn) => {
    await sql`select pg_advisory_lock(${SUITE_LOCK_KEY})`.execute(conn);
    try {
      return await fn();
    } finally {
      await sql`select pg_advisory_unlock(${SUITE_LOCK_KEY})`.execute(conn);
    }
  });
}

/**
 * Runs `fn` with a share lock on the global rollout row: no updateRollout (this suite's or another
 * file's) commits meanwhile, so what `fn` is given is what the scheduler reads.
 */
export async function holdingRollout<T>(
  db: Kysely<Database>,
  fn: (rollout: Rollout) => Promise<T>,
): Promise<T> {
  return db.transaction().execute(async (trx) => {
    await trx.selectFrom('rollout_settings').select('id').where('id', '=', 1).forShare().execute();
    return fn(await getRollout(trx));
  });
}

// ------------------------------------------------------------------ a worker behind the database gates

export interface GatedRig {
  sqs: SQSClient;
  queue: TestQueue;
  sandbox: SandboxHandle;
  graph: GraphClient;
  senderId: string;
  deps: DeliveryDeps;
  maker: NotificationMaker;
  /** Worker passes until every id has been in a batch. */
  passUntilSeen(ids: readonly string[]): Promise<WorkerPass[]>;
  stop(): Promise<void>;
}

/**
 * A queue (both priorities) and a sandbox of the test's own, and the worker's dependencies behind
 * databaseGates for a sender of its own, with the rollout injected rather than read from the table.
 */
export async function startGatedRig(
  db: Kysely<Database>,
  options: {
    rollout?: Partial<Rollout> | (() => Promise<Rollout>);
    failureThreshold?: number;
    /** Given to the gates, for tests of the PanicModeActive metric. */
    metrics?: Metrics;
    sandbox?: Partial<SandboxOptions>;
    deps?: Partial<DeliveryDeps>;
  } = {},
): Promise<GatedRig> {
  const sqs = testSqsClient();
  const queue = await createTestQueues(sqs, 'dc');
  const sandbox = await startTestSandbox(options.sandbox);
  const graph = sandboxGraphClient(sandbox, 2_000);
  const senderId = uniqueSenderId('rig');
  // A sender that has been idle: its bucket full. A fresh row starts empty and would hold back the
  // first batch as rate-limited, which is not what these tests study.
  await ensureSender(db, senderId);
  await db
    .updateTable('sender_state')
    .set({ tokens: 1_000, bucket_at: sql`now()` })
    .where('sender_id', '=', senderId)
    .execute();
  const rollout =
    typeof options.rollout === 'function'
      ? options.rollout
      : injectedRollout(testRollout(options.rollout));
  const deps: DeliveryDeps = {
    ...createWorkerDeps({
      db,
      sqs,
      whatsapp: graph,
      senderId,
      settings: {
        ...TEST_WORKER_SETTINGS,
        CIRCUIT_FAILURE_THRESHOLD: options.failureThreshold ?? 5,
      },
      rollout,
      // The top of the backoff: a retried message stays hidden for the rest of the test.
      random: () => 0.999,
      logger: silentLogger(),
      metrics: options.metrics ?? testMetrics(),
    }),
    ...options.deps,
  };
  const maker = await notificationMaker(db, sqs, { high: queue.url, bulk: queue.url });
  return {
    sqs,
    queue,
    sandbox,
    graph,
    senderId,
    deps,
    maker,
    passUntilSeen: (ids) => passUntilSeen(deps, queue, ids),
    async stop() {
      await forgetSender(db, senderId);
      await sandbox.stop();
      await graph.close();
      await deleteTestQueues(sqs, queue);
      sqs.destroy();
    },
  };
}
