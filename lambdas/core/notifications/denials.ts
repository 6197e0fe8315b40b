/**
 * Anonymous denials (a 401 for a missing, malformed or unknown API key, a webhook with a bad
 * signature) are counted, not written one row each: every one adds to a metric, and the audit log
 * gets one sampled entry per kind of denial and window, carrying how many were seen since the
 * previous entry. A flood of bad requests therefore costs one insert a minute per execution
 * environment instead of one per request, and nothing the caller chose (its key prefix, its
 * X-Request-ID) is ever recorded as who acted.
 */
import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { Kysely } from 'kysely';
import type { Database } from '#core/db/schema.ts';
import { writeAudit } from '#core/notifications/audit.ts';
import { Metric } from '#core/platform/metric-names.ts';
import { maskPhonesIn } from '#core/platform/phone.ts';

/** One window per kind of denial: long enough to stop a flood, short enough to see an attack start. */
export const DENIAL_AUDIT_WINDOW_MS = 60_000;

export type DenialAction = 'auth.denied' | 'webhook.signature_rejected';

const METRIC_OF: Record<DenialAction, string> = {
  'auth.denied': Metric.ApiAuthDenied,
  'webhook.signature_rejected': Metric.WebhookSignatureRejected,
};

/** Who the entry names: never the caller's own words, only which door refused it. */
const ACTOR_OF: Record<DenialAction, string> = {
  'auth.denied': 'anonymous',
  'webhook.signature_rejected': 'webhook',
};

interface Tally {
  windowStartedAt: number;
  count: number;
  reasons: Record<string, number>;
}

/**
 * The counts since the last audit entry, per action. Kept in memory for the life of an execution
 * environment (like the scheduler's token check): the metric has every denial, the audit log a
 * sample per environment and minute; a count still in memory when the environment is recycled is
 * lost from the log, never from the metric.
 */
export class DenialLedger {
  private readonly tallies = new Map<DenialAction, Tally>();
  private readonly windowMs: number;
  constructor(windowMs: number = DENIAL_AUDIT_WINDOW_MS) {
    this.windowMs = windowMs;
  }

  /** Counts a denial; returns the tally to write when this one opens a new window. */
  count(action: DenialAction, reason: string, now: number): Tally | undefined {
    const tally = this.tallies.get(action) ?? { windowStartedAt: -Infinity, count: 0, reasons: {} };
    tally.count += 1;
    tally.reasons[reason] = (tally.reasons[reason] ?? 0) + 1;
    if (now - tally.windowStartedAt < this.windowMs) {
      this.tallies.set(action, tally);
      return undefined;
    }
    this.tallies.set(action, { windowStartedAt: now, count: 0, reasons: {} });
    return tally;
  }
}

export interface DenialDeps {
  db: Kysely<Database>;
  metrics: Metrics;
  now: () => Date;
  ledger: DenialLedger;
}

export interface Denial {
  action: DenialAction;
  /** A fixed word of ours (`missing`, `unknown`, `mismatch`...), never the caller's text. */
  reason: string;
  /** API Gateway's request id, not the caller's X-Request-ID. */
  gatewayRequestId: string | null;
  sourceIp: string | null;
  method: string;
  path: string;
}

/** Counts one anonymous denial and, once a window, writes the sampled audit entry. */
export async function recordDenial(deps: DenialDeps, denial: Denial): Promise<void> {
  deps.metrics.addMetric(METRIC_OF[denial.action], MetricUnit.Count, 1);
  const due = deps.ledger.count(denial.action, denial.reason, deps.now().getTime());
  if (!due) return;
  await writeAudit(deps.db, {
    actor: ACTOR_OF[denial.action],
    action: denial.action,
    outcome: 'denied',
    requestId: denial.gatewayRequestId,
    sourceIp: denial.sourceIp,
    detail: {
      sampled: true,
      // This denial and those counted, not written, since the previous entry of this environment.
      denials: due.count,
      reasons: due.reasons,
      windowSeconds: Math.round(DENIAL_AUDIT_WINDOW_MS / 1000),
      // The sample's request line, cut short and without anything shaped like a phone number.
      method: denial.method.slice(0, 16),
      path: maskPhonesIn(denial.path.slice(0, 200)),
    },
  });
}
