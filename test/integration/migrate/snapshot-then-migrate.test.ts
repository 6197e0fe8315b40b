import {
  CreateDBSnapshotCommand,
  DescribeDBInstancesCommand,
  DescribeDBSnapshotsCommand,
  RDSClient,
} from '@aws-sdk/client-rds';
import { mockClient } from 'aws-sdk-client-mock';
import { type Kysely, sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { createDatabase } from '../../../lambdas/core/db/connect.ts';
import { MigrationFailedError, pendingMigrations } from '../../../lambdas/core/db/migrate.ts';
import type { Database } from '../../../lambdas/core/db/schema.ts';
import {
  SnapshotFailedError,
  snapshotThenMigrate,
} from '../../../lambdas/migrate/snapshot-then-migrate.ts';
import { testDatabase } from '../../support/database.ts';

const INSTANCE = 'whatsapp-notif-test';
const NOW = new Date('2026-11-22T23:35:01.250Z');
const SNAPSHOT = 'whatsapp-notif-test-pre-migration-20261122-233501';
/** Fast polling: the waiters retry in milliseconds instead of tens of seconds. */
const FAST_WAIT = { maxWaitSeconds: 5, minDelaySeconds: 0.01, maxDelaySeconds: 0.02 };

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

function instanceAvailable() {
  rdsMock
    .on(DescribeDBInstancesCommand)
    .resolves({ DBInstances: [{ DBInstanceIdentifier: INSTANCE, DBInstanceStatus: 'available' }] });
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
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    }
  } finally {
    await admin.end();
  }
});

describe('snapshotThenMigrate', () => {
  it('snapshots the instance and waits for the snapshot before migrating a database with pending migrations', async () => {
    const db = await blankDatabase();
    const pendingBefore = await pendingMigrations(db);
    instanceAvailable();
    const pendingWhilePolling: number[] = [];
    let polls = 0;
    rdsMock.on(DescribeDBSnapshotsCommand).callsFake(async () => {
      pendingWhilePolling.push((await pendingMigrations(db)).length);
      polls += 1;
      const status = polls < 2 ? 'creating' : 'available';
      return { DBSnapshots: [{ DBSnapshotIdentifier: SNAPSHOT, Status: status }] };
    });

    const run = await snapshotThenMigrate({
      db,
      rds,
      instanceIdentifier: INSTANCE,
      now: () => NOW,
      wait: FAST_WAIT,
    });

    expect(pendingBefore.length).toBeGreaterThan(0);
    expect(run).toEqual({
      outcome: 'migrated',
      pending: pendingBefore,
      applied: pendingBefore,
      snapshotIdentifier: SNAPSHOT,
    });
    const snapshotCalls = rdsMock.commandCalls(CreateDBSnapshotCommand);
    expect(snapshotCalls).toHaveLength(1);
    expect(snapshotCalls[0]?.args[0].input).toMatchObject({
      DBInstanceIdentifier: INSTANCE,
      DBSnapshotIdentifier: SNAPSHOT,
    });
    // Polled until available, and nothing was migrated while the snapshot was being taken.
    expect(rdsMock.commandCalls(DescribeDBSnapshotsCommand)).toHaveLength(2);
    expect(pendingWhilePolling).toEqual([pendingBefore.length, pendingBefore.length]);
    expect(await pendingMigrations(db)).toEqual([]);
  });

  it('neither snapshots nor migrates when nothing is pending', async () => {
    const db = testDatabase(1);
    try {
      const run = await snapshotThenMigrate({
        db,
        rds,
        instanceIdentifier: INSTANCE,
        now: () => NOW,
        wait: FAST_WAIT,
      });

      expect(run).toEqual({
        outcome: 'up_to_date',
        pending: [],
        applied: [],
        snapshotIdentifier: null,
      });
      expect(rdsMock.calls()).toHaveLength(0);
    } finally {
      await db.destroy();
    }
  });

  it('surfaces a failed migration, after the snapshot was taken', async () => {
    const db = await blankDatabase();
    // A table the first migration creates already exists, so that migration fails.
    await sql`CREATE TABLE api_clients (id integer)`.execute(db);
    instanceAvailable();
    rdsMock
      .on(DescribeDBSnapshotsCommand)
      .resolves({ DBSnapshots: [{ DBSnapshotIdentifier: SNAPSHOT, Status: 'available' }] });

    const run = snapshotThenMigrate({
      db,
      rds,
      instanceIdentifier: INSTANCE,
      now: () => NOW,
      wait: FAST_WAIT,
    });

    await expect(run).rejects.toBeInstanceOf(MigrationFailedError);
    expect(rdsMock.commandCalls(CreateDBSnapshotCommand)).toHaveLength(1);
    expect((await pendingMigrations(db)).length).toBeGreaterThan(0);
  });

  it('gives up on an unreachable database without touching RDS', async () => {
    // Port 9 on loopback: nothing listens, so every connection is refused at once.
    const db = createDatabase({
      DATABASE_URL: 'postgres://nobody@127.0.0.1:9/nothing',
      DB_POOL_MAX: 1,
      DB_PORT: 9,
      DB_NAME: 'nothing',
      DB_IAM_AUTH: false,
    });
    try {
      const run = snapshotThenMigrate({
        db,
        rds,
        instanceIdentifier: INSTANCE,
        now: () => NOW,
        wait: FAST_WAIT,
        connect: { timeoutMs: 200, delayMs: 20 },
      });

      await expect(run).rejects.toThrow(/ECONNREFUSED|connect/);
      expect(rdsMock.calls()).toHaveLength(0);
    } finally {
      await db.destroy();
    }
  });

  it('applies no migration when the snapshot fails', async () => {
    const db = await blankDatabase();
    const pendingBefore = await pendingMigrations(db);
    instanceAvailable();
    rdsMock
      .on(DescribeDBSnapshotsCommand)
      .resolves({ DBSnapshots: [{ DBSnapshotIdentifier: SNAPSHOT, Status: 'failed' }] });

    const run = snapshotThenMigrate({
      db,
      rds,
      instanceIdentifier: INSTANCE,
      now: () => NOW,
      wait: FAST_WAIT,
    });

    await expect(run).rejects.toBeInstanceOf(SnapshotFailedError);
    expect(await pendingMigrations(db)).toEqual(pendingBefore);
  });
});
