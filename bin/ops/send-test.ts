/**
 * `ops send-test <number>`: one template notification through the public API with the operator's
 * key (admin implies the notification scopes), followed until it is delivered or fails. The number
 * is never printed, only the masked form the API answers with.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { NotificationView } from '#core/notifications/notification-view.ts';
import { type Command, positiveNumberFlag, stringFlag } from './command.ts';
import { keyValues } from './output.ts';
import { UsageError } from './target.ts';

const SUCCESS = new Set(['delivered', 'read']);
const FAILURE = new Set(['failed', 'skipped']);

export const sendTestCommand: Command = {
  name: 'send-test',
  summary: 'send the hello_world template to a number and follow it to delivered or failed',
  usage:
    '<number> [--template hello_world] [--language en_US] [--priority high|bulk] [--timeout 60]',
  description:
    'Posts a notification with your key and polls it until it is delivered, read, failed or skipped.\n' +
    'Exit code 0 when it was delivered, 1 when it failed, was skipped or had not arrived by --timeout.',
  positionals: { min: 1, max: 1, names: '<number>' },
  options: {
    template: { type: 'string' },
    language: { type: 'string' },
    priority: { type: 'string' },
    timeout: { type: 'string' },
  },
  optionsHelp: [
    ['<number>', 'the recipient in E.164, such as +573001234567 (a mobile you own)'],
    ['--template <name>', 'default hello_world'],
    ['--language <code>', 'default en_US'],
    ['--priority high|bulk', 'default high'],
    ['--timeout <seconds>', 'how long to follow it (default 60)'],
  ],
  examples: ['npm run ops -- send-test +573001234567'],
  async run(ctx) {
    const to = ctx.positionals[0]!;
    if (!/^\+\d{7,15}$/.test(to)) {
      throw new UsageError('the number must be in E.164 form: + and 7 to 15 digits');
    }
    const priority = stringFlag(ctx, 'priority') ?? 'high';
    if (priority !== 'high' && priority !== 'bulk')
      throw new UsageError('--priority is high or bulk');
    const timeoutSeconds = positiveNumberFlag(ctx, 'timeout') ?? 60;
    const api = await ctx.api();
    const created = await api.post<NotificationView>('/v1/notifications', {
      to,
      template: {
        name: stringFlag(ctx, 'template') ?? 'hello_world',
        language: stringFlag(ctx, 'language') ?? 'en_US',
      },
      priority,
      metadata: { source: 'ops send-test' },
    });
    ctx.out.line(
      `Sent notification ${created.id} to ${created.to} (request id ${created.requestId}).`,
    );
    ctx.out.line(`  ${created.status}`);

    const deadline = Date.now() + timeoutSeconds * 1000;
    let view = created;
    let last = created.status;
    while (!SUCCESS.has(view.status) && !FAILURE.has(view.status) && Date.now() < deadline) {
      await sleep(500);
      view = await api.get<NotificationView>(`/v1/notifications/${created.id}`);
      if (view.status !== last) {
        ctx.out.line(
          `  ${view.status}${view.error ? ` (${view.error.class} ${view.error.code ?? ''})`.trimEnd() : ''}`,
        );
        last = view.status;
      }
    }
    const ok = SUCCESS.has(view.status);
    const outcome = ok
      ? 'delivered'
      : FAILURE.has(view.status)
        ? view.status
        : `not delivered after ${timeoutSeconds} s`;
    ctx.out.data({ outcome, notification: view });
    ctx.out.line();
    ctx.out.line(
      keyValues([
        ['outcome', outcome],
        ['status', view.status],
        ['reason', view.statusReason],
        ['attempts', view.attempts],
        ['wamid', view.wamid],
        [
          'error',
          view.error
            ? `${view.error.class} ${view.error.code ?? ''} ${view.error.message ?? ''}`.trim()
            : null,
        ],
      ]),
    );
    if (view.status === 'deferred') {
      ctx.out.line('Deferred: panic mode is on or the kill switch is off (ops status).');
    }
    return ok ? 0 : 1;
  },
};
