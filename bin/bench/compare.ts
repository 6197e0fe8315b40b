/**
 * Medians and spreads of several benchmark runs: `node bin/bench/compare.ts bench-results/A.json
 * bench-results/B.json …` prints each headline figure as median (min–max) over the runs.
 */
import { readFile } from 'node:fs/promises';
import type { BenchResults } from './report.ts';
import { median } from './stats.ts';

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error('usage: node bin/bench/compare.ts <results.json>…');
  process.exit(2);
}
const runs = await Promise.all(
  files.map(async (f) => JSON.parse(await readFile(f, 'utf8')) as BenchResults),
);

const figures: [string, (r: BenchResults) => number | undefined, number][] = [
  ['ceiling, sends/s', (r) => r.ceiling?.perSecond, 0],
  ['delivery, notifications/s', (r) => r.delivery?.perSecond, 0],
  ['delivery ÷ ceiling, %', (r) => (r.delivery?.ratioToCeiling ?? Number.NaN) * 100, 1],
  ['delivery steady state, /s', (r) => r.delivery?.steadyPerSecond, 0],
  ['delivery, webhooks off, /s', (r) => r.deliveryWithoutWebhooks?.perSecond, 0],
  [
    'DB round trips / notification (drain)',
    (r) => r.delivery?.workerPath.queriesPerNotification,
    2,
  ],
  ['DB round trips / notification (live)', (r) => r.live?.workerPath.queriesPerNotification, 2],
  ...(['answering', 'hanging', 'refused'] as const).map(
    (receiver) =>
      [
        `callback receiver ${receiver} ÷ none, throughput %`,
        (r: BenchResults) =>
          (r.callbacksDead?.summaries.find((s) => s.receiver === receiver)?.perSecondRatio ??
            Number.NaN) * 100,
        1,
      ] as [string, (r: BenchResults) => number | undefined, number],
  ),
  ['worker peak RSS, MiB', (r) => (r.workerMaxRssBytes ?? Number.NaN) / 1024 / 1024, 0],
  ['API alone p50, ms', (r) => r.ingest?.ingest.latencyMs.p50, 1],
  ['API alone p95, ms', (r) => r.ingest?.ingest.latencyMs.p95, 1],
  ['API alone p99, ms', (r) => r.ingest?.ingest.latencyMs.p99, 1],
  ['API saturation, req/s', (r) => r.saturation?.ingest.acceptedPerSecond, 0],
  ['API saturation p99, ms', (r) => r.saturation?.ingest.latencyMs.p99, 1],
  ['API live p50, ms', (r) => r.live?.ingest.latencyMs.p50, 1],
  ['API live p99, ms', (r) => r.live?.ingest.latencyMs.p99, 1],
  ['end to end p50, ms', (r) => r.live?.endToEnd.latencyMs.p50, 0],
  ['end to end p95, ms', (r) => r.live?.endToEnd.latencyMs.p95, 0],
  ['end to end p99, ms', (r) => r.live?.endToEnd.latencyMs.p99, 0],
];
for (const bundle of runs[0]?.bundles ?? []) {
  figures.push([
    `bundle ${bundle.name}, KiB`,
    (r) => (r.bundles?.find((b) => b.name === bundle.name)?.bytes ?? Number.NaN) / 1024,
    0,
  ]);
  figures.push([
    `bundle ${bundle.name} cold import, ms`,
    (r) => r.bundles?.find((b) => b.name === bundle.name)?.importMedianMs,
    0,
  ]);
}

const rows = figures
  .map(([name, pick, digits]) => {
    const values = runs.map(pick).filter((v): v is number => v !== undefined && Number.isFinite(v));
    if (values.length === 0) return undefined;
    const fmt = (v: number) => v.toFixed(digits);
    return [
      name,
      fmt(median(values)),
      `${fmt(Math.min(...values))}–${fmt(Math.max(...values))}`,
      values.map(fmt).join(' / '),
    ];
  })
  .filter((row): row is string[] => row !== undefined);
const header = ['figure', `median of ${runs.length}`, 'min–max', 'runs'];
const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)));
for (const row of [header, ...rows]) {
  console.log(
    row
      .map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!)))
      .join('  '),
  );
}
