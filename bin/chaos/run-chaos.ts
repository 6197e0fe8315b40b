/**
 * The fault run behind `npm run chaos` and test/chaos: the local stack under load while the sandbox
 * answers with 429s, 5xx, timeouts, slow answers and resets, the worker process is SIGKILLed at
 * random moments and restarted, and PostgreSQL is stopped and started once. When the faults stop
 * it lets everything finish (retries, the scheduler's probes and drains, an operator's DLQ redrive)
 * and then accounts for every notification: finished, still on its way, or lost; and for every
 * send the sandbox accepted twice, the crash that explains it.
 *
 * Every fault is placed by counting sends, not by the clock: on a machine busy with other work the
 * worker may make no send for seconds, and a window timed in seconds would then see no fault at
 * all. The clock only sets ceilings, so a run that cannot make progress still ends and reports.
 */
import { randomInt } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Logger } from '@aws-lambda-powertools/logger';
import {
  ReceiveMessageCommand,
  SetQueueAttributesCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { type Kysely, sql } from 'kysely';
import pg from 'pg';
import { Pool } from 'undici';
import { createDatabase } from '#core/db/connect.ts';
import type { Database } from '#core/db/schema.ts';
import { updateRollout } from '#core/delivery/rollout.ts';
import { DEFAULT_SCHEDULER_OPTIONS, runScheduler } from '#core/delivery/scheduler.ts';
import { queueDepth as depthOf, messagesOnQueue, moveMessage } from '#core/platform/sqs.ts';
import { createGraphClient } from '#core/whatsapp/graph-client.ts';
import { freePort } from '../local/free-port.ts';
import { type EmbeddedPostgresHandle, startEmbeddedPostgres } from '../local/postgres.ts';
import { localSqsClient } from '../local/sqs.ts';
import { type LocalStack, startLocalStack } from '../local/stack.ts';
import type { SandboxFault } from '../sandbox/faults.ts';
import { startWebhookTee, type WebhookTee } from './webhook-tee.ts';
import { startWorkerChild, type WorkerChild } from './worker-child.ts';

export interface ChaosOptions {
  /** Notifications posted to the API (each with its own Idempotency-Key and recipient). */
  notifications: number;
  /** Offered load, requests per second. */
  ratePerSecond: number;
  /**
   * How long the client retries one notification (same Idempotency-Key) before it gives up. A
   * request cut off after its insert answers 409 for 30 s (the first request may still be running).
   */
  clientRetryMs: number;
  /** Share of sends and probes the sandbox answers with a fault while the faults are on. */
  faultRate: number;
  faultKinds: SandboxFault[];
  /**
   * Each worker process is SIGKILLed once it has made a random number of sends in this range
   * (counted by the sandbox from when it polls), then restarted (null: never).
   */
  killEverySends: [number, number] | null;
  /**
   * Faults and kills stay on until every first request is out and at least this many sends have
   * failed because of an injected fault and this many workers have been killed.
   */
  faultsUntil: { failedSends: number; kills: number };
  /** Ceiling on the fault window; past it the faults stop and the report shows what fell short. */
  faultWindowMaxMs: number;
  /**
   * A burst of nothing but 5xx answers, starting once the sandbox has received this many sends: it
   * lasts until panic mode opens (the consecutive failures that open it are its count; at most
   * stormMaxMs), so the probes, the close and the drain are exercised even when a worker kill or
   * the PostgreSQL restart falls inside the burst.
   */
  stormAfterSends: number | null;
  stormMaxMs: number;
  /** PostgreSQL stops once the sandbox has received this many sends, and stays down this long. */
  postgresStopAfterSends: number | null;
  postgresDownMs: number;
  workerConcurrency: number;
  /**
   * The delivery queues' visibility timeout for the run. Deployed it is 180 s; a crashed batch
   * comes back after it, and the claim's age (35 s a worker can live, plus the grace for the status
   * webhook) decides when it is re-sent. 40 s keeps the run short; a returning message whose claim
   * is still in its grace is held back until the grace is over.
   */
  visibilityTimeoutSeconds: number;
  /** Longest wait for everything to finish once the faults stop. */
  settleTimeoutMs: number;
  /**
   * The worker's CLAIM_GRACE_SECONDS: how long a dead worker's claim waits for the sandbox's status
   * webhook before the row is sent again. Absent: the deployed default.
   */
  claimGraceSeconds?: number;
  /** The local stack's scheduler timer (it probes once per run while panic mode is on). */
  schedulerIntervalSeconds: number;
  /** Three digits after +57 for the recipients (distinct per notification). */
  recipientPrefix: string;
  dataDir: string;
  log: (line: string) => void;
}

/**
 * Why a notification was accepted twice: its worker was killed or PostgreSQL went away between the
 * send and its record (and the status did not settle the claim within the grace), or the answer
 * to an accepted send was lost (a client timeout under load) and the retry was claimed before the
 * send's status arrived.
 */
export type DuplicateCause = 'worker_killed' | 'postgres_restart' | 'answer_lost' | 'unexplained';

export interface DuplicateAttribution {
  recipient: string;
  notificationId: string;
  acceptedSends: number;
  /** Claims taken over from a `sending` claim that had gone stale. */
  staleReclaims: number;
  causes: DuplicateCause[];
  /** The row's transitions, for the unexplained ones: `from→to #attempt +ms since the first`. */
  history?: string[];
}

export interface ChaosReport {
  durationMs: number;
  requests: number;
  /** Keys that got a 202 (after retries with the same Idempotency-Key). */
  accepted: number;
  /** Keys that never got a 202; their rows, if any, are still accounted for below. */
  gaveUp: number;
  rows: number;
  byStatus: Record<string, number>;
  /** A 202 whose notification id has no row. Must be 0. */
  acceptedWithoutRow: number;
  /** Rows not in a final state, by what will move them: must all have a way forward. */
  unfinished: { status: string; wayForward: string; count: number }[];
  /** Rows with no message, no scheduler path and no final state. Must be 0. */
  lost: number;
  lostIds: string[];
  /** Messages found in the DLQs after the faults, moved back as an operator's redrive would. */
  redriven: number;
  sandbox: {
    /** Sends the sandbox had seen when the faults stopped, and how many it had rejected. */
    sendsDuringFaults: number;
    rejectedDuringFaults: number;
    sendsReceived: number;
    accepted: number;
    rejected: number;
    webhooksFailed: number;
    recipientsAttemptedMoreThanOnce: number;
  };
  workerKills: number;
  /** How the fault window ended: `counted` when every count was reached, else `ceiling`. */
  faultWindowEnded: 'counted' | 'ceiling';
  /** The worker process died by itself (e.g. an uncaught database error) and was restarted. */
  workerSelfExits: number;
  /**
   * Errors that would have crashed the stack process: a pooled PostgreSQL client that loses its
   * connection while checked out emits 'error' with no listener. The run catches and counts them.
   */
  stackUncaughtErrors: string[];
  postgresRestart: { stoppedAt: string; startedAt: string } | null;
  killTimes: string[];
  circuit: { opened: number; closed: number };
  duplicates: {
    /** Recipients the sandbox accepted more than one send for. */
    recipients: number;
    extraSends: number;
    attributed: { workerKilled: number; postgresRestart: number; answerLost: number };
    unexplained: number;
    /** Stale claims taken over, on the duplicated rows (from `attempts`; they leave no event). */
    staleReclaims: number;
    details: DuplicateAttribution[];
  };
  /**
   * Every claim a crash cut off before its worker recorded it (on any row, duplicated or not), by
   * how it ended: settled by the status webhook through the callback data (no second send), taken
   * over after the grace and sent again (it never reached the sandbox, or its status did not come
   * in time), or otherwise (deferred by panic mode, still open).
   */
  crashedClaims: {
    total: number;
    settledByWebhook: number;
    sentAgain: number;
    other: number;
    byCause: Record<'worker_killed' | 'postgres_restart', number>;
  };
}

const FINAL = new Set(['sent', 'delivered', 'read', 'failed', 'skipped']);

export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  const { log } = options;
  const started = Date.now();
  const stackErrors: string[] = [];
  // See ChaosReport.stackUncaughtErrors: counted, not fatal, so the run can judge the rest.
  const onUncaught = (error: Error) => {
    const code = (error as { code?: string }).code;
    if (code === '57P01' || code === 'ECONNRESET' || /Connection terminated/.test(error.message)) {
      stackErrors.push(`${code ?? error.name}: ${error.message}`);
      return;
    }
    throw error;
  };
  process.on('uncaughtException', onUncaught);

  await rm(options.dataDir, { recursive: true, force: true });
  const pgDir = join(options.dataDir, 'postgres');
  const pgPort = await freePort();
  let postgres: EmbeddedPostgresHandle | undefined = await startEmbeddedPostgres({
    dataDir: pgDir,
    port: pgPort,
  });
  await relaxDurability(postgres.url);

  // Short retries and timeouts so the run fits in minutes; the rules themselves are the real ones.
  Object.assign(process.env, {
    BACKOFF_BASE_SECONDS: '1',
    BACKOFF_CAP_SECONDS: '8',
    WHATSAPP_TIMEOUT_MS: '2000',
  });
  for (const name of ['WHATSAPP_ACCESS_TOKEN', 'WHATSAPP_API_URL']) delete process.env[name];

  let stack: LocalStack | undefined;
  let db: Kysely<Database> | undefined;
  let sqs: SQSClient | undefined;
  let worker: WorkerChild | undefined;
  let supervising = true;
  let supervisor: Promise<void> = Promise.resolve();
  let tee: WebhookTee | undefined;
  try {
    stack = await startLocalStack({
      port: 0,
      dataDir: options.dataDir,
      databaseUrl: postgres.url,
      worker: false,
      scheduler: true,
      schedulerIntervalSeconds: options.schedulerIntervalSeconds,
      log: (line) => log(`[local] ${line}`),
    });
    const sandbox = stack.sandbox!;
    db = createDatabase({ DATABASE_URL: postgres.url, DB_POOL_MAX: 4 } as never);
    const auditDb = db;
    /** Whether panic mode has opened in this run; false while PostgreSQL is down. */
    const circuitOpened = () =>
      sql`select 1 from audit_log where action = 'panic.enable' limit 1`
        .execute(auditDb)
        .then((result) => result.rows.length > 0)
        .catch(() => false);
    sqs = localSqsClient(stack.sqsEndpoint);
    for (const queueUrl of [stack.queueUrls.high, stack.queueUrls.bulk]) {
      await sqs.send(
        new SetQueueAttributesCommand({
          QueueUrl: queueUrl,
          Attributes: { VisibilityTimeout: String(options.visibilityTimeoutSeconds) },
        }),
      );
    }
    // Meta's top tier, and deferred rows drained as fast as the rollout allows.
    await updateRollout(db, { ratePerSecond: 1000, drainPerSecond: 1000 }, 'chaos');
    const { client_id: clientId } = await db
      .selectFrom('api_keys')
      .select('client_id')
      .where('prefix', '=', stack.apiKeyPrefix)
      .executeTakeFirstOrThrow();

    tee = await startWebhookTee(`${stack.baseUrl}/webhook/whatsapp`);
    sandbox.setWebhookUrl(tee.url);
    sandbox.setFaults({ rate: options.faultRate, kinds: options.faultKinds });
    log(
      `faults on: ${Math.round(options.faultRate * 100)} % of sends (${options.faultKinds.join(', ')})`,
    );

    // The worker, killed at random moments and restarted, as Lambda replaces a dead environment.
    const kills: number[] = [];
    let selfExits = 0;
    let killing = true;
    const workerEnv = {
      ...process.env,
      WORKER_WAIT_SECONDS: '1',
      ...(options.claimGraceSeconds === undefined
        ? {}
        : { CLAIM_GRACE_SECONDS: String(options.claimGraceSeconds) }),
    };
    const spawnWorker = () =>
      startWorkerChild({ env: workerEnv, concurrency: options.workerConcurrency });
    const sends = () => sandbox.stats().sendsReceived;
    supervisor = (async () => {
      while (supervising) {
        const current = spawnWorker();
        worker = current;
        const every = options.killEverySends;
        // Counted from the first poll, so a worker starved while starting is not killed idle.
        const ending =
          killing && every
            ? current.ready
                .then(async () => {
                  const due = sends() + randomInt(every[0], every[1] + 1);
                  await waitUntil(() => !killing || sends() >= due);
                  return killing ? 'due' : waitUntil(() => !supervising).then(() => 'end');
                })
                .catch(() => 'exited')
            : waitUntil(() => !supervising).then(() => 'end');
        const outcome = await Promise.race([current.exited.then(() => 'exited'), ending]);
        if (outcome === 'exited' && supervising) {
          selfExits += 1;
          log(`worker ${current.pid} exited by itself; restarting`);
        } else if (outcome === 'due') {
          kills.push(Date.now());
          await current.kill();
        }
      }
    })();

    // The load: a client that retries 5xx, 409 and network errors with the same Idempotency-Key.
    const loadStarted = Date.now();
    const windowCeiling = loadStarted + options.faultWindowMaxMs;
    let postgresRestart: ChaosReport['postgresRestart'] = null;
    const restart = (async () => {
      if (options.postgresStopAfterSends === null) return;
      const at = options.postgresStopAfterSends;
      await waitUntil(() => sends() >= at || Date.now() > windowCeiling);
      log(`stopping PostgreSQL after ${sends()} sends`);
      const stoppedAt = new Date();
      await postgres!.stop();
      postgres = undefined;
      await sleep(options.postgresDownMs);
      postgres = await startEmbeddedPostgres({ dataDir: pgDir, port: pgPort });
      postgresRestart = { stoppedAt: stoppedAt.toISOString(), startedAt: new Date().toISOString() };
      log('PostgreSQL is back');
    })();
    const storm = (async () => {
      if (options.stormAfterSends === null) return;
      const at = options.stormAfterSends;
      await waitUntil(() => sends() >= at || Date.now() > windowCeiling);
      log(`5xx storm after ${sends()} sends, until panic mode opens`);
      const failedBefore = sandbox.stats().faulted;
      sandbox.setFaults({ rate: 1, kinds: ['5xx'] });
      const stormStarted = Date.now();
      const stormEnd = stormStarted + options.stormMaxMs;
      while (Date.now() < stormEnd && !(await circuitOpened())) await sleep(100);
      log(
        `5xx storm over after ${Date.now() - stormStarted} ms, ${sandbox.stats().faulted - failedBefore} sends failed`,
      );
      sandbox.setFaults({ rate: options.faultRate, kinds: options.faultKinds });
    })();
    const load = postNotifications(stack, options);
    const counted = () =>
      sandbox.stats().faulted >= options.faultsUntil.failedSends &&
      kills.length >= options.faultsUntil.kills;
    await Promise.all([load.issued, restart, storm]);
    await waitUntil(() => counted() || Date.now() > windowCeiling);
    const faultWindowEnded = counted() ? 'counted' : 'ceiling';

    // Faults off; the last worker lives; everything is let to finish.
    killing = false;
    sandbox.setFaults({ rate: 0 });
    const duringFaults = sandbox.stats();
    log(
      `faults off (${faultWindowEnded}) after ${((Date.now() - loadStarted) / 1000).toFixed(1)} s: ${duringFaults.sendsReceived} sends so far, ${duringFaults.accepted} accepted, ${duringFaults.rejected} rejected (${duringFaults.faulted} by injected faults), ${kills.length} workers killed`,
    );
    // The client's retries (a request cut off by the restart is "in flight" for 30 s) finish calm.
    const outcomes = await load.done;
    log(
      `load done in ${((Date.now() - loadStarted) / 1000).toFixed(1)} s: ${outcomes.filter((o) => o.id).length}/${outcomes.length} accepted`,
    );
    log('faults off; letting retries, the scheduler and the queues finish');
    const schedulerDeps = {
      db,
      queue: { sqs, queueUrls: { high: stack.queueUrls.high, bulk: stack.queueUrls.bulk } },
      whatsapp: createGraphClient({
        apiUrl: sandbox.url,
        graphVersion: 'v25.0',
        phoneNumberId: process.env.WHATSAPP_PHONE_NUMBER_ID!,
        accessToken: process.env.WHATSAPP_ACCESS_TOKEN!,
      }),
      senderId: process.env.WHATSAPP_PHONE_NUMBER_ID!,
      now: () => new Date(),
      sleep: async () => {},
      remainingMs: () => Number.POSITIVE_INFINITY, // no Lambda deadline in a local run
      logger: new Logger({ serviceName: 'chaos', logLevel: 'SILENT' }),
    };
    const schedulerOptions = {
      ...DEFAULT_SCHEDULER_OPTIONS,
      // Nothing is in flight any more, so an `accepted` row older than this lost its enqueue.
      outboxAgeSeconds: 5,
      probeIntervalMs: 0,
    };
    let redriven = 0;
    const deadline = Date.now() + options.settleTimeoutMs;
    let unfinishedCount = Number.POSITIVE_INFINITY;
    while (Date.now() < deadline) {
      await sleep(2000);
      await runScheduler(schedulerDeps, schedulerOptions).catch((error: unknown) =>
        log(`scheduler run failed: ${String(error)}`),
      );
      unfinishedCount = await countUnfinished(db, clientId);
      const depth = await queueDepth(sqs, [stack.queueUrls.high, stack.queueUrls.bulk]);
      log(`settling: ${unfinishedCount} unfinished, ${depth} messages on the delivery queues`);
      if (unfinishedCount === 0) break;
      if (depth === 0) {
        // What is left may sit in a DLQ: move it back, as `ops` DLQ redrive does.
        const moved = await redrive(sqs, stack.queueUrls);
        if (moved > 0) log(`redrove ${moved} messages from the DLQs`);
        redriven += moved;
      }
    }
    // The last `sent` webhooks reach the tee: one per accepted send, unless the sandbox gave it up.
    const teeCeiling = Date.now() + 30_000;
    await waitUntil(() => {
      const s = sandbox.stats();
      return tee!.acceptedSends() >= s.accepted || s.webhooksFailed > 0 || Date.now() > teeCeiling;
    });
    supervising = false;

    // ---- the accounting
    const rows = await db
      .selectFrom('notifications')
      .select(['id', 'status', 'recipient', 'request_id'])
      .where('client_id', '=', clientId)
      .execute();
    const rowIds = new Set(rows.map((r) => r.id));
    const acceptedIds = outcomes.filter((o) => o.id).map((o) => o.id!);
    const acceptedWithoutRow = acceptedIds.filter((id) => !rowIds.has(id)).length;
    const byStatus: Record<string, number> = {};
    for (const row of rows) byStatus[row.status] = (byStatus[row.status] ?? 0) + 1;

    const depth = await queueDepth(sqs, [stack.queueUrls.high, stack.queueUrls.bulk]);
    const inDlq = await peekIds(sqs, [stack.queueUrls.highDlq, stack.queueUrls.bulkDlq]);
    const unfinishedRows = rows.filter((r) => !FINAL.has(r.status));
    const ways = new Map<string, number>();
    const lostIds: string[] = [];
    for (const row of unfinishedRows) {
      let way: string;
      if (row.status === 'deferred') way = 'scheduler drain';
      else if (row.status === 'accepted') way = 'scheduler outbox sweep';
      else if (row.status === 'scheduled') way = 'scheduler when due';
      else if (inDlq.has(row.id)) way = 'DLQ (redrive)';
      else if (depth > 0) way = 'message still on the delivery queue';
      else {
        way = 'NONE';
        lostIds.push(row.id);
      }
      const key = `${row.status}\u0000${way}`;
      ways.set(key, (ways.get(key) ?? 0) + 1);
    }

    const stats = sandbox.stats();
    const accepted = tee.acceptedByRecipient();
    const duplicates = await attributeDuplicates(db, rows, accepted, kills, postgresRestart);
    const crashedClaims = await crashedClaimOutcomes(db, clientId, kills, postgresRestart);
    const circuit = await sql<{ action: string; n: string }>`
      select action, count(*) as n from audit_log
      where action in ('panic.enable', 'panic.disable') group by action`.execute(db);
    const circuitCount = (action: string) =>
      Number(circuit.rows.find((r) => r.action === action)?.n ?? 0);

    return {
      durationMs: Date.now() - started,
      requests: outcomes.length,
      accepted: acceptedIds.length,
      gaveUp: outcomes.length - acceptedIds.length,
      rows: rows.length,
      byStatus,
      acceptedWithoutRow,
      unfinished: [...ways].map(([key, count]) => {
        const [status, wayForward] = key.split('\u0000') as [string, string];
        return { status, wayForward, count };
      }),
      lost: acceptedWithoutRow + lostIds.length,
      lostIds,
      redriven,
      sandbox: {
        sendsDuringFaults: duringFaults.sendsReceived,
        rejectedDuringFaults: duringFaults.rejected,
        sendsReceived: stats.sendsReceived,
        accepted: stats.accepted,
        rejected: stats.rejected,
        webhooksFailed: stats.webhooksFailed,
        recipientsAttemptedMoreThanOnce: Object.values(stats.byRecipient).filter((n) => n > 1)
          .length,
      },
      workerKills: kills.length,
      faultWindowEnded,
      killTimes: kills.map((k) => new Date(k).toISOString()),
      workerSelfExits: selfExits,
      stackUncaughtErrors: stackErrors,
      postgresRestart,
      circuit: { opened: circuitCount('panic.enable'), closed: circuitCount('panic.disable') },
      duplicates,
      crashedClaims,
    };
  } finally {
    supervising = false;
    await worker?.kill();
    await supervisor.catch(() => {});
    await worker?.kill();
    stack?.sandbox?.setWebhookUrl(undefined);
    await sleep(500);
    await tee?.stop().catch(() => {});
    await db?.destroy().catch(() => {});
    sqs?.destroy();
    await stack?.stop().catch(() => {});
    await postgres?.stop().catch(() => {});
    process.off('uncaughtException', onUncaught);
    await rm(options.dataDir, { recursive: true, force: true });
  }
}

