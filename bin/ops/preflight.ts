/**
 * `ops preflight --stage <stage>`: checks an AWS account (and the Meta side, once the secrets
 * exist) for everything this stack needs before its first deploy, one line per check, exit 1 on
 * any FAIL. Safe to run at any time: it only reads.
 */
import { type Command, stringFlag } from './command.ts';
import type { CheckResult } from './preflight/check.ts';
import { STAGES, type Stage, stackNameFor, UsageError } from './target.ts';

const STATUS_WIDTH = 4;

function render(results: CheckResult[]): string[] {
  const width = Math.max(...results.map((r) => r.title.length));
  const lines: string[] = [];
  for (const r of results) {
    lines.push(`${r.status.padEnd(STATUS_WIDTH)}  ${r.title.padEnd(width)}  ${r.summary}`);
    if (r.fix && r.status !== 'ok')
      lines.push(`${' '.repeat(STATUS_WIDTH + width + 4)}fix: ${r.fix}`);
  }
  return lines;
}

export const preflightCommand: Command = {
  name: 'preflight',
  summary: 'check an AWS account (and the WhatsApp side) before the first deploy of a stage',
  usage: '--stage dev|prod [--phone-number-id <id>] [--waba-id <id>]',
  description: [
    'Reads, never writes. With the AWS credentials of the shell, for the stage and region:',
    '  cdk bootstrap            present and at least the version the stack and the pinned CLI need',
    "  api gateway logging role the account's CloudWatch Logs role (the stack sets one if none)",
    '  lambda concurrency       the account quota against both worker caps plus the other functions',
    '  rds postgresql / proxy   the PostgreSQL major orderable with the instance class, RDS Proxy support',
    '  whatsapp …               once the secrets exist: token, phone number, app subscription, webhook',
    'Each line is ok, warn or FAIL with the fix; exit code 1 when any check FAILs. A check that',
    'cannot run for lack of a permission FAILs and names the permission.',
    'The phone number id and WABA id come from the flags, else from the deployed worker function.',
  ].join('\n'),
  options: {
    'phone-number-id': { type: 'string' },
    'waba-id': { type: 'string' },
    'whatsapp-api-url': { type: 'string' },
  },
  optionsHelp: [
    [
      '--phone-number-id <id>',
      "the sender (default: the deployed worker's WHATSAPP_PHONE_NUMBER_ID)",
    ],
    [
      '--waba-id <id>',
      "the WhatsApp Business Account (default: the deployed worker's WHATSAPP_WABA_ID)",
    ],
    [
      '--whatsapp-api-url <url>',
      "the Graph API (or WHATSAPP_API_URL; default Meta's), e.g. the sandbox",
    ],
  ],
  examples: [
    'npm run ops -- preflight --stage prod --region eu-west-1',
    'npm run ops -- preflight --stage dev --phone-number-id 106540352242922 --waba-id 102290129340398 --json',
  ],
  async run(ctx) {
    const stage = stringFlag(ctx, 'stage');
    if (!stage || !(STAGES as readonly string[]).includes(stage)) {
      throw new UsageError(`preflight needs --stage ${STAGES.join('|')}`);
    }
    const apiUrlFlag = stringFlag(ctx, 'whatsapp-api-url') ?? process.env.WHATSAPP_API_URL;
    if (apiUrlFlag !== undefined) {
      try {
        new URL(apiUrlFlag);
      } catch {
        throw new UsageError(`--whatsapp-api-url is not a URL: ${apiUrlFlag}`);
      }
    }
    const { runPreflight } = await import('./preflight/run.ts');
    const report = await runPreflight({
      stage: stage as Stage,
      stackName: stringFlag(ctx, 'stack-name') ?? stackNameFor(stage as Stage),
      region: stringFlag(ctx, 'region') ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION,
      phoneNumberId: stringFlag(ctx, 'phone-number-id'),
      wabaId: stringFlag(ctx, 'waba-id'),
      whatsappApiUrl: apiUrlFlag,
    });
    const counts = {
      ok: report.checks.filter((c) => c.status === 'ok').length,
      warn: report.checks.filter((c) => c.status === 'warn').length,
      fail: report.checks.filter((c) => c.status === 'FAIL').length,
    };
    ctx.out.data({ ...report, counts, passed: counts.fail === 0 });
    ctx.out.line(
      `Preflight of ${report.stackName} (stage ${report.stage}) in ${report.region}${report.deployed ? ', deployed' : ', not deployed yet'}`,
    );
    // A Graph API other than Meta's (the sandbox) is said up front, so nobody mistakes its answers.
    if (!report.graphApiIsMeta) {
      ctx.out.line(`WhatsApp checks against ${report.graphApiUrl}, not Meta`);
    }
    ctx.out.line();
    for (const line of render(report.checks)) ctx.out.line(line);
    ctx.out.line();
    ctx.out.line(
      `${counts.ok} ok, ${counts.warn} warn, ${counts.fail} FAIL${counts.fail ? ': fix the FAIL lines, then run preflight again.' : '.'}`,
    );
    return counts.fail > 0 ? 1 : 0;
  },
};
