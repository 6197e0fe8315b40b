/**
 * `ops keys create|list|rotate|revoke|fallback|limits`: API keys through the admin API; a new key
 * is printed once. `keys fallback` sets the default fallback delay of the client a key belongs to,
 * `keys limits` changes its rate, daily quota or highest priority.
 */

import { isUuid } from '#core/platform/ids.ts';
import {
  boolFlag,
  type Command,
  type CommandContext,
  parseDuration,
  printOnceOnly,
  requiredFlag,
  stringFlag,
} from './command.ts';
import { formatTime, keyValues, sinceIso, table } from './output.ts';
import {
  OpsError,
  readStackOutputs,
  STAGES,
  type Stage,
  stackNameFor,
  UsageError,
} from './target.ts';

interface KeyRow {
  prefix: string;
  clientId: string;
  name: string;
  scopes: string[];
  state: 'active' | 'expiring' | 'revoked' | 'expired';
  createdAt: string;
  revokedAt: string | null;
  expiresAt: string | null;
  lastUsedAt: string | null;
  limits: Limits;
}

interface Limits {
  ratePerSecond: number | null;
  dailyQuota: number | null;
  maxPriority: 'high' | 'bulk' | null;
}

/** `5/s`, `0.5/s` or `5`: notifications per second. */
export function parseRate(raw: string): number {
  const match = /^(\d+(?:\.\d+)?)(?:\/s)?$/.exec(raw.trim());
  const rate = match ? Number(match[1]) : Number.NaN;
  if (!(rate > 0) || rate > 10_000) {
    throw new UsageError(
      '--rate must be notifications per second, such as 5/s or 0.5/s (at most 10000)',
    );
  }
  return rate;
}

function parseDaily(raw: string): number {
  if (!/^\d+$/.test(raw.trim()) || Number(raw) > 10_000_000) {
    throw new UsageError('--daily must be a whole number of notifications per UTC day');
  }
  return Number(raw);
}

/** The limits as `keys list` and `keys create` print them. */
export function describeLimits(limits: Limits): string {
  const parts = [
    limits.ratePerSecond === null ? null : `${limits.ratePerSecond}/s`,
    limits.dailyQuota === null ? null : `${limits.dailyQuota}/day`,
    limits.maxPriority === 'bulk' ? 'bulk only' : null,
  ].filter((p) => p !== null);
  return parts.length === 0 ? 'none' : parts.join(', ');
}

const SCOPES = ['notifications:write', 'notifications:read', 'admin'];

function prefixArgument(value: string | undefined): string {
  if (!value || !/^[0-9a-f]{12}$/.test(value)) {
    throw new UsageError('give the key prefix (12 hex characters, as `keys list` shows it)');
  }
  return value;
}

/** The new key, printed once (see printOnceOnly); a lost one is named by its prefix only. */
function printNewKey(ctx: CommandContext, key: string, prefix: string): void {
  printOnceOnly(
    ctx,
    `X-API-Key: ${key}`,
    `the new key ${prefix} could not be printed (stdout was closed) and cannot be shown again: revoke it (ops keys revoke ${prefix}) and make another`,
    'Store it now: it is shown only this once (the service keeps only a hash of it).',
  );
}

/** One limit as `keys limits` prints it: its value with its unit, or none. */
const LIMIT_TEXT: [keyof Limits, string, (v: number | string) => string][] = [
  ['ratePerSecond', 'rate', (v) => `${v}/s`],
  ['dailyQuota', 'daily quota', (v) => `${v}/day`],
  ['maxPriority', 'max priority', (v) => String(v)],
];

/** A `--rate|--daily|--max-priority` value, or `none` (null: remove the limit), or undefined: not given. */
function limitFlag<T>(
  ctx: CommandContext,
  name: string,
  parse: (raw: string) => T,
): T | null | undefined {
  const raw = stringFlag(ctx, name);
  if (raw === undefined) return undefined;
  return raw.trim() === 'none' ? null : parse(raw);
}

