/**
 * The deploy-time migration as a CloudFormation custom resource with an asynchronous wait: onEvent
 * starts a manual RDS snapshot when migrations are pending and returns at once; isComplete, polled
 * by the CDK provider framework, migrates once the snapshot is available. The snapshot wait is no
 * longer bound by one Lambda invocation's 15 minutes, only by the provider's total timeout.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import {
  CreateDBSnapshotCommand,
  DBSnapshotNotFoundFault,
  DescribeDBInstancesCommand,
  DescribeDBSnapshotsCommand,
  type RDSClient,
} from '@aws-sdk/client-rds';
import { type Kysely, sql } from 'kysely';
import { migrateToLatest, pendingMigrations } from '#core/db/migrate.ts';
import type { Database } from '#core/db/schema.ts';
import { preMigrationSnapshotIdentifier, preMigrationSnapshotPrefix } from './snapshot-name.ts';

/** The resource's properties: the newest migration of the bundle the stack was synthesized with. */
export interface MigrationResourceProperties {
  Target: string;
}

export interface CustomResourceEvent {
  RequestType: 'Create' | 'Update' | 'Delete';
  ResourceProperties: Partial<MigrationResourceProperties> & Record<string, unknown>;
  PhysicalResourceId?: string;
  LogicalResourceId?: string;
  StackId?: string;
}

/** What onEvent hands to isComplete (the provider merges it into isComplete's event). */
type MigrationState =
  | { MigrationState: 'done'; Outcome: 'up_to_date' | 'skipped' }
  | { MigrationState: 'snapshot'; SnapshotIdentifier: string; Pending: string[] };

export type OnEventResponse = MigrationState & {
  PhysicalResourceId: string;
  Data: Record<string, string>;
};

export type IsCompleteEvent = CustomResourceEvent & Partial<OnEventResponse>;

export interface IsCompleteResponse {
  IsComplete: boolean;
  Data?: Record<string, string>;
}

export interface DeployMigrationDeps {
  /** Opened only when needed: a rollback or a delete must succeed with the database unreachable. */
  db: () => Kysely<Database>;
  rds: RDSClient;
  instanceIdentifier: string;
  /** Migration names the bundled code knows, in order; the last is the newest. */
  knownMigrations: readonly string[];
  now: () => Date;
  logger?: Pick<Logger, 'info' | 'error'>;
  /** How long to keep trying the first connection (a new proxy needs minutes). */
  connect?: { timeoutMs: number; delayMs: number };
}

export class SnapshotFailedError extends Error {
  readonly snapshotIdentifier: string;
  constructor(snapshotIdentifier: string, status: string) {
    super(`snapshot ${snapshotIdentifier} ended ${status}; no migration was applied`);
    this.name = 'SnapshotFailedError';
    this.snapshotIdentifier = snapshotIdentifier;
  }
}

const PHYSICAL_ID = 'schema-migrations';
const DEFAULT_CONNECT = { timeoutMs: 5 * 60 * 1000, delayMs: 10_000 };

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

function done(event: CustomResourceEvent, outcome: 'up_to_date' | 'skipped'): OnEventResponse {
  return {
    PhysicalResourceId: event.PhysicalResourceId ?? PHYSICAL_ID,
    MigrationState: 'done',
    Outcome: outcome,
    Data: { Outcome: outcome },
  };
}

export async function onMigrationEvent(
  event: CustomResourceEvent,
  deps: DeployMigrationDeps,
): Promise<OnEventResponse> {
  const { logger } = deps;
  // Migrations are forward-only: removing the resource (a stack delete, or a rollback of its
  // creation) leaves the schema as it is.
  if (event.RequestType === 'Delete') return done(event, 'skipped');

  const target = event.ResourceProperties.Target;
  const newest = deps.knownMigrations.at(-1);
  if (typeof target !== 'string' || !deps.knownMigrations.includes(target)) {
    throw new Error(
      `the migrate function does not know migration ${String(target)}: its code is older than the stack`,
    );
  }
  if (target !== newest) {
    // A rollback: CloudFormation re-applies the previous properties while this (newer) code is
    // still deployed. The newer schema stays, and the database is not even contacted.
    logger?.info('properties name an older migration (a rollback); schema left as it is', {
      target,
      newest,
    });
    return done(event, 'skipped');
  }

  const db = deps.db();
  await waitForConnection(db, {
    ...(deps.connect ?? DEFAULT_CONNECT),
    ...(logger ? { logger } : {}),
  });
  const pending = await pendingMigrations(db);
  if (pending.length === 0) {
    logger?.info('schema up to date, nothing to migrate');
    return done(event, 'up_to_date');
  }

  const reused = await snapshotInProgress(deps);
  const snapshotIdentifier =
    reused ?? preMigrationSnapshotIdentifier(deps.instanceIdentifier, deps.now());
  if (reused) {
    logger?.info('reusing a pre-migration snapshot still being created', { snapshotIdentifier });
  } else {
    logger?.info('migrations pending, taking a snapshot first', { pending, snapshotIdentifier });
    // A busy instance (backup, maintenance) cannot be snapshotted yet; isComplete retries.
    if (await instanceAvailable(deps)) await createSnapshot(deps, snapshotIdentifier, pending);
  }
  return {
    PhysicalResourceId: event.PhysicalResourceId ?? PHYSICAL_ID,
    MigrationState: 'snapshot',
    SnapshotIdentifier: snapshotIdentifier,
    Pending: pending,
    Data: { Outcome: 'snapshot', SnapshotIdentifier: snapshotIdentifier },
  };
}

