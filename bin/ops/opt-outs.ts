/** `ops opt-outs show <number>`: a recipient's opt-outs (scope, source, time), number masked. */
import type { Command } from './command.ts';
import { formatTime, table } from './output.ts';
import { UsageError } from './target.ts';

interface RecipientOptOuts {
  recipient: string;
  optOuts: { key: 'phone' | 'bsuid'; scope: string; source: string; changedAt: string }[];
}

export const optOutCommands: Command[] = [
  {
    name: 'opt-outs show',
    summary: 'a recipient’s opt-outs: scope (all | marketing), source and time',
    usage: '<+E.164 number>',
    description:
      'Reads GET /v1/admin/recipients/opt-outs (admin key; the lookup is audited). Opt-outs kept ' +
      'under the business-scoped user id Meta reported for the number are shown too.',
    positionals: { min: 1, max: 1, names: '<number>' },
    examples: ['npm run ops -- opt-outs show +573001234567'],
    async run(ctx) {
      const to = ctx.positionals[0] ?? '';
      if (!/^\+[1-9]\d{6,14}$/.test(to)) {
        throw new UsageError('the number must be E.164: + and 7 to 15 digits');
      }
      const found = await (await ctx.api()).get<RecipientOptOuts>('/v1/admin/recipients/opt-outs', {
        to,
      });
      ctx.out.data(found);
      if (found.optOuts.length === 0) {
        ctx.out.line(`${found.recipient}: no opt-outs; every message may be sent.`);
        return 0;
      }
      ctx.out.line(`${found.recipient}:`);
      ctx.out.line(
        table(found.optOuts, [
          { title: 'SCOPE', value: (o) => o.scope },
          { title: 'SOURCE', value: (o) => o.source },
          { title: 'UNDER', value: (o) => (o.key === 'phone' ? 'number' : 'BSUID') },
          { title: 'SINCE', value: (o) => formatTime(o.changedAt) },
        ]),
      );
      return 0;
    },
  },
];
