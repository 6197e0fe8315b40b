/**
 * The deploy-time migration custom resource, step by step as the provider framework drives it:
 * onEvent, then isComplete until it says done. Real migrations on fresh databases of the suite's
 * PostgreSQL; RDS answers from aws-sdk-client-mock.
 */
import {
  CreateDBSnapshotCommand,
  DBSnapshotNotFoundFault,
  DescribeDBInstancesCommand,
  DescribeDBSnapshotsCommand,
  RDSClient,
} from '@aws-sdk/client-rds';
import { mockClient } from 'aws-sdk-client-mock';
import type { Kysely } from 'kysely';
import pg from 'pg';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { createDatabase } from '#core/db/connect.ts';
import { pendingMigrations } from '#core/db/migrate.ts';
import { MIGRATION_NAMES } from '#core/db/migrations/index.ts';
import type { Database } from '#core/db/schema.ts';
import {
  type CustomResourceEvent,
  type DeployMigrationDeps,
  isMigrationComplete,
  onMigrationEvent,
  SnapshotFailedError,
} from '../../../lambdas/migrate/deploy-migration.ts';
import { handler } from '../../../lambdas/migrate/handler.ts';
import { testDatabase } from '../../support/database.ts';

const INSTANCE = 'whatsapp-notif-test';
const NOW = new Date('2026-11-22T23:35:01.250Z');
const SNAPSHOT = 'whatsapp-notif-test-pre-migration-20261122-233501';
const NEWEST = MIGRATION_NAMES.at(-1)!;

const rds = new RDSClient({ region: 'us-east-1' });
const rdsMock = mockClient(rds);
const created: { name: string; db: Kysely<Database> }[] = [];

function adminUrl(): string {
  const url = process.env.TEST_PG_ADMIN_URL;
  if (!url) throw new Error('TEST_PG_ADMIN_URL is not set: run the tests through vitest');
  return url;
}

/** A new, empty database on the suite's PostgreSQL: every migration is pending in it. */
async function blankDatabase(): Promise<Kysely<Database>> {
  const name = `migrate_${crypto.randomUUID().replaceAll('-', '')}`;
  const admin = new pg.Client({ connectionString: adminUrl() });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(adminUrl());
  url.pathname = `/${name}`;
  const db = createDatabase({
    DATABASE_URL: url.toString(),
    DB_POOL_MAX: 2,
    DB_PORT: 5432,
    DB_NAME: name,
    DB_IAM_AUTH: false,
  });
  created.push({ name, db });
  return db;
}

/** Nothing listens on port 9 of loopback: every connection is refused at once. */
function unreachableDatabase(): Kysely<Database> {
  const db = createDatabase({
    DATABASE_URL: 'postgres://nobody@127.0.0.1:9/nothing',
    DB_POOL_MAX: 1,
    DB_PORT: 9,
    DB_NAME: 'nothing',
    DB_IAM_AUTH: false,
  });
  created.push({ name: '', db });
  return db;
}

function deps(db: Kysely<Database>, opened?: { count: number }): DeployMigrationDeps {
  return {
    db: () => {
      if (opened) opened.count += 1;
      return db;
    },
    rds,
    instanceIdentifier: INSTANCE,
    knownMigrations: MIGRATION_NAMES,
    now: () => NOW,
    connect: { timeoutMs: 200, delayMs: 20 },
  };
}

function event(
  requestType: CustomResourceEvent['RequestType'],
  target: string = NEWEST,
): CustomResourceEvent {
  return {
    RequestType: requestType,
    ResourceProperties: { Target: target },
    ...(requestType === 'Create' ? {} : { PhysicalResourceId: 'schema-migrations' }),
  };
}

function instanceStatus(status: string) {
  rdsMock
    .on(DescribeDBInstancesCommand)
    .resolves({ DBInstances: [{ DBInstanceIdentifier: INSTANCE, DBInstanceStatus: status }] });
}

