/** API Gateway entry point of the API function: Middy middleware first, the app last. */
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { createSqsClient, queueTargets } from '../core/aws-clients.ts';
import { loadDatabaseConfig, loadQueueConfig, loadServiceConfig } from '../core/config.ts';
import { createDatabase } from '../core/db/connect.ts';
import { logger, metrics } from '../core/observability.ts';
import { createApiApp } from './app.ts';

let app: ReturnType<typeof createApiApp> | undefined;

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
  });
  return app;
}

export const handler = middy<APIGatewayProxyEvent, APIGatewayProxyResult>()
  .use(logMetrics(metrics))
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .handler((event) => appFromEnvironment()(event));
