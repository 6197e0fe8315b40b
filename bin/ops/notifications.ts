/** `ops notifications find --to <number>`: "did my customer get it?" without database access. */
import { type Command, intFlag, requiredFlag } from './command.ts';
import { formatTime, table } from './output.ts';
import { UsageError } from './target.ts';

interface RecipientNotifications {
  recipient: string;
  notifications: {
    id: string;
    clientId: string;
    status: string;
    to: string;
    template: string | null;
    errorClass: string | null;
    errorCode: number | null;
    createdAt: string;
    sentAt: string | null;
    deliveredAt: string | null;
    readAt: string | null;
  }[];
}

export const notificationCommands: Command[] = [
  {
    name: 'notifications find',
    summary: 'a recipient’s latest notifications, newest first (number masked; audited)',
    usage: '--to <+E.164 number> [--limit 20]',
    description:
      'Reads GET /v1/admin/recipients/notifications (admin key). The lookup is written to the audit\n' +
      'log without the number; the answer shows it masked. `ops opt-outs show` says why a number\n' +
      'gets nothing at all.',
    options: { to: { type: 'string' }, limit: { type: 'string' } },
    optionsHelp: [
      ['--to <number>', 'the recipient in E.164, e.g. +573001234567 (required)'],
      ['--limit <n>', 'how many, newest first (1 to 100, default 20)'],
    ],
    examples: ['npm run ops -- notifications find --to +573001234567'],
    async run(ctx) {
      const to = requiredFlag(ctx, 'to', 'the recipient in E.164').trim();
      if (!/^\+[1-9]\d{6,14}$/.test(to))
        throw new UsageError('--to must be E.164: + and 7 to 15 digits');
      const limit = intFlag(ctx, 'limit', { min: 1, max: 100 });
      const found = await (await ctx.api()).get<RecipientNotifications>(
        '/v1/admin/recipients/notifications',
        { to, limit },
      );
      ctx.out.data(found);
      ctx.out.line(
        `${found.recipient}: ${found.notifications.length} notification(s), newest first`,
      );
      ctx.out.line(
        table(found.notifications, [
          { title: 'CREATED', value: (n) => formatTime(n.createdAt) },
          { title: 'ID', value: (n) => n.id },
          { title: 'CLIENT', value: (n) => n.clientId },
          { title: 'TEMPLATE', value: (n) => n.template },
          { title: 'STATUS', value: (n) => n.status },
          {
            title: 'ERROR',
            value: (n) => (n.errorClass ? `${n.errorClass} ${n.errorCode ?? ''}`.trim() : null),
          },
          {
            title: 'LAST CHANGE',
            value: (n) => formatTime(n.readAt ?? n.deliveredAt ?? n.sentAt ?? n.createdAt),
          },
        ]),
      );
      return 0;
    },
  },
];
