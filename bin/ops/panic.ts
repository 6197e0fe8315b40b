/** `ops panic status|enable|disable`: panic mode (the circuit of each sender) through the admin API. */
import type { PanicState } from '#core/delivery/panic-mode.ts';
import { type Command, type CommandContext, requiredFlag, stringFlag } from './command.ts';
import { formatTime, sinceIso, table } from './output.ts';
import { UsageError } from './target.ts';

export function panicTable(senders: readonly PanicState[]): string {
  return table(senders, [
    { title: 'SENDER', value: (s) => s.senderId },
    { title: 'PANIC', value: (s) => (s.active ? 'ON' : 'off') },
    { title: 'SINCE', value: (s) => (s.active ? formatTime(s.openedAt) : null) },
    { title: 'BY', value: (s) => (s.active ? s.openedBy : null) },
    { title: 'REASON', value: (s) => (s.active ? s.reason : null) },
    { title: 'FAILURES', value: (s) => s.consecutiveFailures, align: 'right' },
    {
      title: 'GOOD PROBES',
      // A held circuit waits for a person whatever the probes say.
      value: (s) => (s.active ? (s.held ? `${s.goodProbes} (held)` : `${s.goodProbes}/3`) : null),
    },
    { title: 'LAST PROBE', value: (s) => sinceIso(s.lastProbeAt) },
  ]);
}

export function panicSummary(panic: { active: boolean; senders: PanicState[] }): string {
  if (!panic.active) return 'Panic mode is OFF: notifications are being sent.';
  const on = panic.senders.filter((s) => s.active).map((s) => s.senderId);
  return `Panic mode is ON for ${on.join(', ')}: nothing is sent from ${on.length > 1 ? 'them' : 'it'}; notifications wait as deferred.`;
}

function change(enabled: boolean): Command {
  const verb = enabled ? 'enable' : 'disable';
  return {
    name: `panic ${verb}`,
    summary: enabled
      ? 'turn panic mode on: stop sending, park notifications as deferred'
      : 'turn panic mode off: resume sending, drain deferred notifications slowly',
    usage: '--reason <text> [--sender <phone number id>]',
    description: enabled
      ? 'Opens the circuit of a sender by hand and holds it: nothing is sent from it until a person disables\npanic mode (the probes keep running and report, but do not close it); notifications wait as\ndeferred. Audited with your key prefix.'
      : 'Closes the circuit of a sender. The scheduler re-queues the deferred notifications at the\nrollout drain rate (see `rollout get`). Audited with your key prefix.',
    options: { reason: { type: 'string' }, sender: { type: 'string' } },
    optionsHelp: [
      ['--reason <text>', 'why (3 to 500 characters; required, kept in the audit log)'],
      ['--sender <id>', 'the sender phone number id (default: the configured sender)'],
    ],
    examples: [
      `npm run ops -- panic ${verb} --reason "${enabled ? 'Meta outage, INC-123' : 'Meta recovered, INC-123'}"`,
    ],
    async run(ctx: CommandContext) {
      const reason = requiredFlag(ctx, 'reason', 'say why, for the audit log');
      if (reason.trim().length < 3 || reason.length > 500) {
        throw new UsageError('--reason must be 3 to 500 characters');
      }
      const senderId = stringFlag(ctx, 'sender');
      const answer = await (await ctx.api()).post<{ changed: boolean; sender: PanicState }>(
        '/v1/admin/panic',
        { enabled, reason, ...(senderId ? { senderId } : {}) },
      );
      ctx.out.data(answer);
      const state = enabled ? 'ON' : 'OFF';
      ctx.out.line(
        answer.changed
          ? `Panic mode is now ${state} for sender ${answer.sender.senderId}.`
          : `Panic mode was already ${state} for sender ${answer.sender.senderId}; nothing changed.`,
      );
      ctx.out.line(panicTable([answer.sender]));
      return 0;
    },
  };
}

export const panicCommands: Command[] = [
  {
    name: 'panic status',
    summary: 'is panic mode on, for which sender, since when and why',
    async run(ctx) {
      const panic = await (await ctx.api()).get<{ active: boolean; senders: PanicState[] }>(
        '/v1/admin/panic',
      );
      ctx.out.data(panic);
      ctx.out.line(panicSummary(panic));
      ctx.out.line(panicTable(panic.senders));
      return 0;
    },
  },
  change(true),
  change(false),
];
