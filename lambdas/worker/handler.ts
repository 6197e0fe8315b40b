/** SQS entry point of the worker: Middy middleware first, then one call to the delivery core. */
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { createSqsClient } from '../core/aws-clients.ts';
import { DEFAULT_BACKOFF } from '../core/backoff.ts';
import { loadDatabaseConfig, loadQueueConfig } from '../core/config.ts';
import { createDatabase } from '../core/db/connect.ts';
import { type DeliveryDeps, deliverBatch } from '../core/deliver-batch.ts';
import { openGates } from '../core/delivery-gates.ts';
import { logger, metrics } from '../core/observability.ts';
import { createGraphClient } from '../core/whatsapp/graph-client.ts';
import { loadGraphClientConfig } from '../core/whatsapp-config.ts';
import { toDeliveryRecord } from './records.ts';

let ready: Promise<{ deps: DeliveryDeps; queueUrls: string[] }> | undefined;

async function build() {
  const queueConfig = loadQueueConfig();
  const graph = await loadGraphClientConfig();
  const db = createDatabase(loadDatabaseConfig());
  const deps: DeliveryDeps = {
    db,
    whatsapp: createGraphClient(graph),
    senderId: graph.phoneNumberId,
    sqs: createSqsClient(queueConfig),
    gates: openGates,
    backoff: DEFAULT_BACKOFF,
    now: () => new Date(),
    random: Math.random,
    logger,
    metrics,
  };
  return { deps, queueUrls: [queueConfig.HIGH_QUEUE_URL, queueConfig.BULK_QUEUE_URL] };
}

export const handler = middy<SQSEvent, SQSBatchResponse>()
  .use(logMetrics(metrics))
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .handler(async (event) => {
    ready ??= build().catch((error: unknown) => {
      ready = undefined;
      throw error;
    });
    const { deps, queueUrls } = await ready;
    const records = event.Records.map((r) => toDeliveryRecord(r, queueUrls));
    const { batchItemFailures } = await deliverBatch(deps, records);
    return { batchItemFailures };
  });
