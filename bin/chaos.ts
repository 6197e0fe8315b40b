/**
 * `npm run chaos`: a few thousand notifications through the local stack while the sandbox injects
 * faults, the worker process is killed at random and PostgreSQL restarts once; then an account of
 * every notification and every duplicate send. Exits 1 when one is lost or a duplicate has no
 * crash (or lost answer) to explain it. Flags: --notifications N (3000), --rate R (100/s), --fault-rate F (0.1: one
 * send in ten gets a 429, a 5xx, a timeout, a slow answer or a reset), --seconds-to-settle S (240).
 */
import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { type ChaosReport, runChaos } from './chaos/run-chaos.ts';
import { SANDBOX_FAULTS } from './sandbox/faults.ts';

const { values } = parseArgs({
  options: {
    notifications: { type: 'string' },
    rate: { type: 'string' },
    'fault-rate': { type: 'string' },
    'seconds-to-settle': { type: 'string' },
  },
});
const notifications = Number(values.notifications ?? process.env.CHAOS_NOTIFICATIONS ?? 3000);
const rate = Number(values.rate ?? process.env.CHAOS_RATE ?? 100);
const faultRate = Number(values['fault-rate'] ?? process.env.CHAOS_FAULT_RATE ?? 0.1);
// Room for a claim cut off just before the faults stop: it waits the worker's lifetime and the
// grace (155 s by default) before it is sent again.
const settleSeconds = Number(values['seconds-to-settle'] ?? 240);

// The handlers' JSON log lines go to a file; the report to the terminal.
const outDir = resolve('bench-results');
await mkdir(outDir, { recursive: true });
const stamp = new Date().toISOString().replace(/[:.]/g, '-');
const logPath = join(outDir, `chaos-${stamp}.log`);
const logFile = createWriteStream(logPath);
const print = process.stdout.write.bind(process.stdout);
const printErr = process.stderr.write.bind(process.stderr);
const toLog = ((chunk: string | Uint8Array, ...rest: never[]) =>
  logFile.write(chunk, ...rest)) as typeof process.stdout.write;
process.stdout.write = toLog;
process.stderr.write = toLog;
const t0 = Date.now();
const log = (line: string) => {
  logFile.write(`${line}\n`);
  if (!line.startsWith('[local]')) {
    printErr(`[chaos ${((Date.now() - t0) / 1000).toFixed(0).padStart(3)} s] ${line}\n`);
  }
};

const loadMs = (notifications / rate) * 1000;
const report: ChaosReport = await runChaos({
  notifications,
  ratePerSecond: rate,
  clientRetryMs: 40_000,
  faultRate,
  faultKinds: [...SANDBOX_FAULTS],
  // Counted in sends (see run-chaos.ts): a kill every 1/40 to 1/13 of the notifications (75 to 230
  // sends at the default 3000), PostgreSQL down at half, the storm at three quarters.
  killEverySends: [
    Math.max(20, Math.round(notifications / 40)),
    Math.max(50, Math.round(notifications / 13)),
  ],
  faultsUntil: {
    failedSends: Math.max(10, Math.round(notifications * faultRate * 0.5)),
    kills: Math.max(2, Math.floor(notifications / 300)),
  },
  faultWindowMaxMs: Math.max(120_000, loadMs * 3),
  stormAfterSends: Math.round(notifications * 0.75),
  stormMaxMs: 60_000,
  postgresStopAfterSends: Math.round(notifications / 2),
  postgresDownMs: 3000,
  workerConcurrency: 4,
  visibilityTimeoutSeconds: 40,
  settleTimeoutMs: settleSeconds * 1000,
  schedulerIntervalSeconds: 3,
  recipientPrefix: '317',
  dataDir: join(process.cwd(), '.local', `chaos-${process.pid}`),
  log,
});

await new Promise((done) => logFile.end(done));
const d = report.duplicates;
const c = report.crashedClaims;
print(`
chaos run: ${report.requests} notifications at ${rate}/s, ${Math.round(faultRate * 100)} % faults (${SANDBOX_FAULTS.join(', ')}), ${(report.durationMs / 1000).toFixed(0)} s

accepted (202, retries with the same Idempotency-Key): ${report.accepted}; gave up: ${report.gaveUp}
rows: ${report.rows}   ${Object.entries(report.byStatus)
  .map(([s, n]) => `${s} ${n}`)
  .join(', ')}
unfinished: ${report.unfinished.length ? report.unfinished.map((u) => `${u.count} ${u.status} → ${u.wayForward}`).join('; ') : 'none'}
LOST: ${report.lost} (202 without a row: ${report.acceptedWithoutRow}; rows with no way forward: ${report.lostIds.length})
DLQ messages redriven: ${report.redriven}

faults: worker SIGKILLed ${report.workerKills} times, exited by itself ${report.workerSelfExits} times; PostgreSQL restarted ${report.postgresRestart ? `${report.postgresRestart.stoppedAt} → ${report.postgresRestart.startedAt}` : 'no'}
sandbox: ${report.sandbox.sendsDuringFaults} sends while faults were on (${report.sandbox.rejectedDuringFaults} rejected); ${report.sandbox.sendsReceived} sends received in all, ${report.sandbox.accepted} accepted, ${report.sandbox.rejected} rejected; ${report.sandbox.webhooksFailed} webhooks given up; ${report.sandbox.recipientsAttemptedMoreThanOnce} recipients attempted more than once (retries)
panic mode: opened ${report.circuit.opened}, closed ${report.circuit.closed}
stack process: ${report.stackUncaughtErrors.length} uncaught PostgreSQL client errors (would have crashed it)

duplicates (the sandbox accepted a send for the same notification twice): ${d.recipients} recipients, ${d.extraSends} extra sends
  after a worker was killed between claim and record: ${d.attributed.workerKilled}
  after PostgreSQL went away between send and record:  ${d.attributed.postgresRestart}
  after an accepted send's answer was lost (client timeout), retried before its status: ${d.attributed.answerLost}
  unexplained: ${d.unexplained}
  stale claims taken over on those rows: ${d.staleReclaims}
  extra sends as a share of accepted notifications: ${report.accepted ? ((100 * d.extraSends) / report.accepted).toFixed(2) : '0.00'} %

claims cut off by a crash before their record: ${c.total} (${c.byCause.worker_killed} worker killed, ${c.byCause.postgres_restart} PostgreSQL restart)
  settled by the status webhook (callback data), not sent again: ${c.settledByWebhook}
  sent again after the grace (never reached the sandbox, or no status in time): ${c.sentAgain}
  otherwise (deferred by panic mode, still open): ${c.other}
  kills at ${report.killTimes.map((t) => t.slice(11, 23)).join(', ')}

log: ${logPath}
`);
for (const detail of d.details.filter((x) => x.causes.includes('unexplained'))) {
  print(
    `unexplained duplicate ${detail.notificationId} (${detail.recipient}, ${detail.acceptedSends} sends):\n  ${(detail.history ?? []).join('\n  ')}\n`,
  );
}
process.exit(report.lost === 0 && d.unexplained === 0 ? 0 : 1);
