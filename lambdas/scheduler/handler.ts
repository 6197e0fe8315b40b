/** EventBridge entry point of the scheduler (every minute): the shared Middy chain first, then one core call. */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Context } from 'aws-lambda';
import { createDatabase } from '#core/db/connect.ts';
import {
  DEFAULT_SCHEDULER_OPTIONS,
  runScheduler,
  type SchedulerDeps,
  type SchedulerOptions,
  type TokenCheckState,
} from '#core/delivery/scheduler.ts';
import { queueTargets } from '#core/notifications/enqueue.ts';
import { createSqsClient } from '#core/platform/aws-clients.ts';
import {
  loadDatabaseConfig,
  loadDeliveryControlConfig,
  loadQueueConfig,
  loadRetentionConfig,
} from '#core/platform/config.ts';
import { lambdaHandler } from '#core/platform/lambda-handler.ts';
import { memoizeUntilFailure } from '#core/platform/memoize.ts';
import { logger, metrics, warnStaleSecret } from '#core/platform/observability.ts';
import { loadGraphClientConfig } from '#core/whatsapp/config.ts';
import { createGraphClient } from '#core/whatsapp/graph-client.ts';

async function build() {
  const control = loadDeliveryControlConfig();
  const queueConfig = loadQueueConfig();
  const retention = loadRetentionConfig();
  const graph = await loadGraphClientConfig(process.env, { onStaleValue: warnStaleSecret });
  // Lives as long as this execution environment, like the clients (see TokenCheckState).
  const tokenCheck: TokenCheckState = {};
  const healthCheck: TokenCheckState = {};
  const deps: Omit<SchedulerDeps, 'remainingMs'> = {
    db: createDatabase(loadDatabaseConfig()),
    queue: queueTargets(createSqsClient(queueConfig), queueConfig),
    whatsapp: createGraphClient(graph),
    senderId: graph.phoneNumberId,
    ...(graph.wabaId ? { wabaId: graph.wabaId } : {}),
    now: () => new Date(),
    sleep: (ms) => sleep(ms),
    logger,
    metrics,
    tokenCheck,
    healthCheck,
  };
  const options: SchedulerOptions = {
    ...DEFAULT_SCHEDULER_OPTIONS,
    probesPerRun: control.SCHEDULER_PROBES_PER_RUN,
    probeIntervalMs: control.PANIC_PROBE_INTERVAL_SECONDS * 1000,
    graphCallMaxMs: graph.timeoutMs ?? DEFAULT_SCHEDULER_OPTIONS.graphCallMaxMs,
    templateRefreshIntervalMs: control.TEMPLATE_REFRESH_SECONDS * 1000,
    lookaheadSeconds: control.SCHEDULER_INTERVAL_SECONDS,
    runIntervalSeconds: control.SCHEDULER_INTERVAL_SECONDS,
    piiRetentionDays: retention.PII_RETENTION_DAYS,
    auditRetentionDays: retention.AUDIT_RETENTION_DAYS,
  };
  return { deps, options };
}

/** Built on the first invocation and kept for the life of the execution environment. */
const ready = memoizeUntilFailure(build);

export const handler = lambdaHandler(async (_event: unknown, context: Context) => {
  const { deps, options } = await ready();
  // The deadline is this invocation's, so it is bound here and not in the memoized deps.
  return runScheduler({ ...deps, remainingMs: () => context.getRemainingTimeInMillis() }, options);
});
