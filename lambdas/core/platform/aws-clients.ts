/** AWS SDK clients built from configuration, with the emulator endpoint when one is configured. */
import { SQSClient } from '@aws-sdk/client-sqs';
import type { QueueConfig } from '#core/platform/config.ts';

export function createSqsClient(config: QueueConfig): SQSClient {
  return new SQSClient({
    region: config.AWS_REGION,
    ...(config.SQS_ENDPOINT ? { endpoint: config.SQS_ENDPOINT } : {}),
  });
}
