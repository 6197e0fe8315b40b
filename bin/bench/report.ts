/**
 * The benchmark's results: the JSON shape written to bench-results/, the targets of DESIGN §10
 * judged against the figures, and the table printed at the end.
 */
import { MAX_BUNDLE_BYTES } from '../../lib/bundling.ts';
import type { BundleFigures } from './bundles.ts';
import { type CallbacksDeadFigures, callbacksDeadRows } from './callbacks-dead.ts';
import type { CeilingFigures } from './ceiling.ts';
import type { WorkerPathFigures } from './delivery.ts';
import type { EndToEndFigures, IngestFigures } from './ingest.ts';
import type { Latencies } from './stats.ts';

/** CPU time of each part of the pipeline over one phase. */
export interface CpuShare {
  wallMs: number;
  /** The stack's process: API, webhook, SQS emulator, sandbox, HTTP server (one event loop). */
  stackCpuMs: number;
  stackLoopUtilization: number;
  /** null when no worker ran. */
  workerCpuMs: number | null;
  postgresCpuMs: number | null;
  generatorCpuMs?: number;
  /** Every process on the machine, all cores (kernel interrupt work included). */
  machineCpuMs: number | null;
  /** Processes outside the benchmark's own family: other users' work that skews the figures. */
  others: { cpuMs: number; top: string[] } | null;
}

export interface DeliveryFigures {
  notifications: number;
  sent: number;
  workerConcurrency: number;
  /** Sends the worker can have in flight: pollers × batch size. */
  inFlightMax: number;
  webhooks: boolean;
  /** From the worker polling to the last recorded send. */
  elapsedMs: number;
  perSecond: number;
  steadyPerSecond: number;
  ratioToCeiling: number | null;
  timedOut: boolean;
  workerPath: WorkerPathFigures;
  /** Statements the stack process (the status webhooks) sent PostgreSQL per notification. */
  stackQueriesPerNotification: number;
  stackQueriesByShape: Record<string, number>;
  workerMaxRssBytes: number;
  cpu: CpuShare;
}

export interface IngestPhaseFigures {
  ingest: IngestFigures;
  /** Statements the API sent PostgreSQL per request (the handlers of the stack process). */
  apiQueriesPerRequest: number;
  apiQueriesByShape: Record<string, number>;
  cpu: CpuShare;
}

export interface BacklogFigures {
  rows: number;
  sent: number;
  elapsedMs: number;
  perSecond: number;
  timedOut: boolean;
}

export interface LivePhaseFigures {
  ingest: IngestFigures;
  endToEnd: EndToEndFigures;
  workerPath: WorkerPathFigures;
  cpu: CpuShare;
  e2eTimedOut: boolean;
}

export interface TargetVerdict {
  name: string;
  value: string;
  target: string;
  met: boolean | null;
}

export interface BenchResults {
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  machine: {
    cpus: number;
    cpuModel: string;
    node: string;
    platform: string;
    memoryBytes: number;
    /** 1-minute load average when the run started: other work on the machine skews the figures. */
    loadAverageAtStart: number;
  };
  options: Record<string, unknown>;
  bundles?: BundleFigures[];
  ceiling?: CeilingFigures;
  delivery?: DeliveryFigures;
  deliveryWithoutWebhooks?: DeliveryFigures;
  /** The delivery drain with the client's callback receiver dead, and without an endpoint. */
  callbacksDead?: CallbacksDeadFigures;
  /** The API alone (worker off), at the fixed rate and at saturation. */
  ingest?: IngestPhaseFigures;
  saturation?: IngestPhaseFigures;
  /** The API alone, closed loop, POST /v1/notifications/batch. */
  batch?: IngestPhaseFigures;
  /** The rows the API phases left queued, drained by the worker before the live phase. */
  backlog?: BacklogFigures;
  /** The fixed rate with the whole pipeline running. */
  live?: LivePhaseFigures;
  workerMaxRssBytes?: number;
  /** Other processes' CPU during the phases that run without the stack. */
  quietness?: Partial<
    Record<'bundles' | 'ceiling', { wallMs: number; othersCpuMs: number; top: string[] }>
  >;
  targets: TargetVerdict[];
}

