/**
 * Which deployment the ops CLI talks to: `--url`/`--api-key` (or WN_API_URL/WN_API_KEY, which the
 * local stack's banner prints), or `--stage dev|prod`, which reads the stack's CloudFormation
 * outputs for the API URL and the queues and takes the admin key from the environment.
 */
import type {
  CloudFormationClient,
  DescribeStacksCommandOutput,
} from '@aws-sdk/client-cloudformation';
import type { Priority } from '#core/model/notification-request.ts';

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export class OpsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OpsError';
  }
}

export const STAGES = ['dev', 'prod'] as const;
export type Stage = (typeof STAGES)[number];

/** The stack name bin/app.ts gives each stage. */
export function stackNameFor(stage: Stage): string {
  return `whatsapp-notif-${stage}`;
}

export interface QueuePair {
  priority: Priority;
  queueUrl: string;
  dlqUrl: string;
}

export interface Target {
  apiUrl: string;
  apiKey: string;
  /** Where the target came from, for error messages: `--url`, `WN_API_URL`, `stack whatsapp-notif-dev`. */
  source: string;
  /** From the stack outputs (`--stage`); otherwise the admin status supplies them. */
  queues?: QueuePair[];
  region?: string;
  /** The SQS emulator (local stack): `--sqs-endpoint` or WN_SQS_ENDPOINT. */
  sqsEndpoint?: string;
}

export interface TargetFlags {
  url?: string | undefined;
  'api-key'?: string | undefined;
  stage?: string | undefined;
  'stack-name'?: string | undefined;
  region?: string | undefined;
  'sqs-endpoint'?: string | undefined;
}

export async function readStackOutputs(
  stackName: string,
  cloudFormation: CloudFormationClient,
): Promise<Record<string, string>> {
  const { DescribeStacksCommand } = await import('@aws-sdk/client-cloudformation');
  let answer: DescribeStacksCommandOutput;
  try {
    answer = await cloudFormation.send(new DescribeStacksCommand({ StackName: stackName }));
  } catch (error) {
    const name = error instanceof Error ? error.name : 'error';
    const message = error instanceof Error ? error.message : String(error);
    throw new OpsError(`cannot read the CloudFormation stack ${stackName}: ${name}: ${message}`);
  }
  const stack = answer.Stacks?.[0];
  if (!stack) throw new OpsError(`the CloudFormation stack ${stackName} does not exist`);
  const outputs: Record<string, string> = {};
  for (const o of stack.Outputs ?? []) {
    if (o.OutputKey && o.OutputValue) outputs[o.OutputKey] = o.OutputValue;
  }
  return outputs;
}

export async function resolveTarget(
  flags: TargetFlags,
  env: NodeJS.ProcessEnv = process.env,
  cloudFormation?: CloudFormationClient,
): Promise<Target> {
  const sqsEndpoint = flags['sqs-endpoint'] ?? env.WN_SQS_ENDPOINT;
  const region = flags.region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION;
  const apiKey = flags['api-key'] ?? env.WN_API_KEY;
  if (flags.stage !== undefined) {
    if (!(STAGES as readonly string[]).includes(flags.stage)) {
      throw new UsageError(`--stage must be one of ${STAGES.join(', ')}`);
    }
    if (flags.url) throw new UsageError('give --stage or --url, not both');
    const stackName = flags['stack-name'] ?? stackNameFor(flags.stage as Stage);
    const client =
      cloudFormation ??
      new (await import('@aws-sdk/client-cloudformation')).CloudFormationClient(
        region ? { region } : {},
      );
    const outputs = await readStackOutputs(stackName, client);
    const apiUrl = outputs.ApiUrl;
    if (!apiUrl) throw new OpsError(`the stack ${stackName} has no ApiUrl output`);
    if (!apiKey) {
      throw new UsageError(
        `--stage ${flags.stage} needs an admin key: set WN_API_KEY (or pass --api-key)`,
      );
    }
    const queues: QueuePair[] = [];
    for (const [priority, label] of [
      ['high', 'High'],
      ['bulk', 'Bulk'],
    ] as const) {
      const queueUrl = outputs[`${label}QueueUrl`];
      const dlqUrl = outputs[`${label}DlqUrl`];
      if (queueUrl && dlqUrl) queues.push({ priority, queueUrl, dlqUrl });
    }
    return {
      apiUrl,
      apiKey,
      source: `stack ${stackName}`,
      queues,
      ...(region ? { region } : {}),
      ...(sqsEndpoint ? { sqsEndpoint } : {}),
    };
  }
  const apiUrl = flags.url ?? env.WN_API_URL;
  if (!apiUrl) {
    throw new UsageError(
      'no target: pass --url and --api-key, set WN_API_URL and WN_API_KEY (npm start prints both), or pass --stage dev|prod',
    );
  }
  try {
    new URL(apiUrl);
  } catch {
    throw new UsageError(`--url is not a URL: ${apiUrl}`);
  }
  if (!apiKey) throw new UsageError('no API key: pass --api-key or set WN_API_KEY');
  return {
    apiUrl,
    apiKey,
    source: flags.url ? '--url' : 'WN_API_URL',
    ...(region ? { region } : {}),
    ...(sqsEndpoint ? { sqsEndpoint } : {}),
  };
}
