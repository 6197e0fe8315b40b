/** SQS entry point of the worker: Middy middleware first, then one call to the delivery core. */
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { createDatabase } from '#core/db/connect.ts';
import { databaseGates } from '#core/delivery/database-gates.ts';
import { type DeliveryDeps, deliverBatch } from '#core/delivery/deliver-batch.ts';
import { cachedRollout } from '#core/delivery/rollout.ts';
import { createSqsClient } from '#core/platform/aws-clients.ts';
import {
  loadDatabaseConfig,
  loadDeliveryControlConfig,
  loadQueueConfig,
} from '#core/platform/config.ts';
import { memoizeUntilFailure } from '#core/platform/memoize.ts';
import { logger, metrics } from '#core/platform/observability.ts';
import { reportErrorsToSentry } from '#core/platform/sentry.ts';
import { loadGraphClientConfig } from '#core/whatsapp/config.ts';
import { createGraphClient } from '#core/whatsapp/graph-client.ts';
import { toDeliveryRecord } from './records.ts';

async function build() {
  const queueConfig = loadQueueConfig();
  const graph = await loadGraphClientConfig();
  const control = loadDeliveryControlConfig();
  const db = createDatabase(loadDatabaseConfig());
  const deps: DeliveryDeps = {
    db,
    whatsapp: createGraphClient(graph),
    senderId: graph.phoneNumberId,
    sqs: createSqsClient(queueConfig),
    gates: databaseGates({
      db,
      senderId: graph.phoneNumberId,
      rollout: cachedRollout(db),
      failureThreshold: control.CIRCUIT_FAILURE_THRESHOLD,
      metrics,
    }),
    backoff: { baseSeconds: control.BACKOFF_BASE_SECONDS, capSeconds: control.BACKOFF_CAP_SECONDS },
    now: () => new Date(),
    random: Math.random,
    logger,
    metrics,
  };
  return { deps, queueUrls: [queueConfig.HIGH_QUEUE_URL, queueConfig.BULK_QUEUE_URL] };
}

/** Built on the first invocation and kept for the life of the execution environment. */
const ready = memoizeUntilFailure(build);

export const handler = middy<SQSEvent, SQSBatchResponse>()
  .use(logMetrics(metrics))
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .use(reportErrorsToSentry(logger))
  .handler(async (event) => {
    const { deps, queueUrls } = await ready();
    const records = event.Records.map((r) => toDeliveryRecord(r, queueUrls));
    const { batchItemFailures } = await deliverBatch(deps, records);
    return { batchItemFailures };
  });
