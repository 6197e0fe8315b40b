/**
 * What `ops status` adds for issue 17: `--hours <n>` and `--compare yesterday` (outcomes over
 * another window, side by side with the same hours a day earlier), `--by-client` (accepted / sent /
 * failed per client) and `--check` (the daily checklist, exit 1 when an item is out of bounds).
 */
import type { AdminStatus } from '#core/admin/admin-status.ts';
import type { OutcomeWindow, OutcomeWindows } from '#core/admin/outcome-window.ts';
import type { ApiClient } from './api-client.ts';
import { boolFlag, type CommandContext, intFlag, stringFlag } from './command.ts';
import { table } from './output.ts';
import { UsageError } from './target.ts';

export const windowOptions = {
  hours: { type: 'string' },
  compare: { type: 'string' },
  'by-client': { type: 'boolean' },
  check: { type: 'boolean' },
} as const;

export const windowOptionsHelp: [string, string][] = [
  ['--hours <n>', 'outcomes of the last n hours instead of 24 (1 to 168)'],
  ['--compare yesterday', 'next to the same hours 24 hours earlier'],
  ['--by-client', 'accepted, sent and failed per client in the window'],
  [
    '--check',
    'evaluate the daily checklist (runbooks/daily-checks.md); exit 1 if anything is out of bounds',
  ],
];

export interface WindowRequest {
  hours: number;
  compare: boolean;
  byClient: boolean;
}

/** The window the flags ask for, or undefined when the plain 24 h status will do. */
export function windowRequest(ctx: CommandContext): WindowRequest | undefined {
  const hours = intFlag(ctx, 'hours', { min: 1, max: 168 });
  const compare = stringFlag(ctx, 'compare');
  if (compare !== undefined && compare !== 'yesterday')
    throw new UsageError('--compare takes yesterday');
  const byClient = boolFlag(ctx, 'by-client');
  if (hours === undefined && compare === undefined && !byClient) return undefined;
  return { hours: hours ?? 24, compare: compare !== undefined, byClient };
}

export function readWindows(api: ApiClient, request: WindowRequest): Promise<OutcomeWindows> {
  return api.get<OutcomeWindows>('/v1/admin/status/outcomes', {
    hours: request.hours,
    ...(request.compare ? { compare: 'yesterday' } : {}),
    ...(request.byClient ? { byClient: 'true' } : {}),
  });
}

const ROWS: [string, (w: OutcomeWindow) => number | string][] = [
  ['accepted', (w) => w.accepted],
  ['sent', (w) => w.sent],
  ['delivered', (w) => w.delivered],
  ['read', (w) => w.read],
  ['failed', (w) => w.failed],
  ['skipped', (w) => w.skipped],
  ['deferred', (w) => w.deferred],
  ['in progress', (w) => w.inProgress],
  ['success rate', (w) => (w.successRatePercent === null ? '-' : `${w.successRatePercent}%`)],
];

function change(now: number | string, before: number | string): string {
  if (typeof now !== 'number' || typeof before !== 'number') return '';
  const diff = now - before;
  return diff === 0 ? '=' : diff > 0 ? `+${diff}` : String(diff);
}

/** The lines that stand for the window (and yesterday's, and the clients) in `ops status`. */
export function windowLines(windows: OutcomeWindows): string[] {
  const { current, previous } = windows;
  const title = `Last ${current.hours} hours (notifications accepted ${current.since.slice(0, 16)}Z to ${current.until.slice(0, 16)}Z)`;
  const lines = [title];
  if (previous) {
    lines.push(
      table(ROWS, [
        { title: '', value: ([label]) => label },
        { title: 'NOW', value: ([, read]) => read(current), align: 'right' },
        { title: 'YESTERDAY', value: ([, read]) => read(previous), align: 'right' },
        { title: 'CHANGE', value: ([, read]) => change(read(current), read(previous)) },
      ]),
    );
  } else {
    lines.push(
      table(ROWS, [
        { title: '', value: ([label]) => label },
        { title: 'COUNT', value: ([, read]) => read(current), align: 'right' },
      ]),
    );
  }
  const byClass = Object.entries(current.failedByClass)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  if (byClass) lines.push(`failed by class: ${byClass}`);
  if (windows.byClient) {
    lines.push(
      '',
      `Per client, last ${current.hours} hours (most failures first)`,
      table(windows.byClient, [
        { title: 'CLIENT', value: (c) => c.clientId },
        { title: 'NAME', value: (c) => c.clientName },
        { title: 'ACCEPTED', value: (c) => c.accepted, align: 'right' },
        { title: 'SENT', value: (c) => c.sent, align: 'right' },
        { title: 'FAILED', value: (c) => c.failed, align: 'right' },
        {
          title: 'SUCCESS',
          value: (c) => (c.successRatePercent === null ? '-' : `${c.successRatePercent}%`),
          align: 'right',
        },
      ]),
    );
  }
  return lines;
}

/** `ops status --check`: the daily checklist, one row per item; 1 when any is out of bounds. */
export async function runDailyCheck(ctx: CommandContext, status: AdminStatus): Promise<number> {
  const api = await ctx.api();
  const asError = (error: unknown) => (error instanceof Error ? error : new Error(String(error)));
  const [{ evaluateDailyChecks, UNCHECKED_ITEMS }, token, templates] = await Promise.all([
    import('./daily-checks.ts'),
    api
      .get<{ valid: boolean; expiresAt: string | null }>('/v1/admin/whatsapp/token')
      .catch(asError),
    api
      .get<{ templates: { name: string; language: string; status: string }[] }>(
        '/v1/admin/whatsapp/templates',
      )
      .catch(asError),
  ]);
  const results = evaluateDailyChecks({ status, token, templates, now: new Date() });
  const failing = results.filter((r) => !r.ok);
  ctx.out.data({ ok: failing.length === 0, checks: results, notChecked: UNCHECKED_ITEMS });
  ctx.out.line(
    table(results, [
      { title: 'CHECK', value: (r) => r.item },
      { title: 'VALUE', value: (r) => r.value },
      { title: 'BOUND', value: (r) => r.bound },
      { title: 'RESULT', value: (r) => (r.ok ? 'ok' : 'OUT OF BOUNDS') },
    ]),
  );
  ctx.out.line(`Not checked here (see runbooks/daily-checks.md): ${UNCHECKED_ITEMS.join(', ')}`);
  if (failing.length) {
    ctx.out.note(
      `ops: ${failing.length} daily check(s) out of bounds: ${failing.map((r) => r.item).join('; ')}`,
    );
    return 1;
  }
  return 0;
}
