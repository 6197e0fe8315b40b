/**
 * Child process of the benchmark's ceiling phase: the real WhatsApp client (`createGraphClient`,
 * the worker's connection settings) sending template messages to a sandbox as fast as the given
 * number of concurrent callers allows, for a fixed time. Prints one JSON line with the counts.
 *
 * argv: <sandboxUrl> <phoneNumberId> <accessToken> <concurrency> <durationMs>
 */
import { performance } from 'node:perf_hooks';
import { createGraphClient } from '#core/whatsapp/graph-client.ts';

export interface CeilingResult {
  sent: number;
  accepted: number;
  failed: number;
  elapsedMs: number;
  perSecond: number;
  latencyMs: number[];
  cpuMs: number;
  maxRssBytes: number;
}

const [url, phoneNumberId, accessToken, concurrencyText, durationText] = process.argv.slice(2);
const concurrency = Number(concurrencyText);
const durationMs = Number(durationText);
const client = createGraphClient({
  apiUrl: url!,
  graphVersion: 'v25.0',
  phoneNumberId: phoneNumberId!,
  accessToken: accessToken!,
});

let accepted = 0;
let failed = 0;
let sequence = 0;
const latencies: number[] = [];
// A short warm-up opens the connections, as a worker that has been running has them open.
const warmUntil = performance.now() + 300;
while (performance.now() < warmUntil) {
  await Promise.all(
    Array.from({ length: concurrency }, () =>
      client.sendMessage({
        kind: 'template',
        to: '+573119999999',
        template: { name: 'hello_world', language: 'en_US' },
      }),
    ),
  );
}

const cpu0 = process.cpuUsage();
const started = performance.now();
const deadline = started + durationMs;
async function caller() {
  while (performance.now() < deadline) {
    const n = sequence++;
    const t = performance.now();
    const result = await client.sendMessage({
      kind: 'template',
      // Distinct recipients, as in the delivery phase.
      to: `+57312${String(n % 10_000_000).padStart(7, '0')}`,
      template: { name: 'hello_world', language: 'en_US' },
    });
    latencies.push(performance.now() - t);
    if (result.ok) accepted += 1;
    else failed += 1;
  }
}
await Promise.all(Array.from({ length: concurrency }, caller));
const elapsedMs = performance.now() - started;
const cpu = process.cpuUsage(cpu0);
await client.close();
const result: CeilingResult = {
  sent: accepted + failed,
  accepted,
  failed,
  elapsedMs,
  perSecond: accepted / (elapsedMs / 1000),
  latencyMs: latencies,
  cpuMs: (cpu.user + cpu.system) / 1000,
  maxRssBytes: process.resourceUsage().maxRSS * 1024,
};
process.stdout.write(`${JSON.stringify(result)}\n`);
