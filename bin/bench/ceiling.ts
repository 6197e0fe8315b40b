/**
 * The ceiling: what a fresh WhatsApp sandbox alone accepts per second from the real client
 * (`createGraphClient`, the worker's connection settings) in another process, with as many sends
 * in flight as the worker can have (pollers × batch size). No database, no queue, no webhooks.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { startSandbox } from '../sandbox/server.ts';
import type { CeilingResult } from './ceiling-client.ts';
import { type Latencies, summarize } from './stats.ts';

const CLIENT_SCRIPT = fileURLToPath(new URL('./ceiling-client.ts', import.meta.url));

export interface CeilingFigures {
  concurrency: number;
  perSecond: number;
  accepted: number;
  failed: number;
  latencyMs: Latencies;
  /** CPU of the client process and of the sandbox's process over the run, ms. */
  clientCpuMs: number;
  sandboxCpuMs: number;
  sandboxLoopUtilization: number;
  elapsedMs: number;
}

export async function measureCeiling(
  concurrency: number,
  durationMs: number,
): Promise<CeilingFigures> {
  const secrets = {
    accessToken: randomBytes(24).toString('hex'),
    appSecret: randomBytes(24).toString('hex'),
    phoneNumberId: '100000000000001',
  };
  const sandbox = await startSandbox(secrets);
  try {
    const elu = performance.eventLoopUtilization();
    const cpu = process.cpuUsage();
    const stdout = await new Promise<string>((resolve, reject) =>
      execFile(
        process.execPath,
        [
          CLIENT_SCRIPT,
          sandbox.url,
          secrets.phoneNumberId,
          secrets.accessToken,
          String(concurrency),
          String(durationMs),
        ],
        { maxBuffer: 256 * 1024 * 1024 },
        (error, out, err) => (error ? reject(new Error(err || error.message)) : resolve(out)),
      ),
    );
    const sandboxCpu = process.cpuUsage(cpu);
    const loop = performance.eventLoopUtilization(elu);
    const result = JSON.parse(stdout) as CeilingResult;
    return {
      concurrency,
      perSecond: result.perSecond,
      accepted: result.accepted,
      failed: result.failed,
      latencyMs: summarize(result.latencyMs),
      clientCpuMs: result.cpuMs,
      sandboxCpuMs: (sandboxCpu.user + sandboxCpu.system) / 1000,
      sandboxLoopUtilization: loop.utilization,
      elapsedMs: result.elapsedMs,
    };
  } finally {
    await sandbox.stop();
  }
}
