/**
 * Admission, the second stage: the gates (rollout, panic mode, rate limits; DESIGN §4) decide for
 * every candidate at once, and a pure rule turns each decision into a send or a verdict.
 */
import type { DeliveryGates, GateDecision } from '#core/delivery/delivery-gates.ts';
import { Metric } from '#core/platform/metric-names.ts';
import { type Candidate, CLAIMABLE, infoLine, type Verdict } from './verdict.ts';

export interface Admission {
  /** Candidates every gate let through, in order. */
  admitted: Candidate[];
  /** Candidates a gate stopped: skipped, parked as deferred, or held back on the queue. */
  settled: Verdict[];
}

export async function admit(
  gates: DeliveryGates,
  candidates: readonly Candidate[],
  now: Date,
): Promise<Admission> {
  const decisions = await gates.admit(
    candidates.map((c) => c.row),
    now,
  );
  return judgeAdmission(candidates, decisions);
}

/** Pure: a candidate the gates said nothing about is sent, as `openGates` would have it. */
export function judgeAdmission(
  candidates: readonly Candidate[],
  decisions: ReadonlyMap<string, GateDecision>,
): Admission {
  const admitted: Candidate[] = [];
  const settled: Verdict[] = [];
  for (const candidate of candidates) {
    const verdict = gateVerdict(candidate, decisions.get(candidate.row.id) ?? { kind: 'send' });
    if (verdict) settled.push(verdict);
    else admitted.push(candidate);
  }
  return { admitted, settled };
}

function gateVerdict({ record, row }: Candidate, decision: GateDecision): Verdict | undefined {
  // Rows a gate stops may have been claimed by a worker that died: `sending` is a legal start too.
  const from = [...CLAIMABLE, 'sending'] as const;
  switch (decision.kind) {
    case 'send':
      return undefined;
    case 'skip':
      return {
        record,
        outcome: 'skipped',
        transition: { id: row.id, to: 'skipped', from, reason: decision.reason },
        log: infoLine(record, 'skipped by rollout', { reason: decision.reason }),
      };
    case 'defer':
      return {
        record,
        outcome: 'deferred',
        transition: {
          id: row.id,
          to: 'deferred',
          from,
          reason: decision.reason,
          nextAttemptAt: decision.until,
        },
        log: infoLine(record, 'deferred', { reason: decision.reason }),
      };
    case 'delay':
      return {
        record,
        outcome: 'delayed',
        holdBackSeconds: Math.ceil(decision.seconds),
        metrics: [{ name: Metric.SkippedRateLimit, unit: 'Count', value: 1 }],
        log: infoLine(record, 'held back by rate limits', {
          reason: decision.reason,
          retryInSeconds: decision.seconds,
        }),
      };
  }
}
