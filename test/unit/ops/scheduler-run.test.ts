/**
 * `ops scheduler run --stage`: finds the scheduler through the stack's outputs and invokes it with
 * Lambda's Invoke API (mocked: no AWS here), then reports the run or the function's failure.
 */
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { InvokeCommand, type InvokeCommandOutput, LambdaClient } from '@aws-sdk/client-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runCli } from '../../../bin/ops/cli.ts';

const cfn = mockClient(CloudFormationClient);
const lambda = mockClient(LambdaClient);

function stackWith(outputs: Record<string, string>) {
  cfn.on(DescribeStacksCommand, { StackName: 'whatsapp-notif-prod' }).resolves({
    Stacks: [
      {
        StackName: 'whatsapp-notif-prod',
        CreationTime: new Date(),
        StackStatus: 'UPDATE_COMPLETE',
        Outputs: Object.entries(outputs).map(([OutputKey, OutputValue]) => ({
          OutputKey,
          OutputValue,
        })),
      },
    ],
  });
}

async function run(...args: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await runCli(
    ['scheduler', 'run', '--stage', 'prod', '--region', 'eu-west-1', ...args],
    {
      stdout: (text) => {
        stdout += text;
      },
      stderr: (text) => {
        stderr += text;
      },
      env: {},
    },
  );
  return { code, stdout, stderr };
}

/** The SDK wraps payload bytes in a blob adapter; the CLI only decodes them, so plain bytes do. */
const encode = (value: unknown) =>
  new TextEncoder().encode(JSON.stringify(value)) as unknown as InvokeCommandOutput['Payload'];

beforeEach(() => {
  cfn.reset();
  lambda.reset();
});
afterEach(() => {
  cfn.reset();
  lambda.reset();
});

describe('ops scheduler run --stage', () => {
  it('invokes the function the stack names and prints what the run did', async () => {
    stackWith({ SchedulerFunctionName: 'whatsapp-notif-prod-scheduler' });
    lambda.on(InvokeCommand).resolves({
      StatusCode: 200,
      Payload: encode({
        outcome: 'done',
        scheduled: 3,
        swept: 1,
        drained: 0,
        probes: [{ ok: true }, { ok: false }],
        probesSkippedForTime: 0,
        circuitClosed: false,
        panicActive: true,
        lateStatuses: 2,
        tokenCheck: { outcome: 'expires', daysLeft: 12 },
      }),
    });

    const result = await run();

    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const calls = lambda.commandCalls(InvokeCommand);
    expect(calls).toHaveLength(1);
    expect(calls[0]!.args[0].input.FunctionName).toBe('whatsapp-notif-prod-scheduler');
    expect(await lambda.call(0).thisValue.config.region()).toBe('eu-west-1');
    expect(result.stdout).toContain(
      'Scheduler run in whatsapp-notif-prod (whatsapp-notif-prod-scheduler):',
    );
    expect(result.stdout).toMatch(/scheduled sends queued:\s+3/);
    expect(result.stdout).toMatch(/panic-mode probes:\s+1 of 2 good/);
    expect(result.stdout).toMatch(/panic mode open:\s+YES/);
    expect(result.stdout).toMatch(/token check:\s+expires in 12 days/);
  });

  it('reports a run that found another holding the lock', async () => {
    stackWith({ SchedulerFunctionName: 'fn' });
    lambda.on(InvokeCommand).resolves({ StatusCode: 200, Payload: encode({ outcome: 'skipped' }) });
    const result = await run('--json');
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({
      function: 'fn',
      where: 'whatsapp-notif-prod',
      report: { outcome: 'skipped' },
    });
  });

  it('exits 1 with the error when the function failed', async () => {
    stackWith({ SchedulerFunctionName: 'fn' });
    lambda.on(InvokeCommand).resolves({
      StatusCode: 200,
      FunctionError: 'Unhandled',
      Payload: encode({ errorMessage: 'connect ETIMEDOUT' }),
    });
    const result = await run();
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(
      /the scheduler failed in whatsapp-notif-prod \(Unhandled\): .*ETIMEDOUT/,
    );
  });

  it('says so when the stack has no scheduler output yet', async () => {
    stackWith({});
    const result = await run();
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/has no SchedulerFunctionName output/);
    expect(lambda.commandCalls(InvokeCommand)).toHaveLength(0);
  });
});
