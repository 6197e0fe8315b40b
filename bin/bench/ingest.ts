/**
 * Ingest and end to end: a load generator in its own process posts to the local API (fixed rate or
 * saturation); afterwards the rows it created tell how long each took from its POST to `read`.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Kysely } from 'kysely';
import type { Database } from '#core/db/schema.ts';
import type { LoadResult, LoadSpec } from './load-generator.ts';
import { type Latencies, summarize } from './stats.ts';

const GENERATOR_SCRIPT = fileURLToPath(new URL('./load-generator.ts', import.meta.url));

export function runLoad(spec: LoadSpec): Promise<LoadResult> {
  return new Promise((resolve, reject) =>
    execFile(
      process.execPath,
      [GENERATOR_SCRIPT, JSON.stringify(spec)],
      { maxBuffer: 512 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error) reject(new Error(`load generator failed: ${stderr || error.message}`));
        else resolve(JSON.parse(stdout) as LoadResult);
      },
    ),
  );
}

export interface IngestFigures {
  mode: LoadResult['mode'];
  offeredRate: number | null;
  connections: number | null;
  sent: number;
  accepted: number;
  /** Accepted answers per second over the phase. */
  acceptedPerSecond: number;
  /** Notifications accepted per second (the same as answers without batches). */
  notificationsPerSecond: number;
  batchSize: number;
  statuses: Record<string, number>;
  /** Rate mode: from each request's due time; saturation: from its send. */
  latencyMs: Latencies;
  serviceMs: Latencies;
  maxSendLagMs: number;
  generatorCpuMs: number;
}

export function ingestFigures(
  result: LoadResult,
  connections: number | null,
  batchSize = 1,
): IngestFigures {
  const accepted = result.statuses['202'] ?? 0;
  return {
    mode: result.mode,
    offeredRate: result.offeredRate,
    connections,
    sent: result.sent,
    accepted,
    acceptedPerSecond: accepted / (result.elapsedMs / 1000),
    notificationsPerSecond: result.notificationsAccepted / (result.elapsedMs / 1000),
    batchSize,
    statuses: result.statuses,
    latencyMs: summarize(result.latencyMs),
    serviceMs: summarize(result.serviceMs),
    maxSendLagMs: result.maxSendLagMs,
    generatorCpuMs: result.cpuMs,
  };
}

export interface EndToEndFigures {
  /** Accepted notifications of the phase, and how many reached `read` in the wait. */
  accepted: number;
  read: number;
  /** POST (due time) → the row moved to `read` (its updated_at), ms. */
  latencyMs: Latencies;
  /** The two halves: POST → send recorded by the worker (queue, worker, Graph call)… */
  postToSentMs: Latencies;
  /** …and send recorded → read (the sandbox's simulated 300 ms, then the webhook path). */
  sentToReadMs: Latencies;
}

/**
 * POST → read per notification. The read time is the row's updated_at when it moved to `read`
 * (nothing moves a row out of `read`, so it stays put), not read_at, which carries Meta's
 * second-granular webhook timestamp.
 */
export async function endToEnd(
  db: Kysely<Database>,
  tag: string,
  sentAt: Record<string, number>,
): Promise<EndToEndFigures> {
  const rows = await db
    .selectFrom('notifications')
    .select(['request_id', 'status', 'updated_at', 'sent_at'])
    .where('request_id', 'like', `${tag}-%`)
    .execute();
  const latencies: number[] = [];
  const toSent: number[] = [];
  const toRead: number[] = [];
  for (const row of rows) {
    const posted = sentAt[row.request_id];
    if (posted === undefined || row.status !== 'read') continue;
    latencies.push(row.updated_at.getTime() - posted);
    if (row.sent_at) {
      toSent.push(row.sent_at.getTime() - posted);
      toRead.push(row.updated_at.getTime() - row.sent_at.getTime());
    }
  }
  return {
    accepted: Object.keys(sentAt).length,
    read: latencies.length,
    latencyMs: summarize(latencies),
    postToSentMs: summarize(toSent),
    sentToReadMs: summarize(toRead),
  };
}
