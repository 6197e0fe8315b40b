/**
 * `npm run bench`: runs the local stack and measures, in one run, the figures of DESIGN §10 (the
 * sandbox's ceiling, delivery throughput, ingest latency, end to end, database round trips and
 * memory of the worker, Lambda bundles), prints them next to their targets and writes them as
 * JSON to bench-results/<timestamp>.json. `npm run bench -- --help` lists the knobs.
 */
import { createWriteStream, openSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import { cpus, loadavg, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Kysely } from 'kysely';
import { createDatabase } from '#core/db/connect.ts';
import type { Database } from '#core/db/schema.ts';
import { updateRollout } from '#core/delivery/rollout.ts';
import type { QueueTargets } from '#core/notifications/enqueue.ts';
import { WORKER_BATCH_SIZE } from '#core/notifications/queue-settings.ts';
import { bundleEntry, measureBundles } from './bench/bundles.ts';
import { measureCallbacksDead } from './bench/callbacks-dead.ts';
import { measureCeiling } from './bench/ceiling.ts';
import {
  seedQueuedNotifications,
  sendTimeline,
  unfinishedRows,
  waitForPhase,
  workerPathFigures,
} from './bench/delivery.ts';
import { endToEnd, ingestFigures, runLoad } from './bench/ingest.ts';
import { parseBenchOptions } from './bench/options.ts';
import {
  startMachineCpuMeter,
  startOthersMeter,
  startPostgresCpuMeter,
} from './bench/process-cpu.ts';
import { BENCH_APPLICATION_NAME, perUnit, startQueryCounter } from './bench/query-counter.ts';
import {
  type BenchResults,
  type CpuShare,
  type DeliveryFigures,
  type IngestPhaseFigures,
  judgeTargets,
  type LivePhaseFigures,
  renderTable,
} from './bench/report.ts';
import { startWorkerChild, WORKER_PROCESS_SCRIPT, type WorkerChild } from './chaos/worker-child.ts';
import type { WorkerStats } from './chaos/worker-process.ts';
import { localSqsClient } from './local/sqs.ts';
import { type LocalStack, startLocalStack } from './local/stack.ts';

const t0 = performance.now();
const options = parseBenchOptions(process.argv.slice(2), process.env);
const startedAt = new Date();
const stamp = startedAt.toISOString().replace(/[:.]/g, '-');
const outDir = resolve(options.outDir);
const runDir = join(outDir, stamp);
await mkdir(runDir, { recursive: true });

// The handlers log a JSON line per event to stdout, as in Lambda. They keep doing so (that cost is
// part of what is measured), into a file; the table goes to the real stdout, progress to stderr.
const logPath = join(runDir, 'stack.log');
const logStream = createWriteStream(logPath, { flags: 'a' });
const childOutput = openSync(logPath, 'a');
const printOut = process.stdout.write.bind(process.stdout);
const printErr = process.stderr.write.bind(process.stderr);
const toLog = ((chunk: string | Uint8Array, ...rest: never[]) =>
  logStream.write(chunk, ...rest)) as typeof process.stdout.write;
process.stdout.write = toLog;
process.stderr.write = toLog;
const progress = (line: string) =>
  printErr(`[bench ${((performance.now() - t0) / 1000).toFixed(0).padStart(3)} s] ${line}\n`);

// Never Meta: without an access token the stack plays Meta with its sandbox.
for (const name of ['WHATSAPP_ACCESS_TOKEN', 'WHATSAPP_API_URL', 'DATABASE_URL']) {
  delete process.env[name];
}
process.env.POWERTOOLS_LOG_LEVEL = options.logLevel;

const results: Omit<BenchResults, 'targets' | 'finishedAt' | 'durationMs'> = {
  startedAt: startedAt.toISOString(),
  machine: {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    memoryBytes: totalmem(),
    loadAverageAtStart: loadavg()[0] ?? 0,
  },
  options: { ...options, phases: [...options.phases] },
};
const needsStack = ['delivery', 'callbacks-dead', 'ingest', 'saturation', 'batch', 'live'].some(
  (p) => options.phases.has(p as never),
);
let failed = false;

// Other work on the machine skews every figure: wait (a while) for it to calm down.
await waitForQuietMachine();

try {
  // Bundles and the ceiling first, on a quiet machine.
  if (options.phases.has('bundles')) {
    progress('bundling the Lambda handlers and timing their cold imports');
    const others = startOthersMeter();
    const started = performance.now();
    results.bundles = await measureBundles(join(runDir, 'bundles'), options.coldStartRuns);
    results.quietness = { ...results.quietness, bundles: quietness(others, started) };
  }
  if (options.phases.has('ceiling')) {
    const concurrency = options.workerConcurrency * WORKER_BATCH_SIZE;
    progress(`ceiling: sandbox alone, ${concurrency} sends in flight, ${options.ceilingSeconds} s`);
    const others = startOthersMeter();
    const started = performance.now();
    results.ceiling = await measureCeiling(concurrency, options.ceilingSeconds * 1000);
    results.quietness = { ...results.quietness, ceiling: quietness(others, started) };
  }
  if (needsStack) await runStackPhases();
} catch (error) {
  failed = true;
  progress(`failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
}

const finishedAt = new Date();
const full: BenchResults = {
  ...results,
  finishedAt: finishedAt.toISOString(),
  durationMs: finishedAt.getTime() - startedAt.getTime(),
  targets: [],
};
full.targets = judgeTargets(full);
const jsonPath = join(outDir, `${stamp}.json`);
await writeFile(jsonPath, `${JSON.stringify(full, null, 2)}\n`);
await new Promise((done) => logStream.end(done));
printOut(`\n${renderTable(full)}\n\nfigures: ${jsonPath}\n`);
if (failed || options.keepData || options.profile) {
  printOut(`logs${options.profile ? ' and CPU profiles' : ''}: ${runDir}\n`);
} else {
  await rm(runDir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);

// ---------------------------------------------------------------------------------------------

function quietness(meter: ReturnType<typeof startOthersMeter>, started: number) {
  const others = meter.stop();
  return {
    wallMs: performance.now() - started,
    othersCpuMs: others?.cpuMs ?? 0,
    top: others?.top ?? [],
  };
}

async function waitForQuietMachine(): Promise<void> {
  const deadline = performance.now() + options.quietWaitSeconds * 1000;
  for (;;) {
    const meter = startOthersMeter();
    await new Promise((done) => setTimeout(done, 2000));
    const busy = meter.stop();
    if (busy === null) return;
    const share = busy.cpuMs / 2000;
    if (share < 0.2) return;
    if (performance.now() > deadline) {
      progress(`the machine stays busy (${Math.round(100 * share)} % of a core); measuring anyway`);
      return;
    }
    progress(
      `waiting for a quiet machine: ${Math.round(100 * share)} % of a core busy elsewhere (${busy.top.join(', ')})`,
    );
  }
}

async function runStackPhases(): Promise<void> {
  const workerScript =
    options.workerRuntime === 'bundle'
      ? await bundleEntry(WORKER_PROCESS_SCRIPT, join(runDir, 'bundles', 'worker-process.mjs'))
      : undefined;
  const dataDir = join(process.cwd(), '.local', `bench-${process.pid}`);
  await rm(dataDir, { recursive: true, force: true });
  const stackQueries = startQueryCounter();
  progress('starting the local stack (embedded PostgreSQL, SQS emulator, sandbox, handlers)');
  const stack = await startLocalStack({
    port: 0,
    dataDir,
    worker: false,
    log: (line) => logStream.write(`[local] ${line}\n`),
  });
  // The benchmark's own queries are named, so the count of the stack's statements leaves them out.
  const benchUrl = new URL(stack.databaseUrl);
  benchUrl.searchParams.set('application_name', BENCH_APPLICATION_NAME);
  const db = createDatabase({ DATABASE_URL: benchUrl.toString(), DB_POOL_MAX: 2 } as never);
  const sqs = localSqsClient(stack.sqsEndpoint);
  const queue: QueueTargets = {
    sqs,
    queueUrls: { high: stack.queueUrls.high, bulk: stack.queueUrls.bulk },
  };
  const workers: WorkerChild[] = [];
  const session = new Session();
  let maxRss = 0;
  const startWorker = async () => {
    const worker = startWorkerChild({
      // Short long-polls: a stopped worker's abandoned polls stay registered in the emulator until
      // their wait ends and would swallow the next phase's first messages (for the visibility
      // timeout, 3 min). Under load a receive returns as soon as messages are there either way.
      env: {
        ...process.env,
        WORKER_WAIT_SECONDS: '1',
        WORKER_BATCH_WINDOW_MS: String(options.batchWindowMs),
      },
      concurrency: options.workerConcurrency,
      countQueries: true,
      ...(workerScript ? { script: workerScript } : {}),
      output: childOutput,
      execArgv: options.profile ? ['--cpu-prof', `--cpu-prof-dir=${runDir}`] : [],
    });
    workers.push(worker);
    await worker.ready;
    return worker;
  };
  const stopWorker = async (worker: WorkerChild) => {
    await worker.stop();
    // Past the stopped worker's last long-poll (WORKER_WAIT_SECONDS), so it cannot take a message.
    await new Promise((done) => setTimeout(done, 1500));
  };
  const statsOf = async (worker: WorkerChild): Promise<WorkerStats> => {
    const stats = await worker.stats();
    if (!stats) throw new Error('the worker process did not answer');
    maxRss = Math.max(maxRss, stats.maxRssBytes);
    return stats;
  };
  try {
    // Meta's top tier, as the targets assume; recipients are distinct, so the 6 s spacing stays on.
    await updateRollout(db, { ratePerSecond: 1000 }, 'bench');
    const { client_id: clientId } = await db
      .selectFrom('api_keys')
      .select('client_id')
      .where('prefix', '=', stack.apiKeyPrefix)
      .executeTakeFirstOrThrow();
    if (options.profile) {
      session.connect();
      await session.post('Profiler.enable');
    }

    if (options.phases.has('delivery')) {
      const drained = await profiled('delivery', () =>
        drain({ stack, db, queue, clientId, tag: 'drain', prefix: '311' }),
      );
      results.delivery = drained.figures;
      await stopWorker(drained.worker);
    }
    // Before the API phases, which leave rows on the queue: each drain here starts from empty.
    if (options.phases.has('callbacks-dead')) {
      results.callbacksDead = await profiled('callbacks-dead', () =>
        measureCallbacksDead({
          db,
          clientId,
          notifications: options.notifications,
          rounds: options.callbackRounds,
          postTimeoutMs: Number(process.env.CALLBACK_TIMEOUT_MS),
          progress,
          drain: async (tag, prefix, label) => {
            const drained = await drain({ stack, db, queue, clientId, tag, prefix, label });
            await stopWorker(drained.worker);
            return drained.figures;
          },
        }),
      );
    }
    // The API alone: nothing else runs, the rows it accepts wait on the queue.
    const apiTags: string[] = [];
    if (options.phases.has('ingest')) {
      progress(`ingest, API alone: ${options.rate} req/s for ${options.rateSeconds} s`);
      results.ingest = await profiled('ingest', () => ingestPhase(stack, 'rate', 'alone', '313'));
      apiTags.push('alone', 'alonew');
    }
    if (options.phases.has('saturation')) {
      progress(
        `ingest, API alone, saturation: ${options.saturateConnections} connections for ${options.saturateSeconds} s`,
      );
      results.saturation = await profiled('saturation', () =>
        ingestPhase(stack, 'saturate', 'sat', '314'),
      );
      apiTags.push('sat', 'satw');
    }
    if (options.phases.has('batch')) {
      progress(
        `ingest, API alone, batches of ${options.batchSize}: ${options.batchConnections} connections for ${options.saturateSeconds} s`,
      );
      results.batch = await profiled('batch', () =>
        ingestPhase(stack, 'saturate', 'bat', '317', options.batchSize),
      );
      apiTags.push('bat', 'batw');
    }
    if (apiTags.length > 0 || options.phases.has('live')) {
      const worker = await startWorker();
      if (apiTags.length > 0) {
        const readyAt = Date.now();
        progress('draining what the API phases queued');
        const waited = await waitForPhase(
          db,
          apiTags,
          (p) => p.terminal >= p.total,
          Math.max(60_000, options.e2eWaitSeconds * 1000),
        );
        const timeline = await sendTimeline(db, apiTags);
        if (waited.timedOut) {
          progress(
            `backlog timed out; unfinished: ${JSON.stringify(await unfinishedRows(db, apiTags))}`,
          );
        }
        results.backlog = {
          rows: waited.progress.total,
          sent: timeline.sent,
          elapsedMs: timeline.lastSentAt - readyAt,
          perSecond: timeline.sent / ((timeline.lastSentAt - readyAt) / 1000),
          timedOut: waited.timedOut,
        };
      }
      if (options.phases.has('live')) {
        progress(
          `live: ${options.rate} req/s for ${options.rateSeconds} s with the worker running`,
        );
        results.live = await profiled('live', () => livePhase(db, stack, worker, 'live', '316'));
      }
      await statsOf(worker);
      await stopWorker(worker);
    }
    if (options.diagnostics && options.phases.has('delivery')) {
      stack.sandbox!.setWebhookUrl(undefined);
      const drained = await drain({ stack, db, queue, clientId, tag: 'nohook', prefix: '315' });
      results.deliveryWithoutWebhooks = drained.figures;
      await stopWorker(drained.worker);
    }
    results.workerMaxRssBytes = maxRss;
  } finally {
    if (options.profile) session.disconnect();
    for (const worker of workers) await worker.kill();
    // Quiet first: no webhook may be in flight when PostgreSQL goes, or a busy client errors.
    stack.sandbox?.setWebhookUrl(undefined);
    await new Promise((done) => setTimeout(done, 1000));
    await db.destroy();
    sqs.destroy();
    progress('stopping the local stack');
    await stack.stop();
    if (!options.keepData) await rm(dataDir, { recursive: true, force: true });
  }

  /** With --profile, a CPU profile of the stack process over one phase. */
  async function profiled<T>(name: string, run: () => Promise<T>): Promise<T> {
    if (!options.profile) return run();
    await session.post('Profiler.start');
    try {
      return await run();
    } finally {
      const { profile } = await session.post('Profiler.stop');
      await writeFile(join(runDir, `stack-${name}.cpuprofile`), JSON.stringify(profile));
    }
  }

  function meterCpu() {
    const elu = performance.eventLoopUtilization();
    const cpu = process.cpuUsage();
    const pg = startPostgresCpuMeter(join(dataDir, 'postgres'));
    const machine = startMachineCpuMeter();
    const others = startOthersMeter();
    const started = performance.now();
    return (workerBefore?: WorkerStats, workerAfter?: WorkerStats, generatorCpuMs?: number) => {
      const own = process.cpuUsage(cpu);
      const share: CpuShare = {
        wallMs: performance.now() - started,
        stackCpuMs: (own.user + own.system) / 1000,
        stackLoopUtilization: performance.eventLoopUtilization(elu).utilization,
        workerCpuMs:
          workerBefore && workerAfter
            ? (workerAfter.cpuUserMicros +
                workerAfter.cpuSystemMicros -
                workerBefore.cpuUserMicros -
                workerBefore.cpuSystemMicros) /
              1000
            : null,
        postgresCpuMs: pg.stop(),
        machineCpuMs: machine.stop(),
        others: others.stop(),
      };
      if (generatorCpuMs !== undefined) share.generatorCpuMs = generatorCpuMs;
      return share;
    };
  }

  async function drain(input: {
    stack: LocalStack;
    db: Kysely<Database>;
    queue: QueueTargets;
    clientId: string;
    tag: string;
    prefix: string;
    /** Names the drain in the progress lines. */
    label?: string;
  }): Promise<{ figures: DeliveryFigures; worker: WorkerChild }> {
    const webhooks = input.tag !== 'nohook';
    const label = input.label ?? 'delivery';
    progress(
      `${label}: queueing ${options.notifications} notifications${webhooks ? '' : ' (status webhooks off)'}`,
    );
    await seedQueuedNotifications({
      db: input.db,
      queue: input.queue,
      clientId: input.clientId,
      count: options.notifications,
      tag: input.tag,
      recipientPrefix: input.prefix,
    });
    progress(`${label}: worker draining with ${options.workerConcurrency} pollers per queue`);
    const worker = await startWorker();
    const readyAt = Date.now();
    const before = await statsOf(worker);
    const stackBefore = stackQueries.snapshot();
    const meter = meterCpu();
    const waited = await waitForPhase(
      input.db,
      input.tag,
      (p) => p.recorded >= p.total,
      Math.max(60_000, options.notifications * 20),
    );
    const after = await statsOf(worker);
    const cpu = meter(before, after);
    const timeline = await sendTimeline(input.db, input.tag);
    if (waited.timedOut) {
      progress(
        `delivery timed out; unfinished: ${JSON.stringify(await unfinishedRows(input.db, input.tag))}`,
      );
    }
    const elapsedMs = timeline.lastSentAt - readyAt;
    const perSecond = timeline.sent / (elapsedMs / 1000);
    progress(`${label}: ${timeline.sent} sent in ${(elapsedMs / 1000).toFixed(1)} s`);
    if (webhooks) {
      // Let the status webhooks of the drain finish before the next phase measures anything.
      await waitForPhase(input.db, input.tag, (p) => p.read >= p.recorded, 30_000);
    }
    // No API traffic in this phase: what the stack sent PostgreSQL is the status webhooks' work
    // (and the odd scheduler run).
    const stackPath = perUnit(stackBefore, stackQueries.snapshot(), timeline.sent);
    return {
      worker,
      figures: {
        notifications: options.notifications,
        sent: timeline.sent,
        workerConcurrency: options.workerConcurrency,
        inFlightMax: options.workerConcurrency * WORKER_BATCH_SIZE,
        webhooks,
        elapsedMs,
        perSecond,
        steadyPerSecond: timeline.steadyPerSecond,
        ratioToCeiling: results.ceiling ? perSecond / results.ceiling.perSecond : null,
        timedOut: waited.timedOut,
        workerPath: workerPathFigures(before, after, timeline.sent),
        stackQueriesPerNotification: stackPath.perUnit,
        stackQueriesByShape: stackPath.byShape,
        workerMaxRssBytes: after.maxRssBytes,
        cpu,
      },
    };
  }

  async function ingestPhase(
    stack: LocalStack,
    mode: 'rate' | 'saturate',
    tag: string,
    prefix: string,
    /** More than 1: POST /v1/notifications/batch over the batch phase's connections. */
    batchSize = 1,
  ): Promise<IngestPhaseFigures> {
    const meter = meterCpu();
    const queriesBefore = stackQueries.snapshot();
    const batch = batchSize > 1;
    const spec = loadSpec(stack, mode, tag, prefix);
    const load = await runLoad(
      batch ? { ...spec, batchSize, concurrency: options.batchConnections } : spec,
    );
    const cpu = meter(undefined, undefined, load.cpuMs);
    // Warm-up requests included: every request of the phase went through the same path.
    const api = perUnit(queriesBefore, stackQueries.snapshot(), load.sent + load.warmupSent);
    const connections = batch
      ? options.batchConnections
      : mode === 'saturate'
        ? options.saturateConnections
        : null;
    return {
      ingest: ingestFigures(load, connections, batchSize),
      apiQueriesPerRequest: api.perUnit,
      apiQueriesByShape: api.byShape,
      cpu,
    };
  }

  async function livePhase(
    db: Kysely<Database>,
    stack: LocalStack,
    worker: WorkerChild,
    tag: string,
    prefix: string,
  ): Promise<LivePhaseFigures> {
    const before = await statsOf(worker);
    const meter = meterCpu();
    const load = await runLoad(loadSpec(stack, 'rate', tag, prefix));
    const cpu = meter(before, await statsOf(worker), load.cpuMs);
    progress(`live: ${Object.keys(load.sentAt).length} accepted; waiting for them to be read`);
    const waited = await waitForPhase(
      db,
      tag,
      (p) => p.terminal >= p.total,
      options.e2eWaitSeconds * 1000,
    );
    const after = await statsOf(worker);
    const sent = (await sendTimeline(db, tag)).sent;
    return {
      ingest: ingestFigures(load, null),
      endToEnd: await endToEnd(db, tag, load.sentAt),
      workerPath: workerPathFigures(before, after, sent),
      cpu,
      e2eTimedOut: waited.timedOut,
    };
  }

  function loadSpec(stack: LocalStack, mode: 'rate' | 'saturate', tag: string, prefix: string) {
    return {
      baseUrl: stack.baseUrl,
      apiKey: stack.apiKey,
      mode,
      rate: options.rate,
      concurrency: options.saturateConnections,
      durationMs: (mode === 'rate' ? options.rateSeconds : options.saturateSeconds) * 1000,
      warmupMs: options.warmupSeconds * 1000,
      tag,
      recipientPrefix: prefix,
    };
  }
}
