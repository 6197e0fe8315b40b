/**
 * The short fault run: a few hundred notifications while the sandbox answers with faults, the
 * worker process is SIGKILLed at random and PostgreSQL restarts once. Nothing may be lost; a crash
 * between a send and its record is settled by the send's status webhook, so a send accepted twice
 * is rare and must be explained (a crash whose status missed the grace, or a lost answer).
 * (`npm run chaos` is the long version.)
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type ChaosReport, runChaos } from '../../bin/chaos/run-chaos.ts';
import { SANDBOX_FAULTS } from '../../bin/sandbox/faults.ts';

describe('delivery under faults', () => {
  it('loses nothing and sends twice only across a crash, with workers killed and PostgreSQL restarted', async () => {
    const lines: string[] = [];
    // The handlers' log lines would drown the test output; the run's own lines are kept for a failure.
    process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
    let report: ChaosReport | undefined;
    try {
      report = await runChaos({
        notifications: 300,
        ratePerSecond: 40,
        // Long enough to outlast the 30 s in which a request cut off after its insert answers 409.
        clientRetryMs: 40_000,
        faultRate: 0.15,
        faultKinds: [...SANDBOX_FAULTS],
        // Faults are counted in sends, so a worker starved by a busy machine still meets them.
        killEverySends: [20, 50],
        faultsUntil: { failedSends: 15, kills: 3 },
        faultWindowMaxMs: 150_000,
        stormAfterSends: 120,
        stormMaxMs: 60_000,
        postgresStopAfterSends: 30,
        postgresDownMs: 2_000,
        workerConcurrency: 4,
        // Just above the 35 s a worker can live: a crashed batch returns to a claim in its grace.
        visibilityTimeoutSeconds: 37,
        // The sandbox's statuses come within a second (retried for about 30 s): 20 s of grace is
        // ample here and keeps the run short; deployed, the default is 120 s.
        claimGraceSeconds: 20,
        settleTimeoutMs: 150_000,
        schedulerIntervalSeconds: 3,
        recipientPrefix: '318',
        dataDir: join(process.cwd(), '.local', `chaos-test-${process.pid}`),
        log: (line) => lines.push(line),
      });
    } catch (error) {
      throw new Error(`chaos run failed: ${String(error)}\n${lines.join('\n')}`);
    }
    const context = JSON.stringify({ ...report, log: lines.slice(-30) }, null, 2);
    const d = report.duplicates;
    console.info(
      `chaos: ${report.accepted}/${report.requests} accepted, ${report.lost} lost, ${report.workerKills} kills, ` +
        `${report.sandbox.rejectedDuringFaults}/${report.sandbox.sendsDuringFaults} sends rejected under faults, ` +
        `panic mode opened ${report.circuit.opened}×, ${report.redriven} redriven from the DLQ, ` +
        `${d.extraSends} duplicate sends (${d.attributed.workerKilled} worker killed, ${d.attributed.postgresRestart} PostgreSQL restart, ${d.attributed.answerLost} answer lost, ${d.unexplained} unexplained), ` +
        `${report.crashedClaims.total} claims cut off by a crash (${report.crashedClaims.settledByWebhook} settled by the webhook, ${report.crashedClaims.sentAgain} sent again)`,
    );

    // The faults happened, as many as were asked for.
    expect(report.faultWindowEnded, context).toBe('counted');
    expect(report.sandbox.rejectedDuringFaults, context).toBeGreaterThanOrEqual(15);
    expect(report.workerKills, context).toBeGreaterThanOrEqual(3);
    expect(report.postgresRestart, context).not.toBeNull();
    expect(report.circuit.opened, context).toBeGreaterThanOrEqual(1);
    // Nothing is lost: every 202 has its row, every row is finished or has a way forward (a client
    // that gave up retrying may still have a row; it is counted among the rows).
    expect(report.accepted, context).toBeGreaterThan(report.requests * 0.8);
    expect(report.acceptedWithoutRow, context).toBe(0);
    expect(report.lost, context).toBe(0);
    expect(report.unfinished, context).toEqual([]);
    // Every duplicate send is explained by a crash between the send and its record, or a lost answer.
    expect(report.duplicates.unexplained, context).toBe(0);
    // The crashes' sends are settled by their status webhooks instead of being sent again: before
    // the callback data, about 5 % of accepted notifications went out twice here.
    expect(report.duplicates.extraSends, context).toBeLessThanOrEqual(report.accepted * 0.02);
    // Ceilings for a busy machine: a healthy run takes about a minute.
  }, 420_000);
});