export const keyCommands: Command[] = [
  {
    name: 'keys bootstrap',
    summary: "a deployed stage's first admin key, through the migrate function (AWS credentials)",
    usage: '--stage dev|prod --name <name>',
    description:
      "Every other key command needs an admin key. This one needs none: it invokes the stage's\n" +
      'migrate function (stack output MigrateFunctionName) with {"action": "create-admin-key"},\n' +
      'which only an AWS principal allowed lambda:InvokeFunction on it can do. Audited as key.create.',
    options: {
      name: { type: 'string' },
      'break-glass': { type: 'boolean' },
      reason: { type: 'string' },
    },
    optionsHelp: [
      ['--name <name>', 'who the admin key is for (required)'],
      [
        '--break-glass',
        'mint one although an admin key works (nobody can use it); audited, and it pages',
      ],
      ['--reason <text>', 'why, for the audit log (required with --break-glass)'],
    ],
    examples: [
      'npm run ops -- keys bootstrap --stage dev --name platform-oncall',
      'npm run ops -- keys bootstrap --stage prod --name alice --break-glass --reason "admin keys lost with laptop"',
    ],
    async run(ctx) {
      const stage = stringFlag(ctx, 'stage');
      if (!stage || !(STAGES as readonly string[]).includes(stage)) {
        throw new UsageError(`keys bootstrap needs --stage ${STAGES.join('|')}`);
      }
      const name = requiredFlag(ctx, 'name', 'who the admin key is for');
      const breakGlass = boolFlag(ctx, 'break-glass');
      const reason = stringFlag(ctx, 'reason');
      if (breakGlass && !reason) throw new UsageError('--break-glass needs --reason <why>');
      const region = stringFlag(ctx, 'region') ?? process.env.AWS_REGION;
      const stackName = stringFlag(ctx, 'stack-name') ?? stackNameFor(stage as Stage);
      const { CloudFormationClient } = await import('@aws-sdk/client-cloudformation');
      const outputs = await readStackOutputs(
        stackName,
        new CloudFormationClient(region ? { region } : {}),
      );
      const functionName = outputs.MigrateFunctionName;
      if (!functionName)
        throw new OpsError(`the stack ${stackName} has no MigrateFunctionName output`);
      const { InvokeCommand, LambdaClient } = await import('@aws-sdk/client-lambda');
      const answer = await new LambdaClient(region ? { region } : {}).send(
        new InvokeCommand({
          FunctionName: functionName,
          Payload: new TextEncoder().encode(
            JSON.stringify({
              action: 'create-admin-key',
              name,
              ...(breakGlass ? { breakGlass: true, reason } : {}),
            }),
          ),
        }),
      );
      const payload = answer.Payload ? new TextDecoder().decode(answer.Payload) : '';
      if (answer.FunctionError) {
        throw new OpsError(`the migrate function refused: ${payload.slice(0, 300)}`);
      }
      const created = JSON.parse(payload) as {
        key: string;
        prefix: string;
        scopes: string[];
        breakGlass?: boolean;
      };
      ctx.out.data(created);
      printNewKey(ctx, created.key, created.prefix);
      ctx.out.line(`Created the admin key ${created.prefix} for ${name} in ${stackName}.`);
      if (created.breakGlass) {
        ctx.out.line(
          'BREAK-GLASS: audited as key.break_glass and the admin-key-break-glass alarm pages on-call.',
        );
      }
      return 0;
    },
  },
  {
    name: 'keys create',
    summary: 'create an API client and its key (shown once)',
    usage:
      '--name <name> [--scopes <scope,...>] [--rate <n/s>] [--daily <n>] [--max-priority bulk|high] [--expires <when>]',
    description:
      'Creates an API client and its first key. The key is printed once; with --json it is the field `key`.\n' +
      `Scopes: ${SCOPES.join(', ')} (admin implies both notification scopes).\n` +
      'Limits are the client’s own: over --rate or --daily the API answers 429 with Retry-After;\n' +
      'with --max-priority bulk a high-priority request is refused (403). A rotation keeps them.',
    options: {
      name: { type: 'string' },
      scopes: { type: 'string' },
      rate: { type: 'string' },
      daily: { type: 'string' },
      'max-priority': { type: 'string' },
      expires: { type: 'string' },
    },
    optionsHelp: [
      ['--name <name>', 'who uses the key: a service or a person (required)'],
      ['--scopes <a,b>', 'default notifications:write,notifications:read'],
      ['--rate <n/s>', 'notifications accepted per second (bursts of 10 s of it); default none'],
      ['--daily <n>', 'notifications accepted per UTC day, each batch item counted; default none'],
      ['--max-priority <p>', 'bulk: refuse high-priority requests; default high'],
      ['--expires <when>', 'the key stops working: 2h, 90d or an ISO date; default never'],
    ],
    examples: [
      'npm run ops -- keys create --name billing-service',
      'npm run ops -- keys create --name newsletter --rate 5/s --daily 20000 --max-priority bulk --expires 90d',
      'npm run ops -- keys create --name alice --scopes admin --expires 2026-12-31 --json',
    ],
    async run(ctx) {
      const name = requiredFlag(ctx, 'name', 'who uses the key');
      const scopesFlag = stringFlag(ctx, 'scopes');
      const scopes = scopesFlag
        ?.split(',')
        .map((s) => s.trim())
        .filter(Boolean);
      for (const scope of scopes ?? []) {
        if (!SCOPES.includes(scope)) {
          throw new UsageError(`unknown scope ${scope}; scopes are ${SCOPES.join(', ')}`);
        }
      }
      const rate = stringFlag(ctx, 'rate');
      const daily = stringFlag(ctx, 'daily');
      const maxPriority = stringFlag(ctx, 'max-priority');
      if (maxPriority !== undefined && maxPriority !== 'bulk' && maxPriority !== 'high') {
        throw new UsageError('--max-priority must be bulk or high');
      }
      const expires = stringFlag(ctx, 'expires');
      const created = await (await ctx.api()).post<{
        key: string;
        prefix: string;
        clientId: string;
        name: string;
        scopes: string[];
        expiresAt: string | null;
        limits: Limits;
      }>('/v1/admin/keys', {
        name,
        ...(scopes ? { scopes } : {}),
        ...(rate === undefined ? {} : { ratePerSecond: parseRate(rate) }),
        ...(daily === undefined ? {} : { dailyQuota: parseDaily(daily) }),
        ...(maxPriority === undefined ? {} : { maxPriority }),
        ...(expires === undefined ? {} : { expires }),
      });
      ctx.out.data(created);
      printNewKey(ctx, created.key, created.prefix);
      ctx.out.line(`Created an API key for ${created.name}.`);
      ctx.out.line(
        keyValues([
          ['prefix', created.prefix],
          ['client', created.clientId],
          ['scopes', created.scopes.join(', ')],
          ['limits', describeLimits(created.limits)],
          ['expires', created.expiresAt ? formatTime(created.expiresAt) : 'never'],
        ]),
      );
      return 0;
    },
  },
  {
    name: 'keys list',
    summary: 'list API keys (prefixes, never the keys)',
    usage: '[--active]',
    options: { active: { type: 'boolean' } },
    optionsHelp: [
      ['--active', 'only keys that still work (active, or expiring after a rotation; not expired)'],
    ],
    async run(ctx) {
      const { keys } = await (await ctx.api()).get<{ keys: KeyRow[] }>('/v1/admin/keys');
      const shown = ctx.flags.active
        ? keys.filter((k) => k.state === 'active' || k.state === 'expiring')
        : keys;
      ctx.out.data({ keys: shown });
      ctx.out.line(
        table(shown, [
          { title: 'PREFIX', value: (k) => k.prefix },
          { title: 'NAME', value: (k) => k.name },
          { title: 'SCOPES', value: (k) => k.scopes },
          { title: 'STATE', value: (k) => k.state },
          { title: 'CREATED', value: (k) => formatTime(k.createdAt) },
          { title: 'LIMITS', value: (k) => describeLimits(k.limits) },
          { title: 'LAST USED', value: (k) => sinceIso(k.lastUsedAt) },
          {
            title: 'ENDS',
            value: (k) => (k.revokedAt ? formatTime(k.revokedAt) : null),
          },
          {
            title: 'EXPIRES',
            value: (k) => (k.expiresAt ? formatTime(k.expiresAt) : null),
          },
        ]),
      );
      return 0;
    },
  },
  {
    name: 'keys rotate',
    summary: 'issue a new key for the same client; the old one keeps working for a grace period',
    usage: '<prefix> [--grace 24h] [--expires <when>]',
    description:
      'A key already in a grace period is not rotated again (409): that would extend a key being\n' +
      'retired. Rotate the key that replaced it. The grace never outlasts the old key’s expiry.',
    positionals: { min: 1, max: 1, names: '<prefix>' },
    options: { grace: { type: 'string' }, expires: { type: 'string' } },
    optionsHelp: [
      ['--grace <duration>', 'how long the old key keeps working: 0, 15m, 24h (default), 7d'],
      [
        '--expires <when>',
        'the new key’s expiry: 2h, 90d or an ISO date; default the old lifetime',
      ],
    ],
    examples: ['npm run ops -- keys rotate 3f9a0c1b2d4e --grace 1h'],
    async run(ctx) {
      const prefix = prefixArgument(ctx.positionals[0]);
      const grace = stringFlag(ctx, 'grace');
      const expires = stringFlag(ctx, 'expires');
      const graceSeconds = grace === undefined ? undefined : parseDuration(grace, 'grace');
      if (graceSeconds !== undefined && graceSeconds > 30 * 86_400) {
        throw new UsageError('--grace can be at most 30d');
      }
      const rotated = await (await ctx.api()).post<{
        key: string;
        prefix: string;
        clientId: string;
        scopes: string[];
        previousPrefix: string;
        previousKeyExpiresAt: string;
        expiresAt: string | null;
      }>(`/v1/admin/keys/${prefix}/rotate`, {
        ...(graceSeconds === undefined ? {} : { graceSeconds }),
        ...(expires === undefined ? {} : { expires }),
      });
      ctx.out.data(rotated);
      printNewKey(ctx, rotated.key, rotated.prefix);
      ctx.out.line(
        `Rotated ${rotated.previousPrefix}: the old key works until ${formatTime(rotated.previousKeyExpiresAt)}.`,
      );
      ctx.out.line(
        keyValues([
          ['new prefix', rotated.prefix],
          ['client', rotated.clientId],
          ['scopes', rotated.scopes.join(', ')],
          ['expires', rotated.expiresAt ? formatTime(rotated.expiresAt) : 'never'],
        ]),
      );
      return 0;
    },
  },
  {
    name: 'keys revoke',
    summary: 'revoke a key now',
    usage: '<prefix>',
    positionals: { min: 1, max: 1, names: '<prefix>' },
    async run(ctx) {
      const prefix = prefixArgument(ctx.positionals[0]);
      const revoked = await (await ctx.api()).post<{ prefix: string; revokedAt: string }>(
        `/v1/admin/keys/${prefix}/revoke`,
      );
      ctx.out.data(revoked);
      ctx.out.line(
        `Revoked ${revoked.prefix} at ${formatTime(revoked.revokedAt)}; calls with it now get 401.`,
      );
      return 0;
    },
  },
  {
    name: 'keys fallback',
    summary: "set or clear a client's default fallback delay (notifications that name none get it)",
    usage: '<client-id> (--after <duration> | --off)',
    description:
      'A notification not delivered by sendAt (or acceptance) plus this delay, failed, or held by panic mode or the kill switch past it, is marked fallback required (and cancelled if not yet sent). The client id is the clientId of a key in keys list --json. Applies to notifications accepted from now on.',
    positionals: { min: 1, max: 1, names: '<client-id>' },
    options: { after: { type: 'string' }, off: { type: 'boolean' } },
    optionsHelp: [
      ['--after <duration>', 'the default delay: 60s to 7d (e.g. 15m, 2h)'],
      ['--off', 'clear the default: only notifications that ask get a fallback'],
    ],
    examples: [
      'npm run ops -- keys fallback 0193f0c4-1c2b-7a3d-8e4f-000000000001 --after 15m',
      'npm run ops -- keys fallback 0193f0c4-1c2b-7a3d-8e4f-000000000001 --off',
    ],
    async run(ctx) {
      const clientId = ctx.positionals[0] ?? '';
      if (!isUuid(clientId)) {
        throw new UsageError('<client-id> must be a client id (a UUID; see keys list --json)');
      }
      const after = stringFlag(ctx, 'after');
      const off = boolFlag(ctx, 'off');
      if ((after === undefined) === !off) throw new UsageError('give either --after or --off');
      const afterSeconds = after === undefined ? null : parseDuration(after, 'after');
      if (afterSeconds !== null && (afterSeconds < 60 || afterSeconds > 7 * 86_400)) {
        throw new UsageError('--after must be from 60s to 7d');
      }
      const updated = await (await ctx.api()).put<{
        clientId: string;
        name: string;
        fallbackAfterSeconds: number | null;
      }>(`/v1/admin/clients/${clientId}/fallback`, { afterSeconds });
      ctx.out.data(updated);
      ctx.out.line(
        updated.fallbackAfterSeconds === null
          ? `${updated.name} has no default fallback now.`
          : `${updated.name}: notifications that name no fallback get one after ${updated.fallbackAfterSeconds}s.`,
      );
      return 0;
    },
  },
  {
    name: 'keys limits',
    summary: "change a client's rate, daily quota or highest priority (none removes one)",
    usage: '<client-id> [--rate <n/s>|none] [--daily <n>|none] [--max-priority bulk|high|none]',
    description:
      'Changes the limits a client got with its first key; a limit not named is kept, none removes it. The client id is the clientId of a key in keys list --json. The next request of any of its keys is counted against the new limits (today’s count so far still counts). Audited as client.limits, from and to.',
    positionals: { min: 1, max: 1, names: '<client-id>' },
    options: {
      rate: { type: 'string' },
      daily: { type: 'string' },
      'max-priority': { type: 'string' },
    },
    optionsHelp: [
      ['--rate <n/s>|none', 'notifications per second (a burst of 10 s of it), e.g. 5/s'],
      ['--daily <n>|none', 'notifications per UTC day'],
      ['--max-priority <p>|none', 'bulk: refuse high-priority requests; high or none: allow them'],
    ],
    examples: [
      'npm run ops -- keys limits 0193f0c4-1c2b-7a3d-8e4f-000000000001 --rate 5/s --daily 20000',
      'npm run ops -- keys limits 0193f0c4-1c2b-7a3d-8e4f-000000000001 --daily none --max-priority bulk',
    ],
    async run(ctx) {
      const clientId = ctx.positionals[0] ?? '';
      if (!isUuid(clientId)) {
        throw new UsageError('<client-id> must be a client id (a UUID; see keys list --json)');
      }
      const change = {
        ratePerSecond: limitFlag(ctx, 'rate', parseRate),
        dailyQuota: limitFlag(ctx, 'daily', parseDaily),
        maxPriority: limitFlag(ctx, 'max-priority', (raw) => {
          if (raw !== 'bulk' && raw !== 'high') {
            throw new UsageError('--max-priority must be bulk, high or none');
          }
          return raw;
        }),
      };
      if (Object.values(change).every((v) => v === undefined)) {
        throw new UsageError('give at least one of --rate, --daily, --max-priority');
      }
      const updated = await (await ctx.api()).put<{
        clientId: string;
        name: string;
        limits: Limits;
        previousLimits: Limits;
      }>(`/v1/admin/clients/${clientId}/limits`, change);
      ctx.out.data(updated);
      const shown = (v: number | string | null, unit: (v: number | string) => string) =>
        v === null ? 'none' : unit(v);
      const changed = LIMIT_TEXT.filter(
        ([field]) => updated.previousLimits[field] !== updated.limits[field],
      ).map(([field, label, unit]): [string, string] => [
        label,
        `${shown(updated.previousLimits[field], unit)} → ${shown(updated.limits[field], unit)}`,
      ]);
      ctx.out.line(
        changed.length === 0
          ? `${updated.name}: limits unchanged (${describeLimits(updated.limits)}).`
          : `${updated.name}: limits changed.`,
      );
      if (changed.length > 0) ctx.out.line(keyValues(changed));
      return 0;
    },
  },
];
