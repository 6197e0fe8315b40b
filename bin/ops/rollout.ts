/** `ops rollout get|set`: the kill switch, dry run, pilot allow-list and sending limits. */
import type { Rollout, RolloutPatch } from '#core/delivery/rollout.ts';
import { type Command, type CommandContext, stringFlag } from './command.ts';
import { cell, formatTime, keyValues, table } from './output.ts';
import { UsageError } from './target.ts';

export function rolloutLines(r: Rollout): string {
  return keyValues([
    ['delivery', r.deliveryEnabled ? 'on' : 'OFF (kill switch: notifications wait as deferred)'],
    ['dry run', r.dryRun ? 'ON (nothing is sent; notifications end skipped)' : 'off'],
    ['pilot prefixes', r.pilotPrefixes.length ? r.pilotPrefixes.join(', ') : 'everyone'],
    [
      'rate per second',
      r.rateByHand
        ? `${r.ratePerSecond} (set by hand)`
        : "the number's throughput (80 or 1000; ops status)",
    ],
    ['per-minute cap', r.perMinuteCap ?? 'none'],
    ['daily cap', r.dailyCap ?? "none set: the number's messaging limit tier (ops status)"],
    ['recipient spacing', `${r.recipientSpacingSeconds} s`],
    ['drain per second', r.drainPerSecond],
    ['updated', `${formatTime(r.updatedAt)} by ${r.updatedBy}`],
  ]);
}

/** null caps and an empty pilot list both mean "no limit". */
function settingText(value: unknown): string {
  if (value === null || (Array.isArray(value) && value.length === 0)) return 'none';
  return cell(value);
}

function onOff(ctx: CommandContext, flag: string): boolean | undefined {
  const raw = stringFlag(ctx, flag);
  if (raw === undefined) return undefined;
  if (['on', 'true', 'yes'].includes(raw)) return true;
  if (['off', 'false', 'no'].includes(raw)) return false;
  throw new UsageError(`--${flag} takes on or off`);
}

function wholeNumber(
  ctx: CommandContext,
  flag: string,
  min: number,
  max: number,
  nullable: boolean,
) {
  const raw = stringFlag(ctx, flag);
  if (raw === undefined) return undefined;
  if (nullable && raw === 'none') return null;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new UsageError(
      `--${flag} takes a whole number from ${min} to ${max}${nullable ? ', or none' : ''}`,
    );
  }
  return value;
}

function patchFromFlags(ctx: CommandContext): RolloutPatch {
  const patch: RolloutPatch = {};
  const delivery = onOff(ctx, 'delivery');
  if (delivery !== undefined) patch.deliveryEnabled = delivery;
  const dryRun = onOff(ctx, 'dry-run');
  if (dryRun !== undefined) patch.dryRun = dryRun;
  const pilot = stringFlag(ctx, 'pilot');
  if (pilot !== undefined) {
    patch.pilotPrefixes =
      pilot === 'none' || pilot === ''
        ? []
        : pilot
            .split(',')
            .map((p) => p.trim())
            .filter(Boolean);
  }
  // `meta` hands the rate back to the number's throughput level.
  if (stringFlag(ctx, 'rate') === 'meta') patch.ratePerSecond = null;
  else {
    const rate = wholeNumber(ctx, 'rate', 1, 1000, false);
    if (rate !== undefined && rate !== null) patch.ratePerSecond = rate;
  }
  const perMinute = wholeNumber(ctx, 'per-minute', 1, 10_000_000, true);
  if (perMinute !== undefined) patch.perMinuteCap = perMinute;
  const daily = wholeNumber(ctx, 'daily', 1, 1_000_000_000, true);
  if (daily !== undefined) patch.dailyCap = daily;
  const spacing = wholeNumber(ctx, 'spacing', 0, 3600, false);
  if (spacing !== undefined && spacing !== null) patch.recipientSpacingSeconds = spacing;
  const drain = wholeNumber(ctx, 'drain', 1, 1000, false);
  if (drain !== undefined && drain !== null) patch.drainPerSecond = drain;
  return patch;
}

export const rolloutCommands: Command[] = [
  {
    name: 'rollout get',
    summary: 'show the kill switch, dry run, pilot prefixes and sending limits',
    async run(ctx) {
      const rollout = await (await ctx.api()).get<Rollout>('/v1/admin/rollout');
      ctx.out.data(rollout);
      ctx.out.line(rolloutLines(rollout));
      return 0;
    },
  },
  {
    name: 'rollout set',
    summary: 'change some rollout switches (the others keep their value)',
    usage:
      '[--delivery on|off] [--dry-run on|off] [--pilot +57,+52|none] [--rate N|meta] [--per-minute N|none] [--daily N|none] [--spacing S] [--drain N]',
    description:
      'Every worker sees a change within 5 s. Audited with your key prefix.\n' +
      '--delivery off is the kill switch: nothing is sent and notifications wait as deferred until it is on again.',
    options: {
      delivery: { type: 'string' },
      'dry-run': { type: 'string' },
      pilot: { type: 'string' },
      rate: { type: 'string' },
      'per-minute': { type: 'string' },
      daily: { type: 'string' },
      spacing: { type: 'string' },
      drain: { type: 'string' },
    },
    optionsHelp: [
      ['--delivery on|off', 'the kill switch'],
      ['--dry-run on|off', 'run every step but the send; notifications end skipped'],
      [
        '--pilot <prefixes>',
        'only these E.164 prefixes get messages (+57,+52300), or none for everyone',
      ],
      [
        '--rate <n>|meta',
        "token bucket per sender, messages per second (1-1000), or meta: follow the number's throughput (80, or 1000 after Meta's upgrade)",
      ],
      ['--per-minute <n>|none', 'cap per sender and minute'],
      [
        '--daily <n>|none',
        "cap per sender and UTC day; the rest waits as deferred (none: the number's messaging limit tier)",
      ],
      ['--spacing <seconds>', 'minimum time between two messages to one recipient'],
      [
        '--drain <n>',
        'deferred notifications re-queued per second after panic mode or the kill switch',
      ],
    ],
    examples: [
      'npm run ops -- rollout set --delivery off',
      'npm run ops -- rollout set --pilot +57300 --daily 500',
    ],
    async run(ctx) {
      const patch = patchFromFlags(ctx);
      if (Object.keys(patch).length === 0) {
        throw new UsageError('name at least one setting to change (see rollout set --help)');
      }
      const api = await ctx.api();
      const before = await api.get<Rollout>('/v1/admin/rollout');
      const after = await api.put<Rollout>('/v1/admin/rollout', patch);
      const changes = (Object.keys(patch) as (keyof RolloutPatch)[])
        .filter((key) => JSON.stringify(before[key]) !== JSON.stringify(after[key]))
        .map((key) => ({ setting: key, from: before[key], to: after[key] }));
      ctx.out.data({ rollout: after, changes });
      ctx.out.line(
        changes.length
          ? table(changes, [
              { title: 'SETTING', value: (c) => c.setting },
              { title: 'FROM', value: (c) => settingText(c.from) },
              { title: 'TO', value: (c) => settingText(c.to) },
            ])
          : 'Nothing changed: the settings already had these values.',
      );
      return 0;
    },
  },
];
