/**
 * The worker as its own process, so a harness can SIGKILL it as Lambda kills a frozen or crashed
 * execution environment: the local SQS event sources with the real worker handler, configured by
 * the environment of a running local stack. The benchmark also runs it here, so its database round
 * trips and peak memory are the worker's alone.
 *
 * Environment: the stack's (DATABASE_URL, SQS_ENDPOINT, HIGH_QUEUE_URL, BULK_QUEUE_URL, WHATSAPP_*),
 * plus WORKER_CONCURRENCY (pollers per queue, default 2), WORKER_COUNT_QUERIES=1 to count the
 * statements the worker's database pool runs, WORKER_WAIT_SECONDS (long-poll wait) and
 * WORKER_BATCH_WINDOW_MS (the event source's batching window).
 *
 * IPC (when spawned with an IPC channel): sends {type:'ready'} once polling; answers
 * {type:'stats'} with a WorkerStats; {type:'stop'} stops polling after the batches in hand, then exits.
 */
import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import pg from 'pg';
import { createSqsClient } from '#core/platform/aws-clients.ts';
import { loadQueueConfig } from '#core/platform/config.ts';
import { shapeOfQueryCall } from '../bench/statement-shape.ts';
import {
  type EventSource,
  type SqsHandler,
  startSqsEventSource,
} from '../local/sqs-event-source.ts';

export interface WorkerStats {
  type: 'stats';
  pid: number;
  /** Statements sent to PostgreSQL by this process (0 unless WORKER_COUNT_QUERIES=1). */
  queries: number;
  /** The same, by the statement's shape (its first words), most frequent first. */
  byStatement: Record<string, number>;
  /** Batches handed to the handler, and the messages in them. */
  invocations: number;
  records: number;
  /** Wall time spent inside the handler, summed over batches. */
  handlerMs: number;
  handlerErrors: number;
  /** Peak resident set size of this process, bytes. */
  maxRssBytes: number;
  rssBytes: number;
  heapUsedBytes: number;
  heapTotalBytes: number;
  /** CPU time of this process, microseconds. */
  cpuUserMicros: number;
  cpuSystemMicros: number;
}

const concurrency = Number(process.env.WORKER_CONCURRENCY ?? 2);
const countQueries = process.env.WORKER_COUNT_QUERIES === '1';

let queries = 0;
const byStatement = new Map<string, number>();

if (countQueries) {
  // Kysely's PostgresDialect takes a client from the pool and calls client.query for every
  // statement (transactions' begin/commit included), so this counts every round trip.
  const original = pg.Client.prototype.query;
  pg.Client.prototype.query = function countedQuery(this: pg.Client, ...args: unknown[]) {
    queries += 1;
    const shape = shapeOfQueryCall(args);
    byStatement.set(shape, (byStatement.get(shape) ?? 0) + 1);
    return (original as (...a: unknown[]) => unknown).apply(this, args);
  } as typeof original;
}

const worker = await import('../../lambdas/worker/handler.ts');
// The worker's own way to its queues (SQS_ENDPOINT and the credentials come from the environment);
// not bin/local/sqs.ts, which would pull the emulator into a bundled worker.
const queueConfig = loadQueueConfig();
const sqs = createSqsClient(queueConfig);
let invocations = 0;
let records = 0;
let handlerErrors = 0;
let handlerMs = 0;
const handler: SqsHandler = async (event, context) => {
  invocations += 1;
  records += event.Records.length;
  const started = performance.now();
  try {
    return await (worker.handler as unknown as SqsHandler)(event, context);
  } finally {
    handlerMs += performance.now() - started;
  }
};

const queueUrls = [queueConfig.HIGH_QUEUE_URL, queueConfig.BULK_QUEUE_URL];
const sources: EventSource[] = [];
for (const queueUrl of queueUrls) {
  const attributes = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }),
  );
  sources.push(
    startSqsEventSource({
      sqs,
      queueUrl,
      queueArn: attributes.Attributes!.QueueArn!,
      handler,
      concurrency,
      ...(process.env.WORKER_WAIT_SECONDS
        ? { waitSeconds: Number(process.env.WORKER_WAIT_SECONDS) }
        : {}),
      ...(process.env.WORKER_BATCH_WINDOW_MS
        ? { batchWindowMs: Number(process.env.WORKER_BATCH_WINDOW_MS) }
        : {}),
      onError: (error) => {
        handlerErrors += 1;
        console.error(`[worker ${process.pid}] batch failed: ${String(error)}`);
      },
    }),
  );
}

function stats(): WorkerStats {
  const usage = process.resourceUsage();
  return {
    type: 'stats',
    pid: process.pid,
    queries,
    byStatement: Object.fromEntries([...byStatement].sort((a, b) => b[1] - a[1])),
    invocations,
    records,
    handlerMs: Math.round(handlerMs),
    handlerErrors,
    // resourceUsage reports kilobytes.
    maxRssBytes: usage.maxRSS * 1024,
    ...(() => {
      const memory = process.memoryUsage();
      return {
        rssBytes: memory.rss,
        heapUsedBytes: memory.heapUsed,
        heapTotalBytes: memory.heapTotal,
      };
    })(),
    cpuUserMicros: usage.userCPUTime,
    cpuSystemMicros: usage.systemCPUTime,
  };
}

async function stop() {
  await Promise.all(sources.map((s) => s.stop()));
  sqs.destroy();
  process.exit(0);
}

process.on('message', (message: { type?: string }) => {
  if (message?.type === 'stats') process.send?.(stats());
  if (message?.type === 'reset') {
    queries = 0;
    byStatement.clear();
    invocations = 0;
    records = 0;
    handlerMs = 0;
    handlerErrors = 0;
  }
  if (message?.type === 'stop') void stop();
});
process.on('SIGTERM', () => void stop());
// A harness that dies must not leave an orphan polling its queues.
process.on('disconnect', () => void stop());
process.send?.({ type: 'ready', pid: process.pid });
