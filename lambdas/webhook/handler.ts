/** API Gateway entry point of the Meta webhook: Middy middleware first, the app last. */
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { loadDatabaseConfig } from '../core/config.ts';
import { createDatabase } from '../core/db/connect.ts';
import { logger, metrics } from '../core/observability.ts';
import { requireSecret } from '../core/secrets.ts';
import { reportErrorsToSentry } from '../core/sentry.ts';
import { createWebhookApp } from './app.ts';

let ready: Promise<ReturnType<typeof createWebhookApp>> | undefined;

async function build() {
  return createWebhookApp({
    db: createDatabase(loadDatabaseConfig()),
    appSecret: await requireSecret('WHATSAPP_APP_SECRET'),
    verifyToken: await requireSecret('WHATSAPP_VERIFY_TOKEN'),
    logger,
    metrics,
  });
}

export const handler = middy<APIGatewayProxyEvent, APIGatewayProxyResult>()
  .use(logMetrics(metrics))
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .use(reportErrorsToSentry(logger))
  .handler(async (event) => {
    ready ??= build().catch((error: unknown) => {
      ready = undefined;
      throw error;
    });
    return (await ready)(event);
  });
