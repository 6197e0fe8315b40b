/**
 * The ops CLI's dispatcher: finds the command from the leading words, parses its flags with the
 * global ones, prints help, and turns outcomes into exit codes (0 ok, 1 failure, 2 usage).
 */
import { type ParseArgsOptionsConfig, parseArgs } from 'node:util';
import { ApiError, createApiClient } from './api-client.ts';
import { auditCommand } from './audit.ts';
import { callbackCommands } from './callbacks.ts';
import type { Command, CommandContext } from './command.ts';
import { dlqCommands } from './dlq.ts';
import { keyCommands } from './keys.ts';
import { notificationCommands } from './notifications.ts';
import { optOutCommands } from './opt-outs.ts';
import { createOutput, processWriters } from './output.ts';
import { panicCommands } from './panic.ts';
import { preflightCommand } from './preflight.ts';
import { recipientCommands } from './recipients.ts';
import { rolloutCommands } from './rollout.ts';
import { schedulerCommands } from './scheduler.ts';
import { sendTestCommand } from './send-test.ts';
import { statusCommands } from './status.ts';
import { OpsError, resolveTarget, type Target, UsageError } from './target.ts';
import { webhookCommands } from './webhook.ts';
import { whatsappCommands } from './whatsapp.ts';

export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

export const COMMANDS: Command[] = [
  ...statusCommands,
  ...panicCommands,
  ...rolloutCommands,
  ...dlqCommands,
  ...keyCommands,
  ...whatsappCommands,
  ...webhookCommands(),
  sendTestCommand,
  auditCommand,
  ...optOutCommands,
  ...recipientCommands,
  preflightCommand,
  // Issue 17: find a person's notifications, run the scheduler now.
  ...notificationCommands,
  ...schedulerCommands,
  ...callbackCommands,
];

