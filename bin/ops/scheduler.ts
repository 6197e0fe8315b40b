/**
 * `ops scheduler run`: one scheduler run now, through Lambda's Invoke API: the stage's function
 * (stack output SchedulerFunctionName) with --stage, or the local stack's stand-in of that API,
 * which runs the same handler; prints what the run did.
 */
import type { SchedulerReport } from '#core/delivery/scheduler.ts';
import { type Command, stringFlag } from './command.ts';
import { keyValues } from './output.ts';
import {
  OpsError,
  readStackOutputs,
  STAGES,
  type Stage,
  stackNameFor,
  UsageError,
} from './target.ts';

/** The path the local stack answers like Lambda's Invoke API (bin/local/stack.ts). */
export const LOCAL_SCHEDULER_FUNCTION = 'scheduler';

interface InvokeTarget {
  functionName: string;
  client: {
    region?: string;
    endpoint?: string;
    credentials?: { accessKeyId: string; secretAccessKey: string };
  };
  where: string;
}

function isLocalUrl(url: string): boolean {
  const host = new URL(url).hostname;
  return host === '127.0.0.1' || host === 'localhost' || host === '::1' || host === '[::1]';
}

async function invokeTarget(
  stage: string | undefined,
  region: string | undefined,
  stackFlag: string | undefined,
  apiUrl: string | undefined,
): Promise<InvokeTarget> {
  if (stage !== undefined) {
    if (!(STAGES as readonly string[]).includes(stage))
      throw new UsageError(`--stage must be one of ${STAGES.join(', ')}`);
    const stackName = stackFlag ?? stackNameFor(stage as Stage);
    const { CloudFormationClient } = await import('@aws-sdk/client-cloudformation');
    const outputs = await readStackOutputs(
      stackName,
      new CloudFormationClient(region ? { region } : {}),
    );
    const functionName = outputs.SchedulerFunctionName;
    if (!functionName)
      throw new OpsError(
        `the stack ${stackName} has no SchedulerFunctionName output (deploy first)`,
      );
    return { functionName, client: region ? { region } : {}, where: stackName };
  }
  if (!apiUrl)
    throw new UsageError('give --stage dev|prod, or WN_API_URL / --url of the local stack');
  if (!isLocalUrl(apiUrl))
    throw new UsageError(
      'a deployed stage runs its scheduler through AWS: pass --stage dev|prod (with AWS credentials)',
    );
  return {
    functionName: LOCAL_SCHEDULER_FUNCTION,
    client: {
      region: 'local',
      endpoint: new URL(apiUrl).origin,
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    },
    where: 'the local stack',
  };
}

/** The report as on-call reads it: one `label: value` per thing the run did. */
export function reportLines(report: SchedulerReport): [string, unknown][] {
  if (report.outcome === 'skipped')
    return [['outcome', 'skipped: another run held the lock (it does the same work)']];
  const token = report.tokenCheck;
  return [
    ['outcome', 'done'],
    ['scheduled sends queued', report.scheduled],
    ['outbox rows re-sent', report.swept],
    ['deferred rows drained', report.drained],
    [
      'panic-mode probes',
      report.probes.length
        ? `${report.probes.filter((p) => p.ok).length} of ${report.probes.length} good`
        : 'none (circuit closed)',
    ],
    ['circuit closed by this run', report.circuitClosed ? 'yes' : 'no'],
    ['panic mode open', report.panicActive ? 'YES' : 'no'],
    ['late statuses applied', report.lateStatuses],
    [
      'token check',
      token.outcome === 'expires'
        ? `expires in ${token.daysLeft} days`
        : token.outcome === 'failed'
          ? `failed (${token.errorClass})`
          : token.outcome,
    ],
  ];
}

export const schedulerCommands: Command[] = [
  {
    name: 'scheduler run',
    summary: 'run the scheduler now (scheduled sends, outbox, probes, drain) and show what it did',
    usage: '[--stage dev|prod]',
    description:
      'Invokes the scheduler function once, as EventBridge does every minute: with --stage the\n' +
      "stage's function (AWS credentials allowed lambda:InvokeFunction on it); without, the local\n" +
      'stack at WN_API_URL. A run that finds another one holding the lock reports skipped.\n' +
      'Exit code 1 when the function failed.',
    examples: ['npm run ops -- scheduler run', 'npm run ops -- scheduler run --stage prod'],
    async run(ctx) {
      const target = await invokeTarget(
        stringFlag(ctx, 'stage'),
        stringFlag(ctx, 'region') ?? process.env.AWS_REGION,
        stringFlag(ctx, 'stack-name'),
        stringFlag(ctx, 'url') ?? process.env.WN_API_URL,
      );
      const { InvokeCommand, LambdaClient } = await import('@aws-sdk/client-lambda');
      const lambda = new LambdaClient(target.client);
      try {
        const answer = await lambda.send(
          new InvokeCommand({
            FunctionName: target.functionName,
            Payload: new TextEncoder().encode(
              JSON.stringify({ source: 'ops.scheduler-run', 'detail-type': 'Manual run' }),
            ),
          }),
        );
        const payload = answer.Payload ? new TextDecoder().decode(answer.Payload) : '';
        if (answer.FunctionError) {
          throw new OpsError(
            `the scheduler failed in ${target.where} (${answer.FunctionError}): ${payload.slice(0, 300)}`,
          );
        }
        const report = JSON.parse(payload) as SchedulerReport;
        ctx.out.data({ function: target.functionName, where: target.where, report });
        ctx.out.line(`Scheduler run in ${target.where} (${target.functionName}):`);
        ctx.out.line(keyValues(reportLines(report)));
        return 0;
      } finally {
        lambda.destroy();
      }
    },
  },
];
