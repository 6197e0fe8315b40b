/** Triage, the pipeline's first stage: every reason a record is settled before the gates, as one table. */
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_CLAIM_GRACE_SECONDS,
  reclaimAfterSeconds,
  STALE_CLAIM_SECONDS,
  triage,
} from '#core/delivery/pipeline/triage.ts';
import type { LoadedRow, Verdict } from '#core/delivery/pipeline/verdict.ts';
import { Metric } from '#core/platform/metric-names.ts';
import { NOW, queueRecord, storedRow } from './pipeline-fixtures.ts';

const secondsAgo = (s: number) => new Date(NOW.getTime() - s * 1000);

interface Case {
  name: string;
  body?: string;
  /** The stored row; `null` when there is none. */
  row: Partial<LoadedRow> | null;
  /** The verdict without its record, or `'candidate'` when triage passes the record on. */
  expected: Omit<Verdict, 'record'> | 'candidate';
}

const handled = (status: LoadedRow['status']): Case => ({
  name: `settles a row already ${status} as a duplicate that sends nothing`,
  row: { status },
  expected: {
    outcome: 'skipped_duplicate',
    metrics: [{ name: Metric.SkippedDuplicate, unit: 'Count', value: 1 }],
    log: {
      level: 'info',
      message: 'already handled; nothing sent',
      fields: expect.objectContaining({ status }),
    },
  },
});

const cases: Case[] = [
  {
    name: 'sends nothing for a body that is not a notification id and lets it reach the DLQ',
    body: 'not-a-uuid',
    row: null,
    expected: {
      outcome: 'bad_body',
      log: {
        level: 'error',
        message: 'queue message body is not a notification id',
        fields: { messageId: expect.any(String), requestId: expect.any(String) },
      },
    },
  },
  {
    name: 'reports a queue message whose notification is not stored',
    row: null,
    expected: {
      outcome: 'missing',
      log: {
        level: 'warn',
        message: 'no notification for queue message',
        fields: { notificationId: expect.any(String), requestId: expect.any(String) },
      },
    },
  },
  handled('sent'),
  handled('delivered'),
  handled('read'),
  handled('failed'),
  handled('skipped'),
  {
    name: 'drops a message for a cancelled row without a move or a metric, even one opted out',
    row: { status: 'cancelled', opted_out: true },
    expected: {
      outcome: 'skipped',
      log: { level: 'info', message: 'cancelled; nothing sent', fields: expect.any(Object) },
    },
  },
  {
    name: 'drops an early message for a scheduled row, which the scheduler enqueues when due',
    row: { status: 'scheduled' },
    expected: { outcome: 'skipped' },
  },
  {
    name: 'holds back a row another worker claimed moments ago until the claim may be taken over',
    row: { status: 'sending', updated_at: secondsAgo(10) },
    expected: { outcome: 'busy', holdBackSeconds: reclaimAfterSeconds() - 10 + 1 },
  },
  {
    name: "holds back a dead worker's claim during the grace for Meta's status webhook",
    row: { status: 'sending', updated_at: secondsAgo(STALE_CLAIM_SECONDS) },
    expected: { outcome: 'busy', holdBackSeconds: DEFAULT_CLAIM_GRACE_SECONDS + 1 },
  },
  {
    name: 'holds back a claim exactly one second short of its grace',
    row: { status: 'sending', updated_at: secondsAgo(reclaimAfterSeconds() - 1) },
    expected: { outcome: 'busy', holdBackSeconds: 2 },
  },
  {
    name: 'passes on a claim older than a worker can live plus the grace: no webhook settled it',
    row: { status: 'sending', updated_at: secondsAgo(reclaimAfterSeconds()) },
    expected: 'candidate',
  },
  {
    name: 'skips a row whose recipient opted out, moving it to skipped from any sendable status',
    row: { status: 'queued', opted_out: true },
    expected: {
      outcome: 'skipped',
      transition: {
        id: expect.any(String),
        to: 'skipped',
        from: ['accepted', 'queued', 'deferred', 'sending'],
        reason: 'opted_out',
      },
      metrics: [{ name: Metric.SkippedOptOut, unit: 'Count', value: 1 }],
      log: {
        level: 'info',
        message: 'recipient opted out; skipped',
        fields: expect.any(Object),
      },
    },
  },
  { name: 'passes on an accepted row', row: { status: 'accepted' }, expected: 'candidate' },
  { name: 'passes on a queued row', row: { status: 'queued' }, expected: 'candidate' },
  { name: 'passes on a deferred row', row: { status: 'deferred' }, expected: 'candidate' },
];

