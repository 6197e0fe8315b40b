/** API Gateway entry point of the Meta webhook: the shared Middy chain first, the app last. */
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { createDatabase } from '#core/db/connect.ts';
import { loadDatabaseConfig } from '#core/platform/config.ts';
import { lambdaHandler } from '#core/platform/lambda-handler.ts';
import { memoizeUntilFailure } from '#core/platform/memoize.ts';
import { logger, metrics, warnStaleSecret } from '#core/platform/observability.ts';
import { secretReader } from '#core/platform/secrets.ts';
import { createWebhookApp } from './app.ts';

async function build() {
  return createWebhookApp({
    db: createDatabase(loadDatabaseConfig()),
    appSecret: await secretReader('WHATSAPP_APP_SECRET', { onStaleValue: warnStaleSecret }),
    verifyToken: await secretReader('WHATSAPP_VERIFY_TOKEN', { onStaleValue: warnStaleSecret }),
    logger,
    metrics,
    ...(process.env.WHATSAPP_PHONE_NUMBER_ID
      ? { phoneNumberIds: [process.env.WHATSAPP_PHONE_NUMBER_ID] }
      : {}),
  });
}

/** Built on the first invocation and kept for the life of the execution environment. */
const ready = memoizeUntilFailure(build);

export const handler = lambdaHandler<APIGatewayProxyEvent, APIGatewayProxyResult>(async (event) =>
  (await ready())(event),
);
