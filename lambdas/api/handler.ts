/** API Gateway entry point of the API function: the shared Middy chain first, the app last. */
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { createDatabase } from '#core/db/connect.ts';
import { queueTargets } from '#core/notifications/enqueue.ts';
import { createSqsClient } from '#core/platform/aws-clients.ts';
import { loadDatabaseConfig, loadQueueConfig, loadServiceConfig } from '#core/platform/config.ts';
import { lambdaHandler } from '#core/platform/lambda-handler.ts';
import { memoizeUntilFailure } from '#core/platform/memoize.ts';
import { logger, metrics, warnStaleSecret } from '#core/platform/observability.ts';
import { loadGraphClientConfig } from '#core/whatsapp/config.ts';
import { createGraphClient, type GraphClient } from '#core/whatsapp/graph-client.ts';
import { createApiApp } from './app.ts';

let app: ReturnType<typeof createApiApp> | undefined;

/** The Graph API client of the admin template and token routes: built on first use, once. */
function lazyGraphClient(): () => Promise<GraphClient> {
  return memoizeUntilFailure(() =>
    loadGraphClientConfig(process.env, { onStaleValue: warnStaleSecret }).then(createGraphClient),
  );
}

/** Built on the first request and kept for the life of the execution environment. */
function appFromEnvironment(): ReturnType<typeof createApiApp> {
  if (app) return app;
  const service = loadServiceConfig();
  const queueConfig = loadQueueConfig();
  const sqs = createSqsClient(queueConfig);
  app = createApiApp({
    db: createDatabase(loadDatabaseConfig()),
    sqs,
    queue: queueTargets(sqs, queueConfig),
    now: () => new Date(),
    version: service.SERVICE_VERSION,
    logger,
    metrics,
    deadLetterQueueUrls: {
      ...(queueConfig.HIGH_DLQ_URL ? { high: queueConfig.HIGH_DLQ_URL } : {}),
      ...(queueConfig.BULK_DLQ_URL ? { bulk: queueConfig.BULK_DLQ_URL } : {}),
    },
    ...(process.env.WHATSAPP_PHONE_NUMBER_ID
      ? { senderId: process.env.WHATSAPP_PHONE_NUMBER_ID }
      : {}),
    ...(process.env.WHATSAPP_WABA_ID ? { wabaId: process.env.WHATSAPP_WABA_ID } : {}),
    ...(queueConfig.SQS_ENDPOINT ? { sqsEndpoint: queueConfig.SQS_ENDPOINT } : {}),
    whatsapp: lazyGraphClient(),
    // Only the local stack sets it: http and loopback callback URLs for a local receiver.
    callbackTargets: { strict: process.env.CALLBACK_ALLOW_LOCAL_TARGETS !== 'true' },
  });
  return app;
}

export const handler = lambdaHandler<APIGatewayProxyEvent, APIGatewayProxyResult>((event) =>
  appFromEnvironment()(event),
);
