/** `ops keys create|list|rotate|revoke`: API keys through the admin API; a new key is printed once. */
import {
  type Command,
  type CommandContext,
  parseDuration,
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
  state: 'active' | 'expiring' | 'revoked';
  createdAt: string;
  revokedAt: string | null;
  lastUsedAt: string | null;
}

const SCOPES = ['notifications:write', 'notifications:read', 'admin'];

function prefixArgument(value: string | undefined): string {
  if (!value || !/^[0-9a-f]{12}$/.test(value)) {
    throw new UsageError('give the key prefix (12 hex characters, as `keys list` shows it)');
  }
  return value;
}

/**
 * The new key, first of all the command prints (so `| head -1` or a terminal closed a moment later
 * still has it), then the warning that it is shown once. When stdout is already gone the key is
 * lost: the command fails and says what to do, naming only the prefix.
 */
function printNewKey(ctx: CommandContext, key: string, prefix: string): void {
  if (!ctx.out.secret(`X-API-Key: ${key}`)) {
    throw new OpsError(
      `the new key ${prefix} could not be printed (stdout was closed) and cannot be shown again: revoke it (ops keys revoke ${prefix}) and make another`,
    );
  }
  ctx.out.line('Store it now: it is shown only this once (the service keeps only a hash of it).');
  ctx.out.line();
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
    options: { name: { type: 'string' } },
    optionsHelp: [['--name <name>', 'who the admin key is for (required)']],
    examples: ['npm run ops -- keys bootstrap --stage dev --name platform-oncall'],
    async run(ctx) {
      const stage = stringFlag(ctx, 'stage');
      if (!stage || !(STAGES as readonly string[]).includes(stage)) {
        throw new UsageError(`keys bootstrap needs --stage ${STAGES.join('|')}`);
      }
      const name = requiredFlag(ctx, 'name', 'who the admin key is for');
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
          Payload: new TextEncoder().encode(JSON.stringify({ action: 'create-admin-key', name })),
        }),
      );
      const payload = answer.Payload ? new TextDecoder().decode(answer.Payload) : '';
      if (answer.FunctionError) {
        throw new OpsError(`the migrate function refused: ${payload.slice(0, 300)}`);
      }
      const created = JSON.parse(payload) as { key: string; prefix: string; scopes: string[] };
      ctx.out.data(created);
      printNewKey(ctx, created.key, created.prefix);
      ctx.out.line(`Created the admin key ${created.prefix} for ${name} in ${stackName}.`);
      return 0;
    },
  },
  {
    name: 'keys create',
    summary: 'create an API client and its key (shown once)',
    usage: '--name <name> [--scopes <scope,...>]',
    description:
      'Creates an API client and its first key. The key is printed once; with --json it is the field `key`.\n' +
      `Scopes: ${SCOPES.join(', ')} (admin implies both notification scopes).`,
    options: { name: { type: 'string' }, scopes: { type: 'string' } },
    optionsHelp: [
      ['--name <name>', 'who uses the key: a service or a person (required)'],
      ['--scopes <a,b>', 'default notifications:write,notifications:read'],
    ],
    examples: [
      'npm run ops -- keys create --name billing-service',
      'npm run ops -- keys create --name alice --scopes admin --json',
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
      const created = await (await ctx.api()).post<{
        key: string;
        prefix: string;
        clientId: string;
        name: string;
        scopes: string[];
      }>('/v1/admin/keys', { name, ...(scopes ? { scopes } : {}) });
      ctx.out.data(created);
      printNewKey(ctx, created.key, created.prefix);
      ctx.out.line(`Created an API key for ${created.name}.`);
      ctx.out.line(
        keyValues([
          ['prefix', created.prefix],
          ['client', created.clientId],
          ['scopes', created.scopes.join(', ')],
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
    optionsHelp: [['--active', 'only keys that still work (active, or expiring after a rotation)']],
    async run(ctx) {
      const { keys } = await (await ctx.api()).get<{ keys: KeyRow[] }>('/v1/admin/keys');
      const shown = ctx.flags.active ? keys.filter((k) => k.state !== 'revoked') : keys;
      ctx.out.data({ keys: shown });
      ctx.out.line(
        table(shown, [
          { title: 'PREFIX', value: (k) => k.prefix },
          { title: 'NAME', value: (k) => k.name },
          { title: 'SCOPES', value: (k) => k.scopes },
          { title: 'STATE', value: (k) => k.state },
          { title: 'CREATED', value: (k) => formatTime(k.createdAt) },
          { title: 'LAST USED', value: (k) => sinceIso(k.lastUsedAt) },
          {
            title: 'ENDS',
            value: (k) => (k.revokedAt ? formatTime(k.revokedAt) : null),
          },
        ]),
      );
      return 0;
    },
  },
  {
    name: 'keys rotate',
    summary: 'issue a new key for the same client; the old one keeps working for a grace period',
    usage: '<prefix> [--grace 24h]',
    positionals: { min: 1, max: 1, names: '<prefix>' },
    options: { grace: { type: 'string' } },
    optionsHelp: [
      ['--grace <duration>', 'how long the old key keeps working: 0, 15m, 24h (default), 7d'],
    ],
    examples: ['npm run ops -- keys rotate 3f9a0c1b2d4e --grace 1h'],
    async run(ctx) {
      const prefix = prefixArgument(ctx.positionals[0]);
      const grace = stringFlag(ctx, 'grace');
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
      }>(`/v1/admin/keys/${prefix}/rotate`, graceSeconds === undefined ? {} : { graceSeconds });
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
];