/** A throwaway cluster that must survive a restart: no fsync on commit (the data stays). */
async function relaxDurability(url: string): Promise<void> {
  const client = new pg.Client(url);
  await client.connect();
  await client.query('alter system set synchronous_commit = off');
  await client.query('select pg_reload_conf()');
  await client.end();
}

async function waitUntil(condition: () => boolean): Promise<void> {
  while (!condition()) await sleep(100);
}

interface PostOutcome {
  key: string;
  id?: string;
  lastStatus: string;
  attempts: number;
}

/**
 * Posts the notifications at the offered rate; each retries until a 202 or `clientRetryMs` have
 * passed. `issued` resolves once every first attempt is out, `done` when all have an outcome.
 */
function postNotifications(
  stack: LocalStack,
  options: ChaosOptions,
): { issued: Promise<void>; done: Promise<PostOutcome[]> } {
  const pool = new Pool(stack.baseUrl, { connections: 64 });
  const interval = 1000 / options.ratePerSecond;
  const one = async (n: number): Promise<PostOutcome> => {
    const key = `chaos-${n}`;
    const body = JSON.stringify({
      to: `+57${options.recipientPrefix}${String(n).padStart(7, '0')}`,
      template: { name: 'hello_world', language: 'en_US' },
    });
    const giveUpAt = Date.now() + options.clientRetryMs;
    let lastStatus = 'none';
    for (let attempt = 1; ; attempt++) {
      try {
        const res = await pool.request({
          path: '/v1/notifications',
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'x-api-key': stack.apiKey,
            'idempotency-key': key,
            'x-request-id': key,
          },
          body,
        });
        const text = await res.body.text();
        lastStatus = String(res.statusCode);
        if (res.statusCode === 202) {
          return {
            key,
            id: (JSON.parse(text) as { id: string }).id,
            lastStatus,
            attempts: attempt,
          };
        }
        if (res.statusCode < 500 && res.statusCode !== 409) {
          return { key, lastStatus, attempts: attempt };
        }
      } catch (error) {
        lastStatus = (error as { code?: string }).code ?? 'network error';
      }
      if (Date.now() > giveUpAt) return { key, lastStatus, attempts: attempt };
      await sleep(Math.min(3000, 250 * attempt));
    }
  };
  const started = performance.now();
  const pending: Promise<PostOutcome>[] = [];
  const issued = (async () => {
    for (let n = 0; n < options.notifications; n++) {
      const due = started + n * interval;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      pending.push(one(n));
    }
  })();
  const done = issued.then(async () => {
    const outcomes = await Promise.all(pending);
    await pool.close();
    return outcomes;
  });
  return { issued, done };
}

