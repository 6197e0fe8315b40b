/** EventBridge entry point of the scheduler (every minute): Middy middleware first, then one core call. */
import { setTimeout as sleep } from 'node:timers/promises';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import { createSqsClient, queueTargets } from '../core/aws-clients.ts';
import { loadDatabaseConfig, loadDeliveryControlConfig, loadQueueConfig } from '../core/config.ts';
import { createDatabase } from '../core/db/connect.ts';
import { memoizeUntilFailure } from '../core/memoize.ts';
import { logger, metrics } from '../core/observability.ts';
import {
  DEFAULT_SCHEDULER_OPTIONS,
  runScheduler,
  type SchedulerDeps,
  type SchedulerOptions,
} from '../core/scheduler.ts';
import { reportErrorsToSentry } from '../core/sentry.ts';
import { createGraphClient } from '../core/whatsapp/graph-client.ts';
import { loadGraphClientConfig } from '../core/whatsapp-config.ts';

async function build() {
  const control = loadDeliveryControlConfig();
  const queueConfig = loadQueueConfig();
  const graph = await loadGraphClientConfig();
  const deps: SchedulerDeps = {
    db: createDatabase(loadDatabaseConfig()),
    queue: queueTargets(createSqsClient(queueConfig), queueConfig),
    whatsapp: createGraphClient(graph),
    senderId: graph.phoneNumberId,
    now: () => new Date(),
    sleep: (ms) => sleep(ms),
    logger,
    metrics,
  };
  const options: SchedulerOptions = {
    ...DEFAULT_SCHEDULER_OPTIONS,
    probesPerRun: control.SCHEDULER_PROBES_PER_RUN,
    probeIntervalMs: control.PANIC_PROBE_INTERVAL_SECONDS * 1000,
    lookaheadSeconds: control.SCHEDULER_INTERVAL_SECONDS,
    runIntervalSeconds: control.SCHEDULER_INTERVAL_SECONDS,
  };
  return { deps, options };
}

/** Built on the first invocation and kept for the life of the execution environment. */
const ready = memoizeUntilFailure(build);

export const handler = middy()
  .use(logMetrics(metrics))
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .use(reportErrorsToSentry(logger))
  .handler(async () => {
    const { deps, options } = await ready();
    return runScheduler(deps, options);
  });
