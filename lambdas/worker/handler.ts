/** SQS entry point of the worker: the shared Middy chain first, then one call to the delivery core. */
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { createDatabase } from '#core/db/connect.ts';
import { createWorkerDeps } from '#core/delivery/worker-deps.ts';
import { createSqsClient } from '#core/platform/aws-clients.ts';
import {
  loadDatabaseConfig,
  loadDeliveryControlConfig,
  loadQueueConfig,
} from '#core/platform/config.ts';
import { lambdaHandler } from '#core/platform/lambda-handler.ts';
import { memoizeUntilFailure } from '#core/platform/memoize.ts';
import { logger, metrics, warnStaleSecret } from '#core/platform/observability.ts';
import { loadGraphClientConfig } from '#core/whatsapp/config.ts';
import { createGraphClient } from '#core/whatsapp/graph-client.ts';
import { deliverSqsBatch } from './records.ts';

async function build() {
  const queueConfig = loadQueueConfig();
  const graph = await loadGraphClientConfig(process.env, { onStaleValue: warnStaleSecret });
  const whatsapp = createGraphClient(graph);
  const deps = createWorkerDeps({
    db: createDatabase(loadDatabaseConfig()),
    sqs: createSqsClient(queueConfig),
    whatsapp,
    // The template registry of WHATSAPP_WABA_ID: without it templates are not checked before the
    // send and marketing opt-outs are left to Meta (131050).
    ...(graph.wabaId ? { wabaId: graph.wabaId } : {}),
    senderId: graph.phoneNumberId,
    settings: loadDeliveryControlConfig(),
    logger,
    metrics,
  });
  return { deps, queueUrls: [queueConfig.HIGH_QUEUE_URL, queueConfig.BULK_QUEUE_URL] };
}

/** Built on the first invocation and kept for the life of the execution environment. */
const ready = memoizeUntilFailure(build);

export const handler = lambdaHandler<SQSEvent, SQSBatchResponse>(async (event) => {
  const { deps, queueUrls } = await ready();
  return deliverSqsBatch(deps, event, queueUrls);
});
