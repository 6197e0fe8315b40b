/**
 * `ops status` and `ops queue status`: the admin status, read the way on-call reads it, with the
 * alarm lines from lib/thresholds.ts next to the numbers they watch.
 */
import type { AdminStatus, QueueStatus } from '#core/admin/admin-status.ts';
import type { AlarmThreshold } from '../../lib/thresholds.ts';
import type { ApiClient } from './api-client.ts';
import type { Command } from './command.ts';
import { formatAge, formatTime, keyValues, sinceIso, table } from './output.ts';
import { panicSummary, panicTable } from './panic.ts';
import {
  readWindows,
  runDailyCheck,
  windowLines,
  windowOptions,
  windowOptionsHelp,
  windowRequest,
} from './status-windows.ts';

/** The alarm table, read when a status command runs (the other commands start faster without it). */
let alarms: readonly AlarmThreshold[] = [];
async function loadAlarms(): Promise<void> {
  alarms = (await import('../../lib/thresholds.ts')).ALARM_THRESHOLDS;
}

function threshold(id: string): number | undefined {
  return alarms.find((t) => t.id === id)?.threshold;
}

/** What is over an alarm line, in words: `backlog > 1000`, `oldest > 5m00s`, `DLQ not empty`. */
export function queueAlarm(q: QueueStatus): string | null {
  if (q.error) return `unreachable (${q.error})`;
  const notes: string[] = [];
  if (q.kind === 'dlq') {
    const min = threshold(`dlq-not-empty-${q.priority}`) ?? 1;
    if ((q.visible ?? 0) >= min) notes.push('ALARM: DLQ not empty (ops dlq list)');
    return notes.join('; ') || null;
  }
  const backlog = threshold(`queue-backlog-${q.priority}`);
  if (backlog !== undefined && (q.visible ?? 0) > backlog)
    notes.push(`ALARM: backlog > ${backlog}`);
  const age = threshold(`oldest-message-age-${q.priority}`);
  if (age !== undefined && (q.oldestAgeSeconds ?? 0) > age) {
    notes.push(`ALARM: oldest > ${formatAge(age)}`);
  }
  return notes.join('; ') || null;
}

export function queueTable(queues: readonly QueueStatus[]): string {
  return table(queues, [
    { title: 'QUEUE', value: (q) => q.name },
    { title: 'VISIBLE', value: (q) => q.visible, align: 'right' },
    { title: 'IN FLIGHT', value: (q) => q.inFlight, align: 'right' },
    { title: 'DELAYED', value: (q) => q.delayed, align: 'right' },
    { title: 'OLDEST', value: (q) => formatAge(q.oldestAgeSeconds), align: 'right' },
    { title: 'WAITING ROWS', value: (q) => q.waitingNotifications, align: 'right' },
    { title: 'NOTE', value: (q) => queueAlarm(q) },
  ]);
}

/** `3 (failed 2, deferred_panic_mode 1)`: marked in the last 24 h, by reason. */
function fallbackSummary(d: AdminStatus['last24h']): string {
  const reasons = Object.entries(d.fallbacksByReason ?? {})
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  return `${d.fallbacksRequired ?? 0}${reasons ? ` (${reasons})` : ''}`;
}

function last24hLines(status: AdminStatus): string[] {
  const d = status.last24h;
  const alarm = alarms.find((t) => t.id === 'delivery-failure-rate-warning');
  // The alarm ignores small samples; so does this note (a 1-of-2 failure is not an incident).
  const sample = d.sent + d.failed;
  const rate =
    d.successRatePercent === null
      ? 'no finished notifications yet'
      : `${d.successRatePercent}%${
          alarm &&
          100 - d.successRatePercent > alarm.threshold &&
          sample >= (alarm.minimumSample?.count ?? 0)
            ? ` (below ${100 - alarm.threshold}%: see runbooks/delivery-failures.md)`
            : ''
        }`;
  const byClass = Object.entries(d.failedByClass)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  const lines = [
    `Last 24 hours (notifications accepted since ${d.since.slice(0, 19)}Z)`,
    keyValues([
      ['accepted', d.accepted],
      ['sent', d.sent],
      ['delivered', d.delivered],
      ['read', d.read],
      ['failed', `${d.failed}${byClass ? ` (${byClass})` : ''}`],
      ['skipped', d.skipped],
      ['deferred', d.deferred],
      ['in progress', d.inProgress],
      ['skipped duplicate', d.skippedDuplicate],
      ['skipped rate limit', d.skippedRateLimit],
      ['success rate', rate],
      // Absent from an api older than cancel and fallback: shown as 0, not an error.
      ['cancelled', d.cancelled ?? 0],
      ['fallbacks required', fallbackSummary(d)],
    ]),
  ];
  if (d.topErrors.length) {
    lines.push(
      '',
      'Why they failed',
      table(d.topErrors, [
        { title: 'CLASS', value: (e) => e.errorClass },
        { title: 'CODE', value: (e) => e.errorCode, align: 'right' },
        { title: 'COUNT', value: (e) => e.count, align: 'right' },
        {
          title: 'EXAMPLE',
          value: (e) =>
            e.example && e.example.length > 64 ? `${e.example.slice(0, 63)}…` : e.example,
        },
      ]),
    );
  }
  return lines;
}