const int = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a');
const dec = (n: number, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a');
const ms = (n: number) => (Number.isFinite(n) ? (n < 10 ? n.toFixed(1) : int(n)) : 'n/a');
const pct = (n: number) => (Number.isFinite(n) ? `${(100 * n).toFixed(1)} %` : 'n/a');
const kib = (n: number) => `${(n / 1024).toFixed(0)} KiB`;
const mib = (n: number) => `${(n / 1024 / 1024).toFixed(0)} MiB`;
const triple = (l: Latencies) => `${ms(l.p50)} / ${ms(l.p95)} / ${ms(l.p99)} ms`;

export function judgeTargets(r: Omit<BenchResults, 'targets'>): TargetVerdict[] {
  const verdicts: TargetVerdict[] = [];
  if (r.delivery) {
    verdicts.push({
      name: 'delivery throughput',
      value: `${int(r.delivery.perSecond)} /s`,
      target: '≥ 1,000 /s',
      met: r.delivery.perSecond >= 1000,
    });
    verdicts.push({
      name: 'delivery ÷ ceiling',
      value: r.delivery.ratioToCeiling === null ? 'n/a' : pct(r.delivery.ratioToCeiling),
      target: '≥ 50 %',
      met: r.delivery.ratioToCeiling === null ? null : r.delivery.ratioToCeiling >= 0.5,
    });
    verdicts.push({
      name: 'DB round trips / notification (worker)',
      value: dec(r.delivery.workerPath.queriesPerNotification, 2),
      target: '≤ 2',
      met: r.delivery.workerPath.queriesPerNotification <= 2,
    });
  }
  for (const [label, phase] of [
    ['API alone', r.ingest?.ingest],
    ['pipeline live', r.live?.ingest],
  ] as const) {
    if (!phase) continue;
    const p99 = phase.latencyMs.p99;
    const errors = phase.sent - phase.accepted;
    verdicts.push({
      name: `API p99 at ${phase.offeredRate} req/s, ${label}`,
      value: `${ms(p99)} ms${errors ? ` (${errors} not 202)` : ''}`,
      target: '< 50 ms',
      met: p99 < 50 && errors === 0,
    });
  }
  for (const b of r.bundles ?? []) {
    verdicts.push({
      name: `bundle ${b.name}`,
      value: kib(b.bytes),
      target: `< ${kib(MAX_BUNDLE_BYTES)}`,
      met: b.bytes < MAX_BUNDLE_BYTES,
    });
  }
  return verdicts;
}

/** CPU ms of processes outside the benchmark during a phase (other users' tests, builds…). */
export function othersCpuMs(cpu: CpuShare): number | null {
  return cpu.others?.cpuMs ?? null;
}

function cpuLine(label: string, cpu: CpuShare, machineCores: number): string {
  const share = (n: number | null | undefined) =>
    n === null || n === undefined ? 'n/a' : `${Math.round((100 * n) / cpu.wallMs)} %`;
  const worker = cpu.workerCpuMs === null ? '' : `, worker ${share(cpu.workerCpuMs)}`;
  return `  ${label}: stack process ${share(cpu.stackCpuMs)} (event loop busy ${Math.round(100 * cpu.stackLoopUtilization)} %)${worker}, postgres ${share(cpu.postgresCpuMs)}${cpu.generatorCpuMs !== undefined ? `, load generator ${share(cpu.generatorCpuMs)}` : ''}; other processes ${share(othersCpuMs(cpu))}; whole machine ${share(cpu.machineCpuMs)} of ${100 * machineCores} % over ${dec(cpu.wallMs / 1000)} s`;
}

export function renderTable(r: BenchResults): string {
  const rows: [string, string, string, string][] = [];
  const verdict = (met: boolean | null) => (met === null ? '' : met ? 'met' : 'NOT MET');
  const target = (name: string) => r.targets.find((t) => t.name === name);
  const add = (figure: string, value: string, targetName?: string) => {
    const t = targetName ? target(targetName) : undefined;
    rows.push([figure, value, t?.target ?? '', t ? verdict(t.met) : '']);
  };

  if (r.ceiling) {
    add(
      `ceiling: sandbox alone, real client, ${r.ceiling.concurrency} in flight`,
      `${int(r.ceiling.perSecond)} /s`,
    );
  }
  const d = r.delivery;
  if (d) {
    add(
      `delivery: ${int(d.notifications)} queued → sandbox, ${d.workerConcurrency} pollers/queue`,
      `${int(d.perSecond)} /s${d.timedOut ? ' (timed out)' : ''}`,
      'delivery throughput',
    );
    add(
      '  ratio to the ceiling',
      d.ratioToCeiling === null ? 'n/a' : pct(d.ratioToCeiling),
      'delivery ÷ ceiling',
    );
    add('  steady state (10th–90th percentile send)', `${int(d.steadyPerSecond)} /s`);
    add(
      `  DB round trips / notification (${dec(d.workerPath.meanBatchSize)} per batch)`,
      dec(d.workerPath.queriesPerNotification, 2),
      'DB round trips / notification (worker)',
    );
    add('  worker batch: handler time (mean)', `${ms(d.workerPath.meanHandlerMs)} ms`);
    add('  status webhooks: DB round trips / notification', dec(d.stackQueriesPerNotification, 2));
  }
  if (r.deliveryWithoutWebhooks) {
    const w = r.deliveryWithoutWebhooks;
    add(
      `  diagnostic: same drain, status webhooks off`,
      `${int(w.perSecond)} /s (${w.ratioToCeiling === null ? 'n/a' : pct(w.ratioToCeiling)})`,
    );
  }
  if (r.callbacksDead) {
    for (const [figure, value] of callbacksDeadRows(r.callbacksDead)) add(figure, value);
  }
  if (r.workerMaxRssBytes) add('worker peak RSS (whole run)', mib(r.workerMaxRssBytes));
  if (r.ingest) {
    const i = r.ingest.ingest;
    add(
      `ingest, API alone: ${i.offeredRate} req/s offered`,
      `${dec(i.acceptedPerSecond)} /s accepted`,
    );
    add(
      '  POST latency p50 / p95 / p99',
      triple(i.latencyMs),
      `API p99 at ${i.offeredRate} req/s, API alone`,
    );
    add('  DB round trips / request', dec(r.ingest.apiQueriesPerRequest, 2));
  }
  if (r.saturation) {
    const i = r.saturation.ingest;
    add(
      `ingest, API alone, saturation: ${i.connections} connections`,
      `${int(i.acceptedPerSecond)} /s accepted${i.sent - i.accepted ? `, ${i.sent - i.accepted} not 202` : ''}`,
    );
    add('  POST latency p50 / p95 / p99', triple(i.latencyMs));
  }
  if (r.batch) {
    const i = r.batch.ingest;
    add(
      `ingest, API alone, batches of ${i.batchSize}: ${i.connections} connections`,
      `${int(i.notificationsPerSecond)} /s accepted`,
    );
    add('  batch request latency p50 / p95 / p99', triple(i.latencyMs));
    add('  DB round trips / notification', dec(r.batch.apiQueriesPerRequest / i.batchSize, 2));
  }
  if (r.backlog) {
    add(
      `  their ${int(r.backlog.rows)} rows drained by the worker`,
      `${int(r.backlog.perSecond)} /s${r.backlog.timedOut ? ' (timed out)' : ''}`,
    );
  }
  const f = r.live;
  if (f) {
    const i = f.ingest;
    add(
      `live: ${i.offeredRate} req/s with worker and webhooks running`,
      `${dec(i.acceptedPerSecond)} /s accepted`,
    );
    add(
      '  POST latency p50 / p95 / p99',
      triple(i.latencyMs),
      `API p99 at ${i.offeredRate} req/s, pipeline live`,
    );
    add(
      `  end to end POST → read p50 / p95 / p99 (${f.endToEnd.read}/${f.endToEnd.accepted} read)`,
      triple(f.endToEnd.latencyMs),
    );
    add('    POST → send recorded', triple(f.endToEnd.postToSentMs));
    add('    send recorded → read (incl. simulated 300 ms)', triple(f.endToEnd.sentToReadMs));
    add(
      `  DB round trips / notification, live (${dec(f.workerPath.meanBatchSize)} per batch)`,
      dec(f.workerPath.queriesPerNotification, 2),
    );
  }
  for (const b of r.bundles ?? []) {
    add(
      `bundle ${b.name}: size; cold import (median of ${b.importMs.length})`,
      `${kib(b.bytes)}; ${ms(b.importMedianMs)} ms`,
      `bundle ${b.name}`,
    );
  }

  const widths = [0, 1, 2, 3].map((c) =>
    Math.max(...rows.map((row) => row[c]!.length), ['figure', 'value', 'target', ''][c]!.length),
  );
  const line = (cells: string[]) =>
    cells
      .map((cell, c) => (c === 1 ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!)))
      .join('  ')
      .trimEnd();
  const out = [
    `whatsapp-notif benchmark: ${r.machine.cpus} × ${r.machine.cpuModel}, Node ${r.machine.node}, ${r.startedAt}, ${dec(r.durationMs / 1000, 0)} s, load average ${dec(r.machine.loadAverageAtStart, 2)} at the start`,
    '',
    line(['figure', 'value', 'target', '']),
    line(widths.map((w) => '-'.repeat(w))),
    ...rows.map(line),
    '',
    'CPU by process (share of one core):',
  ];
  if (d) out.push(cpuLine('delivery', d.cpu, r.machine.cpus));
  if (r.deliveryWithoutWebhooks)
    out.push(cpuLine('delivery, webhooks off', r.deliveryWithoutWebhooks.cpu, r.machine.cpus));
  // The first round of each receiver: the CPU a dead one costs, and where.
  for (const run of (r.callbacksDead?.runs ?? []).filter((c) => c.round === 1)) {
    out.push(cpuLine(`callbacks-dead, ${run.receiver}`, run.delivery.cpu, r.machine.cpus));
  }
  if (r.ingest)
    out.push(cpuLine(`ingest ${r.ingest.ingest.offeredRate} req/s`, r.ingest.cpu, r.machine.cpus));
  if (r.saturation) out.push(cpuLine('ingest saturation', r.saturation.cpu, r.machine.cpus));
  if (r.batch) out.push(cpuLine('ingest batches', r.batch.cpu, r.machine.cpus));
  if (f) out.push(cpuLine(`live ${f.ingest.offeredRate} req/s`, f.cpu, r.machine.cpus));
  if (d) {
    const top = Object.entries(d.workerPath.byStatement)
      .slice(0, 8)
      .map(([shape, n]) => `${shape} ${dec(n / Math.max(1, d.workerPath.batches), 2)}`)
      .join(', ');
    out.push('', `worker statements per batch (delivery): ${top}`);
    const hooks = Object.entries(d.stackQueriesByShape)
      .slice(0, 6)
      .map(([shape, n]) => `${shape} ${dec(n, 2)}`)
      .join(', ');
    out.push(`status-webhook statements per notification (delivery): ${hooks}`);
  }
  if (r.ingest) {
    const api = Object.entries(r.ingest.apiQueriesByShape)
      .slice(0, 6)
      .map(([shape, n]) => `${shape} ${dec(n, 2)}`)
      .join(', ');
    out.push(`API statements per request (ingest): ${api}`);
  }
  const phases = [
    r.delivery,
    r.deliveryWithoutWebhooks,
    ...(r.callbacksDead?.runs ?? []).map((c) => c.delivery),
    r.ingest,
    r.saturation,
    r.batch,
    r.live,
  ];
  const quiet = Object.values(r.quietness ?? {});
  const busiest = Math.max(
    0,
    ...phases.map((p) => (p ? (othersCpuMs(p.cpu) ?? 0) / p.cpu.wallMs : 0)),
    ...quiet.map((q) => q.othersCpuMs / q.wallMs),
  );
  if (busiest > 0.25) {
    const tops = [
      ...phases.flatMap((p) => p?.cpu.others?.top ?? []),
      ...quiet.flatMap((q) => q.top),
    ];
    const culprits = [...new Set(tops.map((t) => t.replace(/ \d+ ms$/, '')))];
    out.push(
      '',
      `WARNING: other processes used up to ${Math.round(100 * busiest)} % of a core during a phase (${culprits.slice(0, 4).join(', ')}); the figures are skewed. Run again on a quiet machine.`,
    );
  }
  const missed = r.targets.filter((t) => t.met === false).length;
  out.push('', `targets: ${r.targets.length - missed} met, ${missed} not met`);
  return out.join('\n');
}
