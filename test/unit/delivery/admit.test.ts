/** Admission's pure rule: each gate decision becomes a send or a verdict, as one table. */
import { describe, expect, it } from 'vitest';
import type { GateDecision } from '#core/delivery/delivery-gates.ts';
import { judgeAdmission } from '#core/delivery/pipeline/admit.ts';
import type { Verdict } from '#core/delivery/pipeline/verdict.ts';
import { Metric } from '#core/platform/metric-names.ts';
import { candidate, queueRecord } from './pipeline-fixtures.ts';

/** One record for the whole table, so the expected lines can name it. */
const RECORD = queueRecord({ body: '0195f0c4-1c2b-7a3d-8e4f-00000000a0a0' });
const ID = RECORD.body;
const FROM_ANY_SENDABLE = ['accepted', 'queued', 'deferred', 'sending'] as const;
const TOMORROW = new Date('2026-03-03T00:00:00.000Z');

interface Case {
  name: string;
  /** `undefined`: the gates said nothing about the row. */
  decision: GateDecision | undefined;
  /** The verdict without its record and without the ids the fixture makes, or `'send'`. */
  expected: Omit<Verdict, 'record'> | 'send';
}

const cases: Case[] = [
  { name: 'sends what every gate let through', decision: { kind: 'send' }, expected: 'send' },
  { name: 'sends a row the gates said nothing about', decision: undefined, expected: 'send' },
  {
    name: 'skips for good in a dry run',
    decision: { kind: 'skip', reason: 'dry_run' },
    expected: {
      outcome: 'skipped',
      transition: { id: ID, to: 'skipped', from: FROM_ANY_SENDABLE, reason: 'dry_run' },
      log: infoFields('skipped by rollout', { reason: 'dry_run' }),
    },
  },
  {
    name: 'skips for good outside the pilot',
    decision: { kind: 'skip', reason: 'outside_pilot' },
    expected: {
      outcome: 'skipped',
      transition: { id: ID, to: 'skipped', from: FROM_ANY_SENDABLE, reason: 'outside_pilot' },
      log: infoFields('skipped by rollout', { reason: 'outside_pilot' }),
    },
  },
  {
    name: 'parks as deferred with no date while the kill switch is on',
    decision: { kind: 'defer', reason: 'kill_switch', until: null },
    expected: {
      outcome: 'deferred',
      transition: {
        id: ID,
        to: 'deferred',
        from: FROM_ANY_SENDABLE,
        reason: 'kill_switch',
        nextAttemptAt: null,
      },
      log: infoFields('deferred', { reason: 'kill_switch' }),
    },
  },
  {
    name: 'parks as deferred until the next UTC day past the daily cap',
    decision: { kind: 'defer', reason: 'daily_cap', until: TOMORROW },
    expected: {
      outcome: 'deferred',
      transition: {
        id: ID,
        to: 'deferred',
        from: FROM_ANY_SENDABLE,
        reason: 'daily_cap',
        nextAttemptAt: TOMORROW,
      },
      log: infoFields('deferred', { reason: 'daily_cap' }),
    },
  },
  {
    name: 'holds back on the queue for the rate limiter, rounding a fraction of a second up',
    decision: { kind: 'delay', reason: 'rate_limit', seconds: 0.25 },
    expected: {
      outcome: 'delayed',
      holdBackSeconds: 1,
      metrics: [{ name: Metric.SkippedRateLimit, unit: 'Count', value: 1 }],
      log: infoFields('held back by rate limits', { reason: 'rate_limit', retryInSeconds: 0.25 }),
    },
  },
  {
    name: 'holds back for the recipient spacing without touching the row',
    decision: { kind: 'delay', reason: 'recipient_spacing', seconds: 6 },
    expected: {
      outcome: 'delayed',
      holdBackSeconds: 6,
      metrics: [{ name: Metric.SkippedRateLimit, unit: 'Count', value: 1 }],
      log: infoFields('held back by rate limits', {
        reason: 'recipient_spacing',
        retryInSeconds: 6,
      }),
    },
  },
];

/** The info line about RECORD. */
function infoFields(message: string, extra: Record<string, unknown>): Verdict['log'] {
  return {
    level: 'info',
    message,
    fields: {
      requestId: RECORD.requestId,
      messageId: RECORD.messageId,
      notificationId: RECORD.body,
      ...extra,
    },
  };
}

describe('judgeAdmission', () => {
  it.each(cases)('$name', ({ decision, expected }) => {
    // prepare
    const c = candidate({ record: RECORD });
    const decisions = new Map(decision ? [[c.row.id, decision]] : []);

    // act
    const { admitted, settled } = judgeAdmission([c], decisions);

    // assess
    if (expected === 'send') {
      expect(settled).toEqual([]);
      expect(admitted).toEqual([c]);
      return;
    }
    expect(admitted).toEqual([]);
    expect(settled).toEqual([{ record: c.record, ...expected }]);
  });

  it('keeps the order of the candidates and judges each by its own decision', () => {
    // prepare
    const [a, b, c] = [candidate(), candidate(), candidate()];
    const decisions = new Map<string, GateDecision>([
      [a.row.id, { kind: 'delay', reason: 'rate_limit', seconds: 1 }],
      [b.row.id, { kind: 'send' }],
      [c.row.id, { kind: 'send' }],
    ]);

    // act
    const { admitted, settled } = judgeAdmission([a, b, c], decisions);

    // assess
    expect(admitted).toEqual([b, c]);
    expect(settled.map((v) => v.record)).toEqual([a.record]);
  });
});