const GLOBAL_OPTIONS: ParseArgsOptionsConfig = {
  url: { type: 'string' },
  'api-key': { type: 'string' },
  stage: { type: 'string' },
  'stack-name': { type: 'string' },
  region: { type: 'string' },
  'sqs-endpoint': { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
};

const GLOBAL_HELP: [string, string][] = [
  ['--url <url>', 'the API base URL (or WN_API_URL)'],
  ['--api-key <key>', 'an admin key (or WN_API_KEY)'],
  [
    '--stage dev|prod',
    'read the URL and queues from the stack whatsapp-notif-<stage>; key from WN_API_KEY',
  ],
  ['--stack-name <name>', 'with --stage: another stack name'],
  ['--region <region>', 'AWS region for --stage and the DLQ commands (or AWS_REGION)'],
  [
    '--sqs-endpoint <url>',
    'SQS emulator of a local stack (or WN_SQS_ENDPOINT; default: from the admin status)',
  ],
  ['--json', 'one JSON document on stdout instead of tables'],
  ['--help, -h', 'help for the command'],
];

function rows(entries: readonly [string, string][]): string {
  const width = Math.max(...entries.map(([k]) => k.length));
  return entries.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`).join('\n');
}

export function mainHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    'Usage: npm run ops -- <command> [flags]',
    '',
    'Operates whatsapp-notif through its admin API: the local stack (npm start prints WN_API_URL and',
    'WN_API_KEY) or a deployed stage (--stage dev|prod).',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Flags for every command:',
    rows(GLOBAL_HELP),
    '',
    'Exit codes: 0 ok, 1 failure (the service said no, or could not be reached), 2 usage.',
    "Run 'npm run ops -- <command> --help' for a command's flags.",
  ].join('\n');
}

export function commandHelp(command: Command): string {
  const lines = [
    `Usage: npm run ops -- ${command.name}${command.usage ? ` ${command.usage}` : ''}`,
    '',
    command.summary,
  ];
  if (command.description) lines.push('', command.description);
  if (command.optionsHelp?.length) lines.push('', 'Flags:', rows(command.optionsHelp));
  lines.push('', 'Flags for every command:', rows(GLOBAL_HELP));
  if (command.examples?.length)
    lines.push('', 'Examples:', ...command.examples.map((e) => `  ${e}`));
  return lines.join('\n');
}

function groupHelp(group: string): string | undefined {
  const members = COMMANDS.filter((c) => c.name.startsWith(`${group} `));
  if (members.length === 0) return undefined;
  const width = Math.max(...members.map((c) => c.name.length));
  return [
    `Usage: npm run ops -- ${group} <${members.map((c) => c.name.slice(group.length + 1)).join('|')}> [flags]`,
    '',
    ...members.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    `Run 'npm run ops -- ${group} <subcommand> --help' for its flags.`,
  ].join('\n');
}

/** The command named by the leading words of argv (two words before one), and the rest of argv. */
function findCommand(argv: string[]): { command?: Command; rest: string[]; words: string[] } {
  const words: string[] = [];
  for (const arg of argv) {
    if (arg.startsWith('-') || words.length === 2) break;
    words.push(arg);
  }
  for (const n of [2, 1]) {
    if (words.length < n) continue;
    const name = words.slice(0, n).join(' ');
    const command = COMMANDS.find((c) => c.name === name);
    if (command) {
      return { command, rest: argv.slice(n), words };
    }
  }
  return { rest: argv, words };
}

export interface Io {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** Writes a once-only value now or throws (see Output.secret). */
  secret?: (text: string) => void;
  env: NodeJS.ProcessEnv;
}

const defaultIo: Io = { ...processWriters, env: process.env };

export async function runCli(argv: string[], io: Io = defaultIo): Promise<number> {
  const wantsJson = argv.includes('--json');
  const fail = (code: number, message: string, extra: Record<string, unknown> = {}) => {
    io.stderr(
      wantsJson
        ? `${JSON.stringify({ error: { message, ...extra } })}\n`
        : `ops: ${code === EXIT.usage ? 'usage: ' : 'error: '}${message}\n`,
    );
    return code;
  };

  if (argv.length === 0) {
    io.stderr(`${mainHelp()}\n`);
    return EXIT.usage;
  }
  const { command, rest, words } = findCommand(argv);
  if (!command) {
    if (words[0] === 'help' || argv[0] === '--help' || argv[0] === '-h') {
      io.stdout(`${mainHelp()}\n`);
      return EXIT.ok;
    }
    const group = words[0] ? groupHelp(words[0]) : undefined;
    if (group) {
      const askedForHelp = argv.includes('--help') || argv.includes('-h');
      if (askedForHelp) {
        io.stdout(`${group}\n`);
        return EXIT.ok;
      }
      io.stderr(
        `${words[1] ? `ops: usage: unknown command '${words.join(' ')}'\n\n` : ''}${group}\n`,
      );
      return EXIT.usage;
    }
    return fail(
      EXIT.usage,
      `unknown command '${words.join(' ') || argv[0]}' (npm run ops -- --help lists them)`,
    );
  }

  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: rest,
      options: { ...GLOBAL_OPTIONS, ...command.options },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    return fail(
      EXIT.usage,
      `${error instanceof Error ? error.message : String(error)} (${command.name} --help)`,
    );
  }
  if (parsed.values.help) {
    io.stdout(`${commandHelp(command)}\n`);
    return EXIT.ok;
  }
  const limits = command.positionals ?? { min: 0, max: 0, names: '' };
  if (parsed.positionals.length < limits.min || parsed.positionals.length > limits.max) {
    return fail(
      EXIT.usage,
      limits.max === 0
        ? `${command.name} takes no arguments, got ${parsed.positionals.join(' ')}`
        : `${command.name} takes ${limits.names}`,
    );
  }

  const flags = parsed.values;
  let target: Promise<Target> | undefined;
  const ctx: CommandContext = {
    flags,
    positionals: parsed.positionals,
    out: createOutput(flags.json === true, io),
    target: () => {
      target ??= resolveTarget(
        {
          // A command with a --url of its own (callbacks add: where to post) takes the API from
          // WN_API_URL or --stage instead.
          url: command.options?.url ? undefined : (flags.url as string | undefined),
          'api-key': flags['api-key'] as string | undefined,
          stage: flags.stage as string | undefined,
          'stack-name': flags['stack-name'] as string | undefined,
          region: flags.region as string | undefined,
          'sqs-endpoint': flags['sqs-endpoint'] as string | undefined,
        },
        io.env,
      );
      return target;
    },
    api: async () => createApiClient(await ctx.target()),
  };
  let client: ReturnType<typeof createApiClient> | undefined;
  ctx.api = async () => {
    client ??= createApiClient(await ctx.target());
    return client;
  };

  try {
    return (await command.run(ctx)) ?? EXIT.ok;
  } catch (error) {
    if (error instanceof UsageError)
      return fail(EXIT.usage, `${error.message} (${command.name} --help)`);
    if (error instanceof ApiError) {
      const where = error.status ? `HTTP ${error.status} ${error.code}` : error.code;
      return fail(
        EXIT.failure,
        `${error.message} (${where}${error.field ? `, field ${error.field}` : ''}${error.requestId ? `, request id ${error.requestId}` : ''})`,
        {
          status: error.status,
          code: error.code,
          ...(error.field ? { field: error.field } : {}),
          ...(error.requestId ? { requestId: error.requestId } : {}),
        },
      );
    }
    if (error instanceof OpsError) return fail(EXIT.failure, error.message);
    const name = error instanceof Error ? error.name : 'Error';
    const message = error instanceof Error ? error.message : String(error);
    return fail(EXIT.failure, `${name}: ${message}`);
  }
}
