/**
 * SQS entry point of the callback dispatcher: each message (a drain tick from the one-minute
 * schedule) runs the drain loop for most of the invocation, then the shared Middy chain flushes
 * metrics. A drain that throws fails the message, which SQS retries and finally dead-letters.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import type { Context, SQSEvent } from 'aws-lambda';
import { loadCallbackConfig } from '#core/callbacks/config.ts';
import { drainCallbacks, pruneCallbackEvents } from '#core/callbacks/dispatch.ts';
import { publishClientEvents } from '#core/callbacks/event-bus.ts';
import { createPostCallback } from '#core/callbacks/post-callback.ts';
import { createDatabase } from '#core/db/connect.ts';
import { loadDatabaseConfig } from '#core/platform/config.ts';
import { lambdaHandler } from '#core/platform/lambda-handler.ts';
import { memoizeUntilFailure } from '#core/platform/memoize.ts';
import { logger, metrics } from '#core/platform/observability.ts';

const DAY_MS = 86_400_000;

async function build() {
  const config = loadCallbackConfig();
  const db = createDatabase(loadDatabaseConfig());
  const bus = config.EVENT_BUS_NAME
    ? { client: new EventBridgeClient({}), busName: config.EVENT_BUS_NAME }
    : undefined;
  const deps = {
    db,
    post: createPostCallback({
      strict: !config.CALLBACK_ALLOW_LOCAL_TARGETS,
      timeoutMs: config.CALLBACK_TIMEOUT_MS,
      maxResponseBytes: config.CALLBACK_MAX_RESPONSE_BYTES,
    }),
    now: () => new Date(),
    random: Math.random,
    settings: config.settings,
    logger,
    metrics,
  };
  return { config, deps, bus };
}

const ready = memoizeUntilFailure(build);

export const handler = lambdaHandler(async (_event: SQSEvent, context: Context) => {
  const { config, deps, bus } = await ready();
  const startedAt = Date.now();
  const budgetMs = config.CALLBACK_DRAIN_SECONDS * 1000;
  // Up to ten slices of a thousand a drain: well above what a busy stage adds in a minute.
  const cutoff = new Date(Date.now() - config.CALLBACK_RETENTION_DAYS * DAY_MS);
  for (let slice = 0; slice < 10; slice += 1) {
    if ((await pruneCallbackEvents(deps.db, cutoff, 1000)) < 1000) break;
  }
  // A round may take one post timeout: none starts past the drain's budget or that close to the
  // Lambda deadline.
  const marginMs = config.CALLBACK_TIMEOUT_MS + 5_000;
  const summary = await drainCallbacks(deps, {
    remainingMs: () =>
      Math.min(budgetMs - (Date.now() - startedAt) + marginMs, context.getRemainingTimeInMillis()),
    stopWithMsLeft: marginMs,
    idleMs: 1_000,
    sleep: (ms) => sleep(ms),
    ...(bus ? { beforeRound: async () => void (await publishClientEvents(deps.db, bus)) } : {}),
  });
  logger.info('callback drain finished', { ...summary });
  return summary;
});