interface WhatsAppEventRow {
  receivedAt: string;
  field: string;
  event: string;
}

/**
 * The last few template, number and account events and refused webhook items. A deployment
 * without these routes yet (an older api) prints a note instead of failing the whole status.
 */
export async function webhookRecordLines(api: ApiClient): Promise<string[]> {
  try {
    const [events, rejects] = await Promise.all([
      api.get<{ events: WhatsAppEventRow[] }>('/v1/admin/whatsapp/events', { limit: 5 }),
      api.get<{ rejects: WhatsAppEventRow[]; retentionDays: number }>(
        '/v1/admin/whatsapp/rejects',
        { limit: 5 },
      ),
    ]);
    return [
      'Recent WhatsApp events (templates, number, account)',
      table(events.events, [
        { title: 'RECEIVED', value: (e) => formatTime(e.receivedAt) },
        { title: 'FIELD', value: (e) => e.field },
        { title: 'EVENT', value: (e) => e.event },
      ]),
      `Webhook items refused: ${
        rejects.rejects.length
          ? `${rejects.rejects.length === 5 ? '5 or more' : rejects.rejects.length} in the last ${rejects.retentionDays} days, latest ${sinceIso(rejects.rejects[0]!.receivedAt)} (raw items in table webhook_rejects)`
          : 'none'
      }`,
    ];
  } catch (error) {
    return [
      `Recent WhatsApp events: unavailable (${error instanceof Error ? error.message : String(error)})`,
    ];
  }
}

/** Keys about to expire, as a warning (absent from an api older than issue 16: no lines). */
export function keyExpiryLines(status: Partial<Pick<AdminStatus, 'keys'>>): string[] {
  const keys = status.keys;
  if (!keys || keys.expiringSoon.length === 0) return [];
  return [
    '',
    `WARNING: ${keys.expiringSoon.length} API key(s) expire within ${keys.warningDays} days; rotate them (ops keys rotate <prefix>)`,
    table(keys.expiringSoon, [
      { title: 'PREFIX', value: (k) => k.prefix },
      { title: 'NAME', value: (k) => k.name },
      { title: 'EXPIRES', value: (k) => formatTime(k.expiresAt) },
      { title: 'IN', value: (k) => formatAge((Date.parse(k.expiresAt) - Date.now()) / 1000) },
    ]),
  ];
}

/** What Meta says of each sending number, and the rate and daily cap the workers apply because of it. */
export function numberHealthLines(status: AdminStatus): string[] {
  const source = { operator: 'set by hand', meta: "Meta's", default: 'default', none: 'none' };
  return [
    "Number health (from Meta: webhooks and the scheduler's Graph read)",
    table(status.numberHealth ?? [], [
      { title: 'SENDER', value: (h) => h.senderId },
      { title: 'QUALITY', value: (h) => h.qualityRating ?? '?' },
      { title: 'TIER', value: (h) => h.messagingLimit ?? '?' },
      { title: 'THROUGHPUT', value: (h) => h.throughputLevel ?? '?' },
      {
        title: 'ACCOUNT',
        value: (h) => (h.accountDetail ? `${h.accountState}: ${h.accountDetail}` : h.accountState),
      },
      {
        title: 'RATE',
        value: (h) => `${h.limits.ratePerSecond}/s (${source[h.limits.rateSource]})`,
      },
      {
        title: 'DAILY CAP',
        value: (h) => `${h.limits.dailyCap ?? 'none'} (${source[h.limits.dailyCapSource]})`,
      },
      {
        title: 'UPDATED',
        value: (h) => (h.source === 'none' ? 'never' : `${sinceIso(h.updatedAt)} (${h.source})`),
      },
    ]),
  ];
}

