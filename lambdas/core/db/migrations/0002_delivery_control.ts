/** Delivery control: per-sender circuit and rate limits, rollout switches, recipient pacing, scheduler runs. */
import { type Kysely, sql } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: a migration must not depend on today's schema types
export async function up(db: Kysely<any>): Promise<void> {
  // One row per sending phone number: the circuit ("panic mode") and the token bucket live together
  // so the worker reads and updates both under one row lock.
  await db.schema
    .createTable('sender_state')
    .addColumn('sender_id', 'text', (c) => c.primaryKey())
    .addColumn('circuit', 'text', (c) =>
      c.notNull().defaultTo('closed').check(sql`circuit in ('closed', 'open')`),
    )
    .addColumn('opened_at', 'timestamptz')
    .addColumn('opened_by', 'text')
    .addColumn('open_reason', 'text')
    .addColumn('consecutive_failures', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('good_probes', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('last_probe_at', 'timestamptz')
    .addColumn('tokens', 'double precision', (c) => c.notNull().defaultTo(0))
    .addColumn('bucket_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('minute_start', 'timestamptz', (c) =>
      c.notNull().defaultTo(sql`date_trunc('minute', now())`),
    )
    .addColumn('minute_count', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('day_start', 'timestamptz', (c) =>
      c.notNull().defaultTo(sql`date_trunc('day', now())`),
    )
    .addColumn('day_count', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();

  await db.schema
    .createTable('rollout_settings')
    .addColumn('id', 'smallint', (c) => c.primaryKey().check(sql`id = 1`))
    .addColumn('delivery_enabled', 'boolean', (c) => c.notNull().defaultTo(true))
    .addColumn('dry_run', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('pilot_prefixes', sql`text[]`, (c) => c.notNull().defaultTo(sql`'{}'`))
    .addColumn('rate_per_second', 'integer', (c) => c.notNull().defaultTo(80))
    .addColumn('per_minute_cap', 'integer')
    .addColumn('daily_cap', 'integer')
    .addColumn('recipient_spacing_seconds', 'integer', (c) => c.notNull().defaultTo(6))
    .addColumn('drain_per_second', 'integer', (c) => c.notNull().defaultTo(10))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_by', 'text', (c) => c.notNull().defaultTo('migration'))
    .execute();
  await sql`insert into rollout_settings (id) values (1)`.execute(db);

  await db.schema
    .createTable('recipient_pacing')
    .addColumn('recipient', 'text', (c) => c.primaryKey())
    .addColumn('last_sent_at', 'timestamptz', (c) => c.notNull())
    .addColumn('notification_id', 'uuid')
    .execute();

  await db.schema
    .createTable('scheduler_runs')
    .addColumn('id', 'bigint', (c) => c.primaryKey().generatedAlwaysAsIdentity())
    .addColumn('started_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('finished_at', 'timestamptz')
    .addColumn('outcome', 'text', (c) => c.notNull())
    .addColumn('detail', 'jsonb')
    .execute();
  // Counts of things that are not status transitions (a redelivery that found its row already
  // sent, a message held back by the rate limiter), by hour, for the operators' 24 h view.
  await db.schema
    .createTable('delivery_tallies')
    .addColumn('hour', 'timestamptz', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('count', 'bigint', (c) => c.notNull().defaultTo(0))
    .addPrimaryKeyConstraint('delivery_tallies_pk', ['hour', 'kind'])
    .execute();
  await db.schema
    .createIndex('scheduler_runs_started_idx')
    .on('scheduler_runs')
    .column('started_at')
    .execute();
}

// biome-ignore lint/suspicious/noExplicitAny: see up()
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('delivery_tallies').execute();
  await db.schema.dropTable('scheduler_runs').execute();
  await db.schema.dropTable('recipient_pacing').execute();
  await db.schema.dropTable('rollout_settings').execute();
  await db.schema.dropTable('sender_state').execute();
}
