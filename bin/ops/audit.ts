/** `ops audit tail`: the latest audit entries (denials, panic mode, rollout, keys), optionally followed. */
import { setTimeout as sleep } from 'node:timers/promises';
import { type Command, intFlag, stringFlag } from './command.ts';
import { formatTime, table } from './output.ts';

interface AuditEntry {
  id: string;
  at: string;
  actor: string;
  action: string;
  outcome: 'ok' | 'denied';
  requestId: string | null;
  sourceIp: string | null;
  detail: unknown;
}

function detailText(detail: unknown): string {
  if (detail === null || detail === undefined) return '-';
  const text = JSON.stringify(detail);
  return text.length > 100 ? `${text.slice(0, 99)}…` : text;
}

function render(entries: readonly AuditEntry[], withHeader: boolean): string {
  const text = table(entries, [
    { title: 'TIME', value: (e) => formatTime(e.at) },
    { title: 'ACTOR', value: (e) => e.actor },
    { title: 'ACTION', value: (e) => e.action },
    { title: 'OUTCOME', value: (e) => e.outcome },
    { title: 'REQUEST ID', value: (e) => e.requestId },
    { title: 'DETAIL', value: (e) => detailText(e.detail) },
  ]);
  return withHeader ? text : text.split('\n').slice(1).join('\n');
}

export const auditCommand: Command = {
  name: 'audit tail',
  summary: 'the latest audit entries, oldest first (--follow to keep watching)',
  usage: '[--limit 20] [--action <prefix>] [--follow]',
  options: {
    limit: { type: 'string' },
    action: { type: 'string' },
    follow: { type: 'boolean', short: 'f' },
  },
  optionsHelp: [
    ['--limit <n>', 'how many entries (1-500, default 20)'],
    ['--action <prefix>', 'only actions starting with this: panic. rollout. key. auth.'],
    ['--follow, -f', 'keep printing new entries every 2 s until Ctrl-C'],
  ],
  examples: ['npm run ops -- audit tail --action auth. --limit 50'],
  async run(ctx) {
    const limit = intFlag(ctx, 'limit', { min: 1, max: 500 }) ?? 20;
    const action = stringFlag(ctx, 'action');
    const api = await ctx.api();
    const first = await api.get<{ entries: AuditEntry[] }>('/v1/admin/audit', { limit, action });
    const entries = [...first.entries].reverse();
    if (!ctx.flags.follow) {
      ctx.out.data({ entries });
      ctx.out.line(render(entries, true));
      return 0;
    }
    // Following: JSON mode prints one entry per line so a script can read them as they come.
    const print = (batch: AuditEntry[], header: boolean) => {
      if (ctx.out.json) for (const e of batch) process.stdout.write(`${JSON.stringify(e)}\n`);
      else if (batch.length) ctx.out.line(render(batch, header));
    };
    print(entries, true);
    let lastId = entries.at(-1)?.id ?? '0';
    let stop = false;
    process.once('SIGINT', () => {
      stop = true;
    });
    while (!stop) {
      await sleep(2_000);
      const next = await api.get<{ entries: AuditEntry[] }>('/v1/admin/audit', {
        limit: 500,
        action,
        after: lastId,
      });
      const batch = [...next.entries].reverse();
      print(batch, false);
      lastId = batch.at(-1)?.id ?? lastId;
    }
    return 0;
  },
};
