/**
 * Entry point of the migrate function: the deploy-time migration custom resource (its onEvent and
 * isComplete steps, see deploy-migration.ts), and an operator's invocation that creates the first
 * admin key of a stage (see bootstrap-key.ts).
 */
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { RDSClient } from '@aws-sdk/client-rds';
import type { Context } from 'aws-lambda';
import type { Kysely } from 'kysely';
import * as z from 'zod';
import { createDatabase } from '#core/db/connect.ts';
import { MIGRATION_NAMES } from '#core/db/migrations/index.ts';
import type { Database } from '#core/db/schema.ts';
import { ConfigError, loadDatabaseConfig } from '#core/platform/config.ts';
import { Metric } from '#core/platform/metric-names.ts';
import { logger, metrics } from '#core/platform/observability.ts';
import {
  type BootstrapKeyResult,
  createBootstrapAdminKey,
  isBootstrapKeyEvent,
} from './bootstrap-key.ts';
import {
  type CustomResourceEvent,
  type DeployMigrationDeps,
  type IsCompleteEvent,
  type IsCompleteResponse,
  isMigrationComplete,
  type OnEventResponse,
  onMigrationEvent,
} from './deploy-migration.ts';

const migrateEnv = z.object({ DB_INSTANCE_IDENTIFIER: z.string().min(1) });

function isCustomResourceEvent(event: unknown): event is CustomResourceEvent {
  return (
    typeof event === 'object' &&
    event !== null &&
    ['Create', 'Update', 'Delete'].includes(
      String((event as { RequestType?: unknown }).RequestType),
    )
  );
}

/** isComplete's event carries what onEvent returned, MigrationState included; onEvent's does not. */
function isCompleteStep(event: CustomResourceEvent): event is IsCompleteEvent {
  return 'MigrationState' in event;
}

export async function handler(
  event: unknown,
  context?: Context,
): Promise<OnEventResponse | IsCompleteResponse | BootstrapKeyResult> {
  if (isBootstrapKeyEvent(event)) {
    const db = createDatabase(loadDatabaseConfig());
    try {
      const result = await createBootstrapAdminKey(db, event, context?.awsRequestId);
      if (result.breakGlass) {
        // Loud on purpose: the alarm on this metric pages (runbooks/security.md).
        logger.warn('BREAK-GLASS admin key created by invocation', { keyPrefix: result.prefix });
        metrics.addMetric(Metric.AdminKeyBreakGlass, MetricUnit.Count, 1);
        metrics.publishStoredMetrics();
      } else {
        logger.info('admin key created by invocation', { keyPrefix: result.prefix });
      }
      return result;
    } finally {
      await db.destroy();
    }
  }
  if (!isCustomResourceEvent(event)) {
    throw new Error(
      'the migrate function runs the deploy-time migration custom resource, or {"action": "create-admin-key", "name": "<who>"}',
    );
  }
  const env = migrateEnv.safeParse(process.env);
  if (!env.success) {
    throw new ConfigError('invalid configuration: DB_INSTANCE_IDENTIFIER is not set');
  }
  let db: Kysely<Database> | undefined;
  const deps: DeployMigrationDeps = {
    db: () => {
      db ??= createDatabase(loadDatabaseConfig());
      return db;
    },
    rds: new RDSClient({}),
    instanceIdentifier: env.data.DB_INSTANCE_IDENTIFIER,
    knownMigrations: MIGRATION_NAMES,
    now: () => new Date(),
    logger,
  };
  try {
    // A throw fails the resource, and with it the deployment, which CloudFormation rolls back.
    return isCompleteStep(event)
      ? await isMigrationComplete(event, deps)
      : await onMigrationEvent(event, deps);
  } finally {
    await db?.destroy();
  }
}
