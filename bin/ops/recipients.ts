/** `ops recipients erase <number>`: erase one person everywhere (issue 16); the number is never printed. */
import type { Command } from './command.ts';
import { table } from './output.ts';
import { UsageError } from './target.ts';

interface Erasure {
  recipient: string;
  erased: Record<string, number>;
  total: number;
}

export const recipientCommands: Command[] = [
  {
    name: 'recipients erase',
    summary:
      'erase one person: redact every row, opt-out, pending status and webhook record of a number',
    usage: '<+E.164 number> --yes',
    description:
      'Calls POST /v1/admin/recipients/erase (admin key). Notifications keep their statuses, ' +
      'timestamps and error class and lose the number, text and metadata; rows not sent yet are ' +
      'skipped; opt-outs are kept under a salted hash so the person stays opted out. Audited ' +
      'without the number. Cannot be undone: pass --yes.',
    options: { yes: { type: 'boolean' } },
    optionsHelp: [['--yes', 'confirm: the erasure cannot be undone']],
    positionals: { min: 1, max: 1, names: '<number>' },
    examples: ['npm run ops -- recipients erase +573001234567 --yes'],
    async run(ctx) {
      const to = ctx.positionals[0] ?? '';
      if (!/^\+[1-9]\d{6,14}$/.test(to)) {
        throw new UsageError('the number must be E.164: + and 7 to 15 digits');
      }
      if (ctx.flags.yes !== true) {
        throw new UsageError('erasing cannot be undone: pass --yes to confirm');
      }
      const done = await (await ctx.api()).post<Erasure>('/v1/admin/recipients/erase', { to });
      ctx.out.data(done);
      ctx.out.line(`${done.recipient}: ${done.total} row(s) erased.`);
      ctx.out.line(
        table(Object.entries(done.erased), [
          { title: 'WHERE', value: ([name]) => name },
          { title: 'ROWS', value: ([, n]) => String(n) },
        ]),
      );
      return 0;
    },
  },
];
