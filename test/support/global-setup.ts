/**
 * Starts the real local parts once for the whole run: a throwaway embedded PostgreSQL with the
 * migrations applied, and the fauxqs emulator with the delivery queues. Test files reach them
 * through the environment, and each test makes its own clients and numbers.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { createDatabase } from '#core/db/connect.ts';
import { migrateToLatest } from '#core/db/migrate.ts';
import { startEmbeddedPostgres } from '../../bin/local/postgres.ts';
import { startLocalSqs } from '../../bin/local/sqs.ts';

export default async function setup(project: TestProject) {
  const dataDir = join(process.cwd(), '.local', `test-pg-${process.pid}`);
  await rm(dataDir, { recursive: true, force: true });
  const postgres = await startEmbeddedPostgres({ dataDir, throwaway: true });
  const db = createDatabase({ DATABASE_URL: postgres.url, DB_POOL_MAX: 1 } as never);
  await migrateToLatest(db);
  await db.destroy();
  const sqs = await startLocalSqs();

  const env = {
    DATABASE_URL: postgres.url,
    TEST_PG_ADMIN_URL: postgres.url.replace(/\/[^/]+$/, '/postgres'),
    SQS_ENDPOINT: sqs.endpoint,
    HIGH_QUEUE_URL: sqs.queueUrls.high,
    BULK_QUEUE_URL: sqs.queueUrls.bulk,
    HIGH_DLQ_URL: sqs.deadLetterQueueUrls.high,
    BULK_DLQ_URL: sqs.deadLetterQueueUrls.bulk,
    AWS_REGION: sqs.region,
    AWS_ACCESS_KEY_ID: 'local',
    AWS_SECRET_ACCESS_KEY: 'local',
    POWERTOOLS_DEV: 'false',
    POWERTOOLS_LOG_LEVEL: 'WARN',
    POWERTOOLS_METRICS_DISABLED: 'true',
  };
  Object.assign(process.env, env);
  project.provide('testEnv', env);

  return async () => {
    await sqs.stop();
    await postgres.stop();
    await rm(dataDir, { recursive: true, force: true });
  };
}

declare module 'vitest' {
  export interface ProvidedContext {
    testEnv: Record<string, string>;
  }
}