/** Whether acceptance checks templates, and which ones it refuses (an older api has no `templates`). */
function templatesLine(status: AdminStatus): string {
  const t = status.templates as AdminStatus['templates'] | undefined;
  if (!t) return 'Templates: not reported by this deployment';
  const check =
    t.check === 'on'
      ? `checked at acceptance (${t.templates} in the registry)`
      : t.check === 'skipped'
        ? 'NOT checked: the registry was never filled'
        : t.check === 'off'
          ? 'not checked (no WHATSAPP_WABA_ID)'
          : `unknown (${t.reason ?? 'error'})`;
  const stopped = t.notApproved.map((n) => `${n.name} ${n.language} ${n.status}`).join(', ');
  return `Templates: ${check}${stopped ? `; not APPROVED: ${stopped}` : ''} (ops templates)`;
}

export const statusCommands: Command[] = [
  {
    name: 'status',
    summary: 'everything at once: last 24 h, queues, panic mode, limits, rollout, scheduler',
    description: 'What GET /v1/admin/status answers, for the first five minutes of an incident.',
    options: { ...windowOptions },
    optionsHelp: [...windowOptionsHelp],
    examples: [
      'npm run ops -- status --hours 1 --compare yesterday',
      'npm run ops -- status --by-client',
      'npm run ops -- status --check',
    ],
    async run(ctx) {
      const api = await ctx.api();
      const request = windowRequest(ctx);
      const [status, webhookLines, windows] = await Promise.all([
        api.get<AdminStatus>('/v1/admin/status'),
        webhookRecordLines(api),
        request ? readWindows(api, request) : undefined,
        loadAlarms(),
      ]);
      if (ctx.flags.check === true) return runDailyCheck(ctx, status);
      ctx.out.data(windows ? { ...status, windows } : status);
      const r = status.rollout;
      const limits = status.rateLimiter.limits;
      const lastRun = status.scheduler.lastRun;
      const lines = [
        ...(windows ? windowLines(windows) : last24hLines(status)),
        '',
        'Queues',
        queueTable(status.queues),
        '',
        panicSummary(status.panic),
        panicTable(status.panic.senders),
        '',
        `Rate limiter: ${r.rateByHand === false ? "the number's throughput (Number health below)" : `${limits.ratePerSecond}/s`} per sender, per-minute cap ${limits.perMinuteCap ?? 'none'}, daily cap ${limits.dailyCap ?? "none set (the number's tier, below)"}, ${limits.recipientSpacingSeconds} s between messages to one recipient`,
        table(status.rateLimiter.senders, [
          { title: 'SENDER', value: (s) => s.senderId },
          { title: 'TOKENS NOW', value: (s) => s.tokensAvailable, align: 'right' },
          { title: 'THIS MINUTE', value: (s) => s.minuteCount, align: 'right' },
          { title: 'TODAY (UTC)', value: (s) => s.dayCount, align: 'right' },
        ]),
        '',
        `Rollout: delivery ${r.deliveryEnabled ? 'on' : 'OFF'}, dry run ${r.dryRun ? 'ON' : 'off'}, pilot ${r.pilotPrefixes.length ? r.pilotPrefixes.join(',') : 'everyone'} (ops rollout get)`,
        `Scheduler: ${
          lastRun
            ? `last run ${sinceIso(lastRun.startedAt)} (${lastRun.outcome}), last success ${sinceIso(status.scheduler.lastSuccessfulRunAt)}`
            : 'has not run yet'
        }`,
        templatesLine(status),
        '',
        ...numberHealthLines(status),
        '',
        ...webhookLines,
        ...keyExpiryLines(status),
      ];
      for (const line of lines) ctx.out.line(line);
      return 0;
    },
  },
  {
    name: 'queue status',
    summary: 'depth and oldest age of the delivery queues and their DLQs',
    description:
      'VISIBLE waits to be received, IN FLIGHT is with a worker or waiting for a retry, DELAYED was sent\n' +
      'with a delay. OLDEST is the age of the oldest notification waiting on the queue (from the\n' +
      'notifications table; CloudWatch ApproximateAgeOfOldestMessage is what the alarm reads).',
    async run(ctx) {
      const [status] = await Promise.all([
        (await ctx.api()).get<AdminStatus>('/v1/admin/status'),
        loadAlarms(),
      ]);
      ctx.out.data({ generatedAt: status.generatedAt, queues: status.queues });
      ctx.out.line(queueTable(status.queues));
      return 0;
    },
  },
];