async function countUnfinished(db: Kysely<Database>, clientId: string): Promise<number> {
  const row = await db
    .selectFrom('notifications')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .where('client_id', '=', clientId)
    .where('status', 'not in', [...FINAL] as never)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/** Messages on the queues: visible, in flight and delayed. */
async function queueDepth(sqs: SQSClient, queueUrls: string[]): Promise<number> {
  let total = 0;
  for (const queueUrl of queueUrls) total += messagesOnQueue(await depthOf(sqs, queueUrl));
  return total;
}

/** The ids waiting in the DLQs, read with a zero visibility timeout so they stay available. */
async function peekIds(sqs: SQSClient, queueUrls: string[]): Promise<Set<string>> {
  const ids = new Set<string>();
  for (const queueUrl of queueUrls) {
    for (let round = 0; round < 100; round++) {
      const { Messages = [] } = await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: queueUrl,
          MaxNumberOfMessages: 10,
          VisibilityTimeout: 0,
          WaitTimeSeconds: 0,
        }),
      );
      const before = ids.size;
      for (const m of Messages) if (m.Body) ids.add(m.Body.trim());
      if (Messages.length === 0 || ids.size === before) break;
    }
  }
  return ids;
}

/** Moves every DLQ message back to its source queue: what the operator's redrive does. */
async function redrive(sqs: SQSClient, urls: LocalStack['queueUrls']): Promise<number> {
  let moved = 0;
  for (const [dlq, source] of [
    [urls.highDlq, urls.high],
    [urls.bulkDlq, urls.bulk],
  ] as const) {
    for (;;) {
      const { Messages = [] } = await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: dlq,
          MaxNumberOfMessages: 10,
          WaitTimeSeconds: 0,
          MessageAttributeNames: ['All'],
        }),
      );
      if (Messages.length === 0) break;
      for (const message of Messages) await moveMessage(sqs, message, dlq, source);
      moved += Messages.length;
    }
  }
  return moved;
}