/** The snapshots RDS lists for the instance, and the status of the one asked for by name. */
function snapshots(byInstance: { id: string; status: string }[], byName?: () => string) {
  rdsMock.on(DescribeDBSnapshotsCommand).callsFake(async (input) => {
    if (input.DBSnapshotIdentifier) {
      const status = byName?.();
      if (!status) {
        throw new DBSnapshotNotFoundFault({ message: 'not found', $metadata: {} });
      }
      return {
        DBSnapshots: [{ DBSnapshotIdentifier: input.DBSnapshotIdentifier, Status: status }],
      };
    }
    return {
      DBSnapshots: byInstance.map((s) => ({ DBSnapshotIdentifier: s.id, Status: s.status })),
    };
  });
  rdsMock
    .on(CreateDBSnapshotCommand)
    .resolves({ DBSnapshot: { DBSnapshotIdentifier: SNAPSHOT, Status: 'creating' } });
}

beforeEach(() => {
  rdsMock.reset();
});

afterAll(async () => {
  const admin = new pg.Client({ connectionString: adminUrl() });
  await admin.connect();
  try {
    for (const { name, db } of created) {
      await db.destroy();
      if (name) await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    }
  } finally {
    await admin.end();
  }
});

describe('the deploy-time migration custom resource', () => {
  it('completes at once, without RDS, when nothing is pending', async () => {
    const db = testDatabase(1);
    created.push({ name: '', db });

    const started = await onMigrationEvent(event('Update'), deps(db));
    const complete = await isMigrationComplete({ ...event('Update'), ...started }, deps(db));

    expect(started).toMatchObject({ MigrationState: 'done', Outcome: 'up_to_date' });
    expect(complete).toEqual({ IsComplete: true, Data: { Outcome: 'up_to_date' } });
    expect(rdsMock.calls()).toHaveLength(0);
  });

  it('starts a snapshot, waits while it is creating, and migrates once it is available', async () => {
    const db = await blankDatabase();
    const pendingBefore = await pendingMigrations(db);
    instanceStatus('available');
    let status = 'creating';
    snapshots([], () => status);

    const started = await onMigrationEvent(event('Create'), deps(db));
    const polled = { ...event('Create'), ...started };
    const whileCreating = await isMigrationComplete(polled, deps(db));
    const pendingWhileCreating = await pendingMigrations(db);
    status = 'available';
    const onceAvailable = await isMigrationComplete(polled, deps(db));

    expect(pendingBefore).toEqual(MIGRATION_NAMES);
    expect(started).toMatchObject({
      PhysicalResourceId: 'schema-migrations',
      MigrationState: 'snapshot',
      SnapshotIdentifier: SNAPSHOT,
      Pending: pendingBefore,
    });
    const creates = rdsMock.commandCalls(CreateDBSnapshotCommand);
    expect(creates).toHaveLength(1);
    expect(creates[0]?.args[0].input).toMatchObject({
      DBInstanceIdentifier: INSTANCE,
      DBSnapshotIdentifier: SNAPSHOT,
    });
    expect(whileCreating).toEqual({ IsComplete: false });
    expect(pendingWhileCreating).toEqual(pendingBefore);
    expect(onceAvailable).toEqual({
      IsComplete: true,
      Data: {
        Outcome: 'migrated',
        Applied: pendingBefore.join(' '),
        SnapshotIdentifier: SNAPSHOT,
      },
    });
    expect(await pendingMigrations(db)).toEqual([]);
  });

  it('reuses a snapshot an earlier attempt left creating instead of starting another', async () => {
    const db = await blankDatabase();
    const earlier = 'whatsapp-notif-test-pre-migration-20261122-221000';
    instanceStatus('available');
    snapshots(
      [
        { id: 'whatsapp-notif-test-pre-migration-20261001-101010', status: 'available' },
        { id: earlier, status: 'creating' },
        { id: 'someone-elses-snapshot', status: 'creating' },
      ],
      () => 'creating',
    );

    const started = await onMigrationEvent(event('Update'), deps(db));

    expect(started).toMatchObject({ MigrationState: 'snapshot', SnapshotIdentifier: earlier });
    expect(rdsMock.commandCalls(CreateDBSnapshotCommand)).toHaveLength(0);
  });

  it('waits for a busy instance and takes the snapshot from isComplete once it is available', async () => {
    const db = await blankDatabase();
    instanceStatus('backing-up');
    let snapshotStarted = false;
    snapshots([], () => (snapshotStarted ? 'creating' : ''));

    const started = await onMigrationEvent(event('Create'), deps(db));
    const busy = await isMigrationComplete({ ...event('Create'), ...started }, deps(db));
    const createsWhileBusy = rdsMock.commandCalls(CreateDBSnapshotCommand).length;
    instanceStatus('available');
    const free = await isMigrationComplete({ ...event('Create'), ...started }, deps(db));
    snapshotStarted = true;

    expect({ busy, free, createsWhileBusy }).toEqual({
      busy: { IsComplete: false },
      free: { IsComplete: false },
      createsWhileBusy: 0,
    });
    expect(rdsMock.commandCalls(CreateDBSnapshotCommand)).toHaveLength(1);
  });

  it('fails and applies nothing when the snapshot fails', async () => {
    const db = await blankDatabase();
    const pendingBefore = await pendingMigrations(db);
    instanceStatus('available');
    snapshots([], () => 'failed');

    const started = await onMigrationEvent(event('Create'), deps(db));
    const complete = isMigrationComplete({ ...event('Create'), ...started }, deps(db));

    await expect(complete).rejects.toBeInstanceOf(SnapshotFailedError);
    expect(await pendingMigrations(db)).toEqual(pendingBefore);
  });

  it('succeeds on a rollback to an older migration without touching RDS or the unreachable database', async () => {
    const opened = { count: 0 };
    const db = unreachableDatabase();
    const older = MIGRATION_NAMES.at(-2)!;

    const started = await onMigrationEvent(event('Update', older), deps(db, opened));
    const complete = await isMigrationComplete(
      { ...event('Update', older), ...started },
      deps(db, opened),
    );

    expect(started).toMatchObject({ MigrationState: 'done', Outcome: 'skipped' });
    expect(complete).toEqual({ IsComplete: true, Data: { Outcome: 'skipped' } });
    expect(opened.count).toBe(0);
    expect(rdsMock.calls()).toHaveLength(0);
  });

  it('succeeds on a delete without touching RDS or the unreachable database', async () => {
    const opened = { count: 0 };
    const db = unreachableDatabase();

    const started = await onMigrationEvent(event('Delete'), deps(db, opened));
    const complete = await isMigrationComplete(
      { ...event('Delete'), ...started },
      deps(db, opened),
    );

    expect(started).toMatchObject({ PhysicalResourceId: 'schema-migrations', Outcome: 'skipped' });
    expect(complete).toEqual({ IsComplete: true, Data: { Outcome: 'skipped' } });
    expect(opened.count).toBe(0);
    expect(rdsMock.calls()).toHaveLength(0);
  });

  it('fails a deploy that names a migration the function does not know, before any connection', async () => {
    const opened = { count: 0 };

    const started = onMigrationEvent(
      event('Update', '9999_from_the_future'),
      deps(unreachableDatabase(), opened),
    );

    await expect(started).rejects.toThrow(/does not know migration 9999_from_the_future/);
    expect(opened.count).toBe(0);
  });

  it('gives up on an unreachable database without touching RDS', async () => {
    const started = onMigrationEvent(event('Update'), deps(unreachableDatabase()));

    await expect(started).rejects.toThrow(/ECONNREFUSED|connect/);
    expect(rdsMock.calls()).toHaveLength(0);
  });

  it('is the migrate function: onEvent without a state, isComplete with the state onEvent returned', async () => {
    process.env.DB_INSTANCE_IDENTIFIER = INSTANCE;
    try {
      const started = await handler(event('Delete'));
      const complete = await handler({ ...event('Delete'), ...started });

      expect(started).toMatchObject({ MigrationState: 'done', Outcome: 'skipped' });
      expect(complete).toEqual({ IsComplete: true, Data: { Outcome: 'skipped' } });
      await expect(handler({ action: 'something-else' })).rejects.toThrow(/create-admin-key/);
    } finally {
      delete process.env.DB_INSTANCE_IDENTIFIER;
    }
  });
});
