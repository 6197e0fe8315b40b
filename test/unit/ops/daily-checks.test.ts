/** The daily checklist's bounds: each item flips to out of bounds exactly where lib/thresholds.ts says. */
import { describe, expect, it } from 'vitest';
import type { AdminStatus, QueueStatus } from '#core/admin/admin-status.ts';
import { type DailyCheckInput, evaluateDailyChecks } from '../../../bin/ops/daily-checks.ts';
import { DAILY_CHECK_BOUNDS, thresholdById } from '../../../lib/thresholds.ts';

const NOW = new Date('2026-11-29T08:00:00Z');

function queue(name: string, kind: 'delivery' | 'dlq', visible: number): QueueStatus {
  return {
    name,
    priority: name.startsWith('high') ? 'high' : 'bulk',
    kind,
    url: `http://sqs/${name}`,
    visible,
    inFlight: 0,
    delayed: 0,
    oldestAgeSeconds: null,
    waitingNotifications: 0,
  };
}

function input(change: (status: AdminStatus) => void = () => {}): DailyCheckInput {
  const status = {
    generatedAt: NOW.toISOString(),
    last24h: { sent: 100, failed: 5, successRatePercent: 95.2 },
    queues: [
      queue('high', 'delivery', 3),
      queue('high-dlq', 'dlq', 0),
      queue('bulk', 'delivery', 0),
      queue('bulk-dlq', 'dlq', 0),
    ],
    panic: { active: false, senders: [] },
    scheduler: {
      lastRun: null,
      lastSuccessfulRunAt: new Date(NOW.getTime() - 60_000).toISOString(),
    },
  } as unknown as AdminStatus;
  change(status);
  return {
    status,
    token: { valid: true, expiresAt: null },
    templates: { templates: [{ name: 'hello_world', language: 'en_US', status: 'APPROVED' }] },
    now: NOW,
  };
}

const outOfBounds = (i: DailyCheckInput) =>
  evaluateDailyChecks(i)
    .filter((r) => !r.ok)
    .map((r) => r.item);

describe('evaluateDailyChecks', () => {
  it('passes a healthy day', () => {
    expect(outOfBounds(input())).toEqual([]);
  });

  it('flags a delivery queue at the near-empty bound, not below it', () => {
    const near = DAILY_CHECK_BOUNDS.queueNearEmptyMessages;
    expect(
      outOfBounds(
        input((s) => {
          s.queues[0]!.visible = near - 1;
        }),
      ),
    ).toEqual([]);
    expect(
      outOfBounds(
        input((s) => {
          s.queues[0]!.visible = near;
        }),
      ),
    ).toEqual(['queue high near empty']);
  });

  it('flags a DLQ holding a message, visible or in flight, and an unreachable queue', () => {
    expect(
      outOfBounds(
        input((s) => {
          s.queues[3]!.inFlight = 1;
        }),
      ),
    ).toEqual(['DLQ bulk-dlq empty']);
    expect(
      outOfBounds(
        input((s) => {
          s.queues[2]!.error = 'QueueDoesNotExist';
        }),
      ),
    ).toEqual(['queue bulk near empty']);
  });

  it('judges the success rate only from the alarm’s minimum sample', () => {
    const alarm = thresholdById('delivery-failure-rate-warning');
    const floor = 100 - alarm.threshold;
    const minimum = alarm.minimumSample!.count;
    const rate = (sent: number, failed: number, pct: number) =>
      input((s) => Object.assign(s.last24h, { sent, failed, successRatePercent: pct }));
    expect(outOfBounds(rate(minimum - 5, 4, floor - 10))).toEqual([]);
    expect(outOfBounds(rate(minimum, 4, floor - 0.1))).toEqual(['success rate, last 24 h']);
    expect(outOfBounds(rate(minimum, 2, floor))).toEqual([]);
  });

  it('flags open panic mode and a scheduler quiet longer than the scheduler-stopped window', () => {
    const stopped = thresholdById('scheduler-stopped');
    const window = stopped.periodSeconds * stopped.evaluationPeriods * 1000;
    expect(
      outOfBounds(
        input((s) => {
          s.panic.active = true;
        }),
      ),
    ).toEqual(['panic mode closed']);
    const quiet = (ms: number) =>
      input((s) => {
        s.scheduler.lastSuccessfulRunAt = new Date(NOW.getTime() - ms).toISOString();
      });
    expect(outOfBounds(quiet(window))).toEqual([]);
    expect(outOfBounds(quiet(window + 1000))).toEqual(['scheduler ran']);
  });

  it('flags a token expiring inside the alarm’s days, an invalid one, and one it could not ask about', () => {
    const days = thresholdById('whatsapp-token-expiring').threshold;
    const expiring = (d: number) => ({
      ...input(),
      token: { valid: true, expiresAt: new Date(NOW.getTime() + d * 86_400_000).toISOString() },
    });
    expect(outOfBounds(expiring(days))).toEqual([]);
    expect(outOfBounds(expiring(days - 0.5))).toEqual(['WhatsApp token valid']);
    expect(outOfBounds({ ...input(), token: { valid: false, expiresAt: null } })).toEqual([
      'WhatsApp token valid',
    ]);
    expect(outOfBounds({ ...input(), token: new Error('HTTP 502') })).toEqual([
      'WhatsApp token valid',
    ]);
  });

  it('flags PAUSED, DISABLED and REJECTED templates but not one still PENDING', () => {
    const templates = (status: string) => ({
      ...input(),
      templates: { templates: [{ name: 't', language: 'es', status }] },
    });
    expect(outOfBounds(templates('PENDING'))).toEqual([]);
    for (const status of ['PAUSED', 'DISABLED', 'REJECTED'])
      expect(outOfBounds(templates(status))).toEqual(['templates sendable']);
  });
});