/**
 * For every recipient the sandbox accepted more than one send for, the crash that explains it: a
 * claim (`sending`) whose outcome was never recorded, because its worker was killed or PostgreSQL
 * went away between the send and the record, so a later delivery found the claim stale and sent
 * again. A stale re-claim leaves no event (the status stays `sending`; only `attempts` moves), so a
 * claim counts as unrecorded when the next event is not its own outcome.
 */
async function attributeDuplicates(
  db: Kysely<Database>,
  rows: { id: string; recipient: string }[],
  acceptedByRecipient: Map<string, number>,
  kills: number[],
  postgresRestart: ChaosReport['postgresRestart'],
): Promise<ChaosReport['duplicates']> {
  const byRecipient = new Map(rows.map((r) => [r.recipient.replace(/^\+/, ''), r.id]));
  const pgStop = postgresRestart ? Date.parse(postgresRestart.stoppedAt) : Number.NaN;
  // A claim's batch ends within the Graph timeout (2 s here) plus the database work; the crash that
  // cut it off is the first one within this window after the claim.
  const WINDOW_MS = 5_000;
  const details: DuplicateAttribution[] = [];
  let staleReclaims = 0;
  for (const [recipient, count] of acceptedByRecipient) {
    if (count < 2) continue;
    const id = byRecipient.get(recipient);
    const events = id
      ? await db
          .selectFrom('notification_events')
          .select(['from_status', 'to_status', 'attempt', 'error_class', 'at'])
          .where('notification_id', '=', id)
          .orderBy('id')
          .execute()
      : [];
    const attempts = id
      ? ((
          await db
            .selectFrom('notifications')
            .select('attempts')
            .where('id', '=', id)
            .executeTakeFirst()
        )?.attempts ?? 0)
      : 0;
    const visibleClaims = events.filter((e) => e.to_status === 'sending').length;
    const reclaims = Math.max(0, attempts - visibleClaims);
    staleReclaims += reclaims;
    const causes: DuplicateAttribution['causes'] = [];
    // Claims whose own outcome was a retry after no answer: one of them may have been accepted.
    let lostAnswers = 0;
    events.forEach((event, i) => {
      if (event.to_status !== 'sending') return;
      const next = events[i + 1];
      const claimedAt = event.at.getTime();
      // The claim's own outcome is written by its batch, within the window. A move out of this
      // `sending` long after (a stale claim deferred while panic mode is on, when its message came
      // back) means the batch never recorded one: the claim is unrecorded and a crash must explain it.
      const ownOutcome =
        next &&
        next.from_status === 'sending' &&
        next.attempt === event.attempt &&
        next.at.getTime() - claimedAt <= WINDOW_MS;
      if (ownOutcome) {
        if (
          (next.to_status === 'queued' || next.to_status === 'deferred') &&
          next.error_class === 'upstream'
        ) {
          lostAnswers += 1;
        }
        return;
      }
      const kill = kills.find((k) => k >= claimedAt && k <= claimedAt + WINDOW_MS);
      const restart = pgStop >= claimedAt && pgStop <= claimedAt + WINDOW_MS ? pgStop : undefined;
      if (kill !== undefined && (restart === undefined || kill < restart)) {
        causes.push('worker_killed');
      } else if (restart !== undefined) {
        causes.push('postgres_restart');
      }
    });
    // Crashes first; an extra send with no crash to explain it is a lost answer if one was retried.
    for (let n = 0; n < lostAnswers; n++) causes.push('answer_lost');
    const explained = causes.slice(0, count - 1);
    while (explained.length < count - 1) explained.push('unexplained');
    const history = id && explained.includes('unexplained') ? await historyOf(db, id) : undefined;
    details.push({
      recipient: `${recipient.slice(0, 2)}******${recipient.slice(-4)}`,
      notificationId: id ?? 'no row',
      acceptedSends: count,
      staleReclaims: reclaims,
      causes: explained,
      ...(history ? { history } : {}),
    });
  }
  const extra = details.flatMap((d) => d.causes);
  return {
    recipients: details.length,
    extraSends: extra.length,
    attributed: {
      workerKilled: extra.filter((c) => c === 'worker_killed').length,
      postgresRestart: extra.filter((c) => c === 'postgres_restart').length,
      answerLost: extra.filter((c) => c === 'answer_lost').length,
    },
    unexplained: extra.filter((c) => c === 'unexplained').length,
    staleReclaims,
    details,
  };
}

