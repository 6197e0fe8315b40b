/** How the ops CLI picks its target: flags, environment, or a stage's CloudFormation outputs. */
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { resolveTarget, UsageError } from '../../../bin/ops/target.ts';

const cloudFormation = new CloudFormationClient({ region: 'eu-west-1' });
const cfn = mockClient(cloudFormation);
afterEach(() => cfn.reset());

const outputs = {
  ApiUrl: 'https://abc123.execute-api.eu-west-1.amazonaws.com/prod/',
  HighQueueUrl: 'https://sqs.eu-west-1.amazonaws.com/111122223333/whatsapp-notif-prod-high',
  HighDlqUrl: 'https://sqs.eu-west-1.amazonaws.com/111122223333/whatsapp-notif-prod-high-dlq',
  BulkQueueUrl: 'https://sqs.eu-west-1.amazonaws.com/111122223333/whatsapp-notif-prod-bulk',
  BulkDlqUrl: 'https://sqs.eu-west-1.amazonaws.com/111122223333/whatsapp-notif-prod-bulk-dlq',
};

describe('resolveTarget', () => {
  it('reads the API URL and the queues of whatsapp-notif-<stage>, the key from WN_API_KEY', async () => {
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
    const target = await resolveTarget({ stage: 'prod' }, { WN_API_KEY: 'wn_key' }, cloudFormation);
    expect(target).toMatchObject({
      apiUrl: outputs.ApiUrl,
      apiKey: 'wn_key',
      source: 'stack whatsapp-notif-prod',
      queues: [
        { priority: 'high', queueUrl: outputs.HighQueueUrl, dlqUrl: outputs.HighDlqUrl },
        { priority: 'bulk', queueUrl: outputs.BulkQueueUrl, dlqUrl: outputs.BulkDlqUrl },
      ],
    });
  });

  it('names the missing admin key and refuses an unknown stage', async () => {
    cfn.on(DescribeStacksCommand).resolves({
      Stacks: [
        {
          StackName: 's',
          CreationTime: new Date(),
          StackStatus: 'CREATE_COMPLETE',
          Outputs: [{ OutputKey: 'ApiUrl', OutputValue: outputs.ApiUrl }],
        },
      ],
    });
    await expect(resolveTarget({ stage: 'dev' }, {}, cloudFormation)).rejects.toThrow(/WN_API_KEY/);
    await expect(resolveTarget({ stage: 'staging' }, {}, cloudFormation)).rejects.toBeInstanceOf(
      UsageError,
    );
  });

  it('says which stack could not be read', async () => {
    cfn
      .on(DescribeStacksCommand)
      .rejects(
        Object.assign(new Error('Stack with id x does not exist'), { name: 'ValidationError' }),
      );
    await expect(
      resolveTarget(
        { stage: 'dev', 'stack-name': 'other-stack' },
        { WN_API_KEY: 'k' },
        cloudFormation,
      ),
    ).rejects.toThrow(/other-stack: ValidationError/);
  });

  it('prefers flags to the environment and asks for a target when there is none', async () => {
    const env = {
      WN_API_URL: 'http://env:1',
      WN_API_KEY: 'env-key',
      WN_SQS_ENDPOINT: 'http://sqs:2',
    };
    expect(await resolveTarget({ url: 'http://flag:1' }, env)).toMatchObject({
      apiUrl: 'http://flag:1',
      apiKey: 'env-key',
      sqsEndpoint: 'http://sqs:2',
      source: '--url',
    });
    expect(await resolveTarget({}, env)).toMatchObject({
      apiUrl: 'http://env:1',
      source: 'WN_API_URL',
    });
    await expect(resolveTarget({}, {})).rejects.toThrow(/WN_API_URL/);
    await expect(resolveTarget({ url: 'not a url' }, { WN_API_KEY: 'k' })).rejects.toBeInstanceOf(
      UsageError,
    );
  });
});