describe('triage', () => {
  it.each(cases)('$name', ({ body, row, expected }) => {
    // prepare
    const record = queueRecord(body === undefined ? {} : { body });
    const rows = new Map(row ? [[record.body, storedRow(record.body, row)]] : []);

    // act
    const result = triage([record], rows, NOW);

    // assess
    if (expected === 'candidate') {
      expect(result.settled).toEqual([]);
      expect(result.candidates).toEqual([{ record, row: rows.get(record.body) }]);
    } else {
      expect(result.candidates).toEqual([]);
      expect(result.settled).toEqual([{ record, ...expected }]);
    }
  });

  it('takes over a dead claim after the configured grace, not the default one', () => {
    // prepare: a claim the worker's lifetime plus 10 s old, with a grace of 10 s and of 11 s
    const record = queueRecord();
    const row = storedRow(record.body, {
      status: 'sending',
      updated_at: secondsAgo(STALE_CLAIM_SECONDS + 10),
    });
    const rows = new Map([[record.body, row]]);

    // act
    const passed = triage([record], rows, NOW, reclaimAfterSeconds(10));
    const held = triage([record], rows, NOW, reclaimAfterSeconds(11));

    // assess
    expect(passed.candidates).toEqual([{ record, row }]);
    expect(held.settled).toEqual([{ record, outcome: 'busy', holdBackSeconds: 2 }]);
  });

  it('sends a row named twice in one batch once, settling the second message as a duplicate', () => {
    // prepare
    const first = queueRecord();
    const second = queueRecord({ body: first.body });
    const rows = new Map([[first.body, storedRow(first.body)]]);

    // act
    const result = triage([first, second], rows, NOW);

    // assess: no metric or log for it; the first is still a candidate
    expect(result.candidates.map((c) => c.record)).toEqual([first]);
    expect(result.settled).toEqual([{ record: second, outcome: 'skipped_duplicate' }]);
  });

  it('names the request, the queue message and the notification in its info lines, never the recipient', () => {
    // prepare
    const record = queueRecord();
    const row = storedRow(record.body, { opted_out: true });

    // act
    const [verdict] = triage([record], new Map([[record.body, row]]), NOW).settled;

    // assess
    expect(verdict?.log?.fields).toEqual({
      requestId: record.requestId,
      messageId: record.messageId,
      notificationId: record.body,
    });
    expect(JSON.stringify(verdict?.log)).not.toContain(row.recipient.slice(1));
  });

  it('settles bad bodies first, then the rest in the order of the batch', () => {
    // prepare
    const missing = queueRecord();
    const bad = queueRecord({ body: '42' });
    const scheduled = queueRecord();
    const rows = new Map([[scheduled.body, storedRow(scheduled.body, { status: 'scheduled' })]]);

    // act
    const result = triage([missing, bad, scheduled], rows, NOW);

    // assess
    expect(result.settled.map((v) => [v.record, v.outcome])).toEqual([
      [bad, 'bad_body'],
      [missing, 'missing'],
      [scheduled, 'skipped'],
    ]);
  });
});

describe('triage and the template registry', () => {
  it.each(['PAUSED', 'DISABLED', 'DELETED', 'REJECTED'])(
    'fails a row whose template the registry says is %s, with class template and a reason naming it',
    (status) => {
      // prepare
      const record = queueRecord();
      const row = storedRow(record.body, { registry_status: status, registry_category: 'UTILITY' });

      // act
      const [verdict] = triage([record], new Map([[record.body, row]]), NOW).settled;

      // assess
      expect(verdict).toMatchObject({
        outcome: 'failed',
        transition: {
          id: row.id,
          to: 'failed',
          reason: `template_${status.toLowerCase()}`,
          errorClass: 'template',
        },
      });
      expect(verdict?.transition?.errorMessage).toContain(status);
      expect(verdict?.metrics?.map((m) => m.name)).toContain('TemplateFailures');
    },
  );

  it('passes on an APPROVED template, and one the registry does not know', () => {
    // prepare
    const approved = queueRecord();
    const unknown = queueRecord();
    const rows = new Map([
      [approved.body, storedRow(approved.body, { registry_status: 'APPROVED' })],
      [unknown.body, storedRow(unknown.body, { registry_status: null })],
    ]);

    // act
    const result = triage([approved, unknown], rows, NOW);

    // assess
    expect(result.settled).toEqual([]);
    expect(result.candidates).toHaveLength(2);
  });

  it('holds a MARKETING template from a marketing opt-out, and only a MARKETING one', () => {
    // prepare
    const marketing = queueRecord();
    const utility = queueRecord();
    const rows = new Map([
      [
        marketing.body,
        storedRow(marketing.body, {
          marketing_opted_out: true,
          registry_status: 'APPROVED',
          registry_category: 'MARKETING',
        }),
      ],
      [
        utility.body,
        storedRow(utility.body, {
          marketing_opted_out: true,
          registry_status: 'APPROVED',
          registry_category: 'UTILITY',
        }),
      ],
    ]);

    // act
    const result = triage([marketing, utility], rows, NOW);

    // assess
    expect(result.settled.map((v) => [v.record, v.transition?.reason])).toEqual([
      [marketing, 'opted_out_marketing'],
    ]);
    expect(result.candidates.map((c) => c.record)).toEqual([utility]);
  });
});