/**
 * Sorts every claim a crash cut off by how it ended. A claim is cut off when a kill or the
 * PostgreSQL stop falls within the window after it and the row's next event comes after that
 * crash (the worker recorded nothing before it died). Its end is the next event: the claim's own
 * attempt leaving `sending` for a status Meta reports is the webhook settling it; a new claim
 * (`sending → sending`, next attempt) is a send made again.
 */
async function crashedClaimOutcomes(
  db: Kysely<Database>,
  clientId: string,
  kills: number[],
  postgresRestart: ChaosReport['postgresRestart'],
): Promise<ChaosReport['crashedClaims']> {
  const WINDOW_MS = 5_000;
  const pgStop = postgresRestart ? Date.parse(postgresRestart.stoppedAt) : Number.NaN;
  const events = await db
    .selectFrom('notification_events as e')
    .innerJoin('notifications as n', 'n.id', 'e.notification_id')
    .select(['e.notification_id', 'e.from_status', 'e.to_status', 'e.attempt', 'e.at'])
    .where('n.client_id', '=', clientId)
    .orderBy('e.notification_id')
    .orderBy('e.id')
    .execute();
  const result: ChaosReport['crashedClaims'] = {
    total: 0,
    settledByWebhook: 0,
    sentAgain: 0,
    other: 0,
    byCause: { worker_killed: 0, postgres_restart: 0 },
  };
  const reported = new Set(['sent', 'delivered', 'read', 'failed']);
  events.forEach((event, i) => {
    if (event.to_status !== 'sending') return;
    const claimedAt = event.at.getTime();
    const kill = kills.find((k) => k >= claimedAt && k <= claimedAt + WINDOW_MS);
    const stop = pgStop >= claimedAt && pgStop <= claimedAt + WINDOW_MS ? pgStop : undefined;
    const crashAt = Math.min(kill ?? Number.POSITIVE_INFINITY, stop ?? Number.POSITIVE_INFINITY);
    if (!Number.isFinite(crashAt)) return;
    const candidate = events[i + 1];
    const next = candidate?.notification_id === event.notification_id ? candidate : undefined;
    if (next && next.at.getTime() < crashAt) return; // recorded by its worker before the crash
    result.total += 1;
    result.byCause[crashAt === kill ? 'worker_killed' : 'postgres_restart'] += 1;
    if (next?.from_status === 'sending' && next.to_status === 'sending') result.sentAgain += 1;
    else if (
      next?.from_status === 'sending' &&
      next.attempt === event.attempt &&
      reported.has(next.to_status)
    ) {
      result.settledByWebhook += 1;
    } else result.other += 1;
  });
  return result;
}

async function historyOf(db: Kysely<Database>, id: string): Promise<string[]> {
  const events = await db
    .selectFrom('notification_events')
    .select(['from_status', 'to_status', 'attempt', 'error_class', 'at'])
    .where('notification_id', '=', id)
    .orderBy('id')
    .execute();
  const first = events[0]?.at.getTime() ?? 0;
  return events.map(
    (e) =>
      `${e.from_status ?? '∅'}→${e.to_status} #${e.attempt}${e.error_class ? ` ${e.error_class}` : ''} +${e.at.getTime() - first}ms @${e.at.toISOString().slice(11, 23)}`,
  );
}
