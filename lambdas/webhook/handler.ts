/** API Gateway entry point of the Meta webhook: Middy middleware first, the app last. */
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { createDatabase } from '#core/db/connect.ts';
import { loadDatabaseConfig } from '#core/platform/config.ts';
import { memoizeUntilFailure } from '#core/platform/memoize.ts';
import { logger, metrics } from '#core/platform/observability.ts';
import { requireSecret } from '#core/platform/secrets.ts';
import { reportErrorsToSentry } from '#core/platform/sentry.ts';
import { createWebhookApp } from './app.ts';

async function build() {
  return createWebhookApp({
    db: createDatabase(loadDatabaseConfig()),
    appSecret: await requireSecret('WHATSAPP_APP_SECRET'),
    verifyToken: await requireSecret('WHATSAPP_VERIFY_TOKEN'),
    logger,
    metrics,
  });
}

/** Built on the first invocation and kept for the life of the execution environment. */
const ready = memoizeUntilFailure(build);

export const handler = middy<APIGatewayProxyEvent, APIGatewayProxyResult>()
  .use(logMetrics(metrics))
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .use(reportErrorsToSentry(logger))
  .handler(async (event) => {
    return (await ready())(event);
  });
