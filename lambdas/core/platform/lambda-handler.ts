/**
 * The one Middy chain of the api, webhook, worker and scheduler functions: metrics flushed after
 * every invocation, the logger given the Lambda context with last invocation's keys cleared, errors
 * reported to Sentry; the function's own handler last, so its event and result types flow through.
 */
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { logger, metrics } from '#core/platform/observability.ts';
import { reportErrorsToSentry } from '#core/platform/sentry.ts';

export function lambdaHandler<TEvent, TResult>(
  handler: (event: TEvent, context: Context) => Promise<TResult>,
) {
  return middy<TEvent, TResult>()
    .use(logMetrics(metrics))
    .use(injectLambdaContext(logger, { resetKeys: true }))
    .use(reportErrorsToSentry(logger))
    .handler(handler);
}
