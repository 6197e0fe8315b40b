/**
 * The daily checklist as `ops status --check` evaluates it: each item of runbooks/daily-checks.md
 * that the admin API can answer, against a bound from lib/thresholds.ts, so a scheduled job can
 * run it and fail on anything out of bounds.
 */
import type { AdminStatus } from '#core/admin/admin-status.ts';
import { type AlarmThreshold, DAILY_CHECK_BOUNDS, thresholdById } from '../../lib/thresholds.ts';

export interface TokenAnswer {
  valid: boolean;
  expiresAt: string | null;
}

export interface TemplateAnswer {
  name: string;
  language: string;
  status: string;
}

export interface DailyCheckInput {
  status: AdminStatus;
  /** The token and template answers, or the error that kept them from coming. */
  token: TokenAnswer | Error;
  templates: { templates: TemplateAnswer[] } | Error;
  now: Date;
}

export interface DailyCheckResult {
  /** The checklist line it stands for (runbooks/daily-checks.md). */
  item: string;
  value: string;
  bound: string;
  ok: boolean;
}

/** Template states Meta uses for a template that cannot be sent (PENDING is still under review). */
const BROKEN_TEMPLATE_STATES = new Set(['PAUSED', 'DISABLED', 'REJECTED']);

/** Checks `ops status --check` cannot make: they need CloudWatch or RDS, so the runbook runs them. */
export const UNCHECKED_ITEMS = ['API 5xx rate (CloudWatch)', 'backups (RDS snapshots)'];

function minutes(seconds: number): string {
  return `${Math.round(seconds / 60)} min`;
}

export function evaluateDailyChecks(input: DailyCheckInput): DailyCheckResult[] {
  const { status, now } = input;
  const results: DailyCheckResult[] = [];
  const near = DAILY_CHECK_BOUNDS.queueNearEmptyMessages;
  for (const q of status.queues) {
    if (q.kind === 'delivery') {
      results.push({
        item: `queue ${q.name} near empty`,
        value: q.error ? `unreachable (${q.error})` : `${q.visible ?? 0} visible`,
        bound: `< ${near}`,
        ok: !q.error && (q.visible ?? 0) < near,
      });
    } else {
      const dlq = thresholdById(`dlq-not-empty-${q.priority}`);
      results.push({
        item: `DLQ ${q.name} empty`,
        value: q.error ? `unreachable (${q.error})` : `${(q.visible ?? 0) + (q.inFlight ?? 0)}`,
        bound: `< ${dlq.threshold}`,
        ok: !q.error && (q.visible ?? 0) + (q.inFlight ?? 0) < dlq.threshold,
      });
    }
  }

  const failure: AlarmThreshold = thresholdById('delivery-failure-rate-warning');
  const d = status.last24h;
  const sample = d.sent + d.failed;
  const minimum = failure.minimumSample?.count ?? 0;
  const floor = 100 - failure.threshold;
  results.push({
    item: 'success rate, last 24 h',
    value:
      d.successRatePercent === null
        ? 'nothing finished'
        : `${d.successRatePercent}% of ${sample}${sample < minimum ? ' (too few to judge)' : ''}`,
    bound: `>= ${floor}% (from ${minimum} sent + failed)`,
    ok: d.successRatePercent === null || sample < minimum || d.successRatePercent >= floor,
  });

  results.push({
    item: 'panic mode closed',
    value: status.panic.active ? 'OPEN' : 'closed',
    bound: 'closed',
    ok: !status.panic.active,
  });

  const stopped = thresholdById('scheduler-stopped');
  const schedulerWindow = stopped.periodSeconds * stopped.evaluationPeriods;
  const lastSuccess = status.scheduler.lastSuccessfulRunAt;
  const sinceSuccess = lastSuccess ? (now.getTime() - Date.parse(lastSuccess)) / 1000 : null;
  results.push({
    item: 'scheduler ran',
    value: sinceSuccess === null ? 'never' : `${minutes(sinceSuccess)} ago`,
    bound: `within ${minutes(schedulerWindow)}`,
    ok: sinceSuccess !== null && sinceSuccess <= schedulerWindow,
  });

  const expiring = thresholdById('whatsapp-token-expiring');
  if (input.token instanceof Error) {
    results.push({
      item: 'WhatsApp token valid',
      value: `unknown (${input.token.message})`,
      bound: `valid, ${expiring.threshold}+ days left`,
      ok: false,
    });
  } else {
    const daysLeft = input.token.expiresAt
      ? (Date.parse(input.token.expiresAt) - now.getTime()) / 86_400_000
      : null;
    results.push({
      item: 'WhatsApp token valid',
      value: !input.token.valid
        ? 'INVALID'
        : daysLeft === null
          ? 'valid, no expiry'
          : `valid, ${Math.floor(daysLeft)} days left`,
      bound: `valid, ${expiring.threshold}+ days left`,
      ok: input.token.valid && (daysLeft === null || daysLeft >= expiring.threshold),
    });
  }

  if (input.templates instanceof Error) {
    results.push({
      item: 'templates sendable',
      value: `unknown (${input.templates.message})`,
      bound: 'none PAUSED, DISABLED or REJECTED',
      ok: false,
    });
  } else {
    const broken = input.templates.templates.filter((t) => BROKEN_TEMPLATE_STATES.has(t.status));
    results.push({
      item: 'templates sendable',
      value: broken.length
        ? broken.map((t) => `${t.name}/${t.language} ${t.status}`).join(', ')
        : `${input.templates.templates.length} listed, none broken`,
      bound: 'none PAUSED, DISABLED or REJECTED',
      ok: broken.length === 0,
    });
  }
  return results;
}
