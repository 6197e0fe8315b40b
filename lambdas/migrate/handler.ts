/**
 * Entry point of the migrate function: invoked by the CDK trigger on deploy to migrate, and by an
 * operator once per stage to create the first admin key (see bootstrap-key.ts).
 */
import { RDSClient } from '@aws-sdk/client-rds';
import type { Context } from 'aws-lambda';
import * as z from 'zod';
import { ConfigError, loadDatabaseConfig } from '../core/config.ts';
import { createDatabase } from '../core/db/connect.ts';
import { logger } from '../core/observability.ts';
import {
  type BootstrapKeyResult,
  createBootstrapAdminKey,
  isBootstrapKeyEvent,
} from './bootstrap-key.ts';
import { type MigrationRun, snapshotThenMigrate } from './snapshot-then-migrate.ts';

const migrateEnv = z.object({ DB_INSTANCE_IDENTIFIER: z.string().min(1) });

export async function handler(
  event: unknown,
  context?: Context,
): Promise<MigrationRun | BootstrapKeyResult> {
  if (isBootstrapKeyEvent(event)) {
    const db = createDatabase(loadDatabaseConfig());
    try {
      const result = await createBootstrapAdminKey(db, event, context?.awsRequestId);
      logger.info('admin key created by invocation', { keyPrefix: result.prefix });
      return result;
    } finally {
      await db.destroy();
    }
  }
  const env = migrateEnv.safeParse(process.env);
  if (!env.success) {
    throw new ConfigError('invalid configuration: DB_INSTANCE_IDENTIFIER is not set');
  }
  const db = createDatabase(loadDatabaseConfig());
  try {
    // A throw fails the trigger, and with it the deployment; the result is logged either way.
    return await snapshotThenMigrate({
      db,
      rds: new RDSClient({}),
      instanceIdentifier: env.data.DB_INSTANCE_IDENTIFIER,
      now: () => new Date(),
      logger,
      ...(context ? { remainingMs: () => context.getRemainingTimeInMillis() } : {}),
    });
  } finally {
    await db.destroy();
  }
}