export async function isMigrationComplete(
  event: IsCompleteEvent,
  deps: DeployMigrationDeps,
): Promise<IsCompleteResponse> {
  const { logger } = deps;
  if (event.MigrationState !== 'snapshot') {
    return { IsComplete: true, Data: { Outcome: event.Data?.Outcome ?? 'skipped' } };
  }
  const snapshotIdentifier = event.SnapshotIdentifier!;
  const status = await snapshotStatus(deps, snapshotIdentifier);
  if (status === undefined) {
    if (await instanceAvailable(deps)) {
      await createSnapshot(deps, snapshotIdentifier, event.Pending ?? []);
    }
    return { IsComplete: false };
  }
  if (status === 'creating') return { IsComplete: false };
  if (status !== 'available') {
    logger?.error('pre-migration snapshot failed; not migrating', { snapshotIdentifier, status });
    throw new SnapshotFailedError(snapshotIdentifier, status);
  }

  const db = deps.db();
  try {
    const applied = await migrateToLatest(db);
    logger?.info('migrations applied', { applied, snapshotIdentifier });
    return {
      IsComplete: true,
      Data: {
        Outcome: 'migrated',
        Applied: applied.join(' '),
        SnapshotIdentifier: snapshotIdentifier,
      },
    };
  } catch (error) {
    // The snapshot is the way back: name it where on-call will look first.
    logger?.error('migration failed; restore from the snapshot if the schema is damaged', {
      snapshotIdentifier,
      error,
    });
    throw error;
  }
}

/** A pre-migration snapshot of this instance still `creating` from an earlier, failed attempt. */
async function snapshotInProgress(deps: DeployMigrationDeps): Promise<string | undefined> {
  const prefix = preMigrationSnapshotPrefix(deps.instanceIdentifier);
  const { DBSnapshots = [] } = await deps.rds.send(
    new DescribeDBSnapshotsCommand({
      DBInstanceIdentifier: deps.instanceIdentifier,
      SnapshotType: 'manual',
    }),
  );
  return DBSnapshots.filter(
    (s) => s.Status === 'creating' && s.DBSnapshotIdentifier?.startsWith(prefix),
  )
    .map((s) => s.DBSnapshotIdentifier!)
    .sort()
    .at(-1);
}

async function snapshotStatus(
  deps: DeployMigrationDeps,
  snapshotIdentifier: string,
): Promise<string | undefined> {
  try {
    const { DBSnapshots = [] } = await deps.rds.send(
      new DescribeDBSnapshotsCommand({ DBSnapshotIdentifier: snapshotIdentifier }),
    );
    return DBSnapshots[0]?.Status;
  } catch (error) {
    if (error instanceof DBSnapshotNotFoundFault) return undefined;
    throw error;
  }
}

async function instanceAvailable(deps: DeployMigrationDeps): Promise<boolean> {
  const { DBInstances = [] } = await deps.rds.send(
    new DescribeDBInstancesCommand({ DBInstanceIdentifier: deps.instanceIdentifier }),
  );
  return DBInstances[0]?.DBInstanceStatus === 'available';
}

async function createSnapshot(
  deps: DeployMigrationDeps,
  snapshotIdentifier: string,
  pending: readonly string[],
): Promise<void> {
  await deps.rds.send(
    new CreateDBSnapshotCommand({
      DBInstanceIdentifier: deps.instanceIdentifier,
      DBSnapshotIdentifier: snapshotIdentifier,
      Tags: [
        { Key: 'whatsapp-notif:purpose', Value: 'pre-migration' },
        // Tag values are capped at 256 characters.
        { Key: 'whatsapp-notif:migrations', Value: pending.join(' ').slice(0, 256) },
      ],
    }),
  );
}
