/**
 * The deploy-time migration: when migrations are pending, take a manual RDS snapshot and wait for
 * it, then bring the schema up to date. With nothing pending it touches neither RDS nor the schema.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import {
  CreateDBSnapshotCommand,
  type RDSClient,
  waitUntilDBInstanceAvailable,
  waitUntilDBSnapshotAvailable,
} from '@aws-sdk/client-rds';
import { type Kysely, sql } from 'kysely';
import { migrateToLatest, pendingMigrations } from '../core/db/migrate.ts';
import type { Database } from '../core/db/schema.ts';
import { preMigrationSnapshotIdentifier } from './snapshot-name.ts';

export interface SnapshotWait {
  /** Seconds before the wait gives up; the deployment fails rather than migrate unprotected. */
  maxWaitSeconds: number;
  /** Polling bounds in seconds (the SDK waiter backs off between them). */
  minDelaySeconds: number;
  maxDelaySeconds: number;
}

export interface SnapshotThenMigrateDeps {
  db: Kysely<Database>;
  rds: RDSClient;
  instanceIdentifier: string;
  now: () => Date;
  logger?: Pick<Logger, 'info' | 'error'>;
  wait?: Partial<SnapshotWait>;
  /** How long to keep trying the first connection (a new proxy needs minutes). */
  connect?: { timeoutMs: number; delayMs: number };
  /** Time left in the invocation; the snapshot wait stops early enough to leave room to migrate. */
  remainingMs?: () => number;
}

export type MigrationRun =
  | { outcome: 'up_to_date'; pending: []; applied: []; snapshotIdentifier: null }
  | { outcome: 'migrated'; pending: string[]; applied: string[]; snapshotIdentifier: string };

export class SnapshotFailedError extends Error {
  readonly snapshotIdentifier: string;
  constructor(snapshotIdentifier: string, cause: unknown) {
    super(`snapshot ${snapshotIdentifier} did not become available; no migration was applied`, {
      cause,
    });
    this.name = 'SnapshotFailedError';
    this.snapshotIdentifier = snapshotIdentifier;
  }
}

/**
 * Waits until a query goes through. On a first deploy the RDS proxy registers its target a few
 * minutes after CloudFormation reports it created, and refuses connections until then.
 */
export async function waitForConnection(
  db: Kysely<Database>,
  options: { timeoutMs: number; delayMs: number; logger?: Pick<Logger, 'info' | 'error'> },
): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  for (let attempt = 1; ; attempt++) {
    try {
      await sql`select 1`.execute(db);
      return;
    } catch (error) {
      if (Date.now() + options.delayMs > deadline) throw error;
      options.logger?.info('database not reachable yet, retrying', { attempt, error });
      await new Promise((resolve) => setTimeout(resolve, options.delayMs));
    }
  }
}

/** Snapshots of a small instance take minutes; the Lambda has 14, and migrations need some. */
const DEFAULT_CONNECT = { timeoutMs: 5 * 60 * 1000, delayMs: 10_000 };
/** Kept free for the migrations themselves when the invocation's time is known. */
const RESERVED_FOR_MIGRATIONS_MS = 2 * 60 * 1000;
const DEFAULT_WAIT: SnapshotWait = {
  maxWaitSeconds: 11 * 60,
  minDelaySeconds: 10,
  maxDelaySeconds: 30,
};

export async function snapshotThenMigrate(deps: SnapshotThenMigrateDeps): Promise<MigrationRun> {
  const { db, rds, instanceIdentifier, logger } = deps;
  const wait = { ...DEFAULT_WAIT, ...deps.wait };
  await waitForConnection(db, {
    ...(deps.connect ?? DEFAULT_CONNECT),
    ...(logger ? { logger } : {}),
  });
  const pending = await pendingMigrations(db);
  if (pending.length === 0) {
    logger?.info('schema up to date, nothing to migrate');
    return { outcome: 'up_to_date', pending: [], applied: [], snapshotIdentifier: null };
  }

  const snapshotIdentifier = preMigrationSnapshotIdentifier(instanceIdentifier, deps.now());
  logger?.info('migrations pending, taking a snapshot first', { pending, snapshotIdentifier });
  const started = Date.now();
  // One budget for both waits, so the whole run fits the invocation.
  const budgetMs = Math.min(
    wait.maxWaitSeconds * 1000,
    (deps.remainingMs?.() ?? Number.POSITIVE_INFINITY) - RESERVED_FOR_MIGRATIONS_MS,
  );
  const deadline = started + budgetMs;
  const waiter = () => ({
    client: rds,
    maxWaitTime: Math.max(wait.minDelaySeconds * 2, (deadline - Date.now()) / 1000),
    minDelay: wait.minDelaySeconds,
    maxDelay: wait.maxDelaySeconds,
  });
  try {
    // A daily backup or maintenance can hold the instance in another state; CreateDBSnapshot
    // needs it available.
    await waitUntilDBInstanceAvailable(waiter(), { DBInstanceIdentifier: instanceIdentifier });
    await rds.send(
      new CreateDBSnapshotCommand({
        DBInstanceIdentifier: instanceIdentifier,
        DBSnapshotIdentifier: snapshotIdentifier,
        Tags: [
          { Key: 'whatsapp-notif:purpose', Value: 'pre-migration' },
          // Tag values are capped at 256 characters.
          { Key: 'whatsapp-notif:migrations', Value: pending.join(' ').slice(0, 256) },
        ],
      }),
    );
    await waitUntilDBSnapshotAvailable(waiter(), { DBSnapshotIdentifier: snapshotIdentifier });
  } catch (error) {
    logger?.error('pre-migration snapshot failed; not migrating', { snapshotIdentifier, error });
    throw new SnapshotFailedError(snapshotIdentifier, error);
  }
  logger?.info('snapshot available', {
    snapshotIdentifier,
    seconds: (Date.now() - started) / 1000,
  });

  try {
    const applied = await migrateToLatest(db);
    logger?.info('migrations applied', { applied, snapshotIdentifier });
    return { outcome: 'migrated', pending, applied, snapshotIdentifier };
  } catch (error) {
    // The snapshot is the way back: name it where on-call will look first.
    logger?.error('migration failed; restore from the snapshot if the schema is damaged', {
      snapshotIdentifier,
      error,
    });
    throw error;
  }
}
