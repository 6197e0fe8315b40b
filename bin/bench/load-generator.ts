/**
 * Child process of the benchmark's ingest phases: posts notifications to the local API with undici,
 * either at a fixed offered rate (open loop: each request has a due time, and its latency counts
 * from that time, so a slow server cannot hide its queueing) or as fast as N connections allow
 * (closed loop). Prints one JSON line of results.
 *
 * argv[2]: a JSON LoadSpec.
 */
import { performance } from 'node:perf_hooks';
import { Pool } from 'undici';

export interface LoadSpec {
  baseUrl: string;
  apiKey: string;
  mode: 'rate' | 'saturate';
  /** Requests per second (rate mode). */
  rate?: number;
  /** Concurrent requests (saturate mode); also the connection count. */
  concurrency?: number;
  durationMs: number;
  /**
   * The same load first for this long, not recorded (tagged `<tag>w`): the handlers' first
   * requests open database connections and warm the JIT, which is a cold start, not a steady state.
   */
  warmupMs?: number;
  /** X-Request-ID and Idempotency-Key prefix, so the rows of this phase can be found. */
  tag: string;
  /** Three digits after +57 that, with a 7-digit counter, give distinct Colombian mobiles. */
  recipientPrefix: string;
  /** More than 1: each request is a POST /v1/notifications/batch of this many notifications. */
  batchSize?: number;
}

export interface LoadResult {
  mode: LoadSpec['mode'];
  offeredRate: number | null;
  sent: number;
  /** Requests of the unrecorded warm-up. */
  warmupSent: number;
  elapsedMs: number;
  /** Answers per status code; 'error' for no answer. */
  statuses: Record<string, number>;
  /** From due time to full answer (rate mode), or from send to answer (saturate), ms, 202s only. */
  latencyMs: number[];
  /** From the actual send to the full answer, ms, 202s only. */
  serviceMs: number[];
  /** X-Request-ID → epoch ms when the request was due/sent, 202s only. */
  sentAt: Record<string, number>;
  /** The largest lag between a due time and the actual send (the generator's own health), ms. */
  maxSendLagMs: number;
  cpuMs: number;
  /** Notifications the answers accepted (one per 202 without batches; each batch's `accepted`). */
  notificationsAccepted: number;
}

const spec = JSON.parse(process.argv[2] ?? '{}') as LoadSpec;
const connections = spec.mode === 'rate' ? 64 : (spec.concurrency ?? 32);
const pool = new Pool(spec.baseUrl, { connections, pipelining: 1, keepAliveTimeout: 30_000 });
const statuses: Record<string, number> = {};
const latencyMs: number[] = [];
const serviceMs: number[] = [];
const sentAt: Record<string, number> = {};
let maxSendLagMs = 0;
let sequence = 0;
let notificationsAccepted = 0;
const batchSize = spec.batchSize ?? 1;
// performance.now() and Date.now() on one timeline, so due times convert to epoch ms.
const epochOffset = Date.now() - performance.now();

let warming = false;
let warmSequence = 0;

async function post(dueAt: number): Promise<void> {
  const n = warming ? 9_000_000 + warmSequence++ : sequence++;
  const requestId = warming ? `${spec.tag}w-${n}` : `${spec.tag}-${n}`;
  const started = performance.now();
  maxSendLagMs = Math.max(maxSendLagMs, started - dueAt);
  const notification = (m: number) => ({
    to: `+57${spec.recipientPrefix}${String(m % 10_000_000).padStart(7, '0')}`,
    template: { name: 'hello_world', language: 'en_US' },
  });
  const body = JSON.stringify(
    batchSize > 1
      ? {
          notifications: Array.from({ length: batchSize }, (_, i) => ({
            ...notification(n * batchSize + i),
            idempotencyKey: `${requestId}-${i}`,
          })),
        }
      : notification(n),
  );
  let status = 'error';
  let accepted = 0;
  try {
    const res = await pool.request({
      path: batchSize > 1 ? '/v1/notifications/batch' : '/v1/notifications',
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-api-key': spec.apiKey,
        ...(batchSize > 1 ? {} : { 'idempotency-key': requestId }),
        'x-request-id': requestId,
      },
      body,
    });
    status = String(res.statusCode);
    if (batchSize > 1) {
      const answer = (await res.body.json().catch(() => ({}))) as { accepted?: number };
      accepted = answer.accepted ?? 0;
    } else {
      await res.body.dump();
      accepted = status === '202' ? 1 : 0;
    }
  } catch {
    status = 'error';
  }
  const done = performance.now();
  if (warming) return;
  statuses[status] = (statuses[status] ?? 0) + 1;
  notificationsAccepted += accepted;
  if (status === '202') {
    latencyMs.push(done - dueAt);
    serviceMs.push(done - started);
    sentAt[requestId] = Math.round(epochOffset + dueAt);
  }
}

async function run(durationMs: number): Promise<number> {
  const t0 = performance.now();
  const end = t0 + durationMs;
  const inFlight = new Set<Promise<void>>();
  if (spec.mode === 'rate') {
    const interval = 1000 / (spec.rate ?? 200);
    let next = t0;
    // A 1 ms tick fires every request that has fallen due; none is skipped when a tick runs late.
    await new Promise<void>((resolve) => {
      const tick = () => {
        const now = performance.now();
        while (next <= now && next < end) {
          const p = post(next);
          inFlight.add(p);
          void p.finally(() => inFlight.delete(p));
          next += interval;
        }
        if (next >= end) resolve();
        else setTimeout(tick, Math.max(0, Math.min(1, next - performance.now())));
      };
      tick();
    });
  } else {
    await Promise.all(
      Array.from({ length: connections }, async () => {
        while (performance.now() < end) await post(performance.now());
      }),
    );
  }
  await Promise.all(inFlight);
  return t0;
}

if (spec.warmupMs) {
  warming = true;
  await run(spec.warmupMs);
  warming = false;
  maxSendLagMs = 0;
}
const cpu0 = process.cpuUsage();
const t0 = await run(spec.durationMs);
const elapsedMs = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);
await pool.close();
const result: LoadResult = {
  mode: spec.mode,
  offeredRate: spec.mode === 'rate' ? (spec.rate ?? 200) : null,
  sent: sequence,
  warmupSent: warmSequence,
  elapsedMs,
  statuses,
  latencyMs,
  serviceMs,
  sentAt,
  maxSendLagMs,
  cpuMs: (cpu.user + cpu.system) / 1000,
  notificationsAccepted,
};
process.stdout.write(`${JSON.stringify(result)}\n`);
