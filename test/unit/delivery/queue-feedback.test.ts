/**
 * Queue feedback's plan: for each outcome, whether the message stays on the queue (a batch item
 * failure) and how long it stays hidden, as one table; then the order SQS is told in.
 */
import { describe, expect, it } from 'vitest';
import { MAX_VISIBILITY_SECONDS } from '#core/delivery/backoff.ts';
import { planQueueFeedback } from '#core/delivery/pipeline/queue-feedback.ts';
import type { Verdict } from '#core/delivery/pipeline/verdict.ts';
import { queueRecord } from './pipeline-fixtures.ts';

interface Case {
  name: string;
  verdict: Omit<Verdict, 'record'>;
  requeued: boolean;
  /** Whether SQS keeps the message (reported in batchItemFailures). */
  kept: boolean;
  /** Seconds the message is hidden, when it is changed. */
  hidden?: number;
}

const cases: Case[] = [
  { name: 'deletes a sent message', verdict: { outcome: 'sent' }, requeued: false, kept: false },
  {
    name: 'keeps a retry, hidden for its backoff',
    verdict: { outcome: 'retry', retryAfterSeconds: 17 },
    requeued: false,
    kept: true,
    hidden: 17,
  },
  {
    name: 'keeps a bad body as it is, so that it reaches the DLQ',
    verdict: { outcome: 'bad_body' },
    requeued: false,
    kept: true,
  },
  {
    name: 'deletes a rate-limited message that went back on the queue delayed',
    verdict: { outcome: 'delayed', holdBackSeconds: 3 },
    requeued: true,
    kept: false,
  },
  {
    name: 'keeps a rate-limited message that could not be re-queued, hidden for its wait',
    verdict: { outcome: 'delayed', holdBackSeconds: 3 },
    requeued: false,
    kept: true,
    hidden: 3,
  },
  {
    name: 'deletes a busy message that went back on the queue delayed',
    verdict: { outcome: 'busy', holdBackSeconds: 30 },
    requeued: true,
    kept: false,
  },
  {
    name: 'keeps a busy message that could not be re-queued, hidden for its wait',
    verdict: { outcome: 'busy', holdBackSeconds: 30 },
    requeued: false,
    kept: true,
    hidden: 30,
  },
  {
    name: "hides a stranded message no longer than SQS's 12 h",
    verdict: { outcome: 'delayed', holdBackSeconds: 2 * MAX_VISIBILITY_SECONDS },
    requeued: false,
    kept: true,
    hidden: MAX_VISIBILITY_SECONDS,
  },
  ...(['failed', 'deferred', 'skipped', 'skipped_duplicate', 'missing'] as const).map(
    (outcome): Case => ({
      name: `deletes a ${outcome} message`,
      verdict: { outcome },
      requeued: false,
      kept: false,
    }),
  ),
];

describe('planQueueFeedback', () => {
  it.each(cases)('$name', ({ verdict, requeued, kept, hidden }) => {
    // prepare
    const record = queueRecord();

    // act
    const plan = planQueueFeedback(
      [record],
      [{ record, ...verdict }],
      new Set(requeued ? [record.messageId] : []),
    );

    // assess
    expect(plan.batchItemFailures).toEqual(kept ? [{ itemIdentifier: record.messageId }] : []);
    expect(plan.visibility).toEqual(
      new Map(hidden === undefined ? [] : [[record.messageId, hidden]]),
    );
  });

  it('reports and hides in the order of the batch, whatever the order of the verdicts', () => {
    // prepare
    const [a, b, c] = [queueRecord(), queueRecord(), queueRecord()];
    const verdicts: Verdict[] = [
      { record: c, outcome: 'retry', retryAfterSeconds: 3 },
      { record: b, outcome: 'sent' },
      { record: a, outcome: 'retry', retryAfterSeconds: 1 },
    ];

    // act
    const plan = planQueueFeedback([a, b, c], verdicts, new Set());

    // assess
    expect(plan.batchItemFailures).toEqual([
      { itemIdentifier: a.messageId },
      { itemIdentifier: c.messageId },
    ]);
    expect([...plan.visibility]).toEqual([
      [a.messageId, 1],
      [c.messageId, 3],
    ]);
  });
});
