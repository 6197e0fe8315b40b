/** The first schema: API clients and keys, notifications with their event history, opt-outs, audit. */
import { type Kysely, sql } from 'kysely';

// Migrations are frozen in time: they use Kysely<any> and import nothing from the application.
// biome-ignore lint/suspicious/noExplicitAny: a migration must not depend on today's schema types
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('api_clients')
    .addColumn('id', 'uuid', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();

  await db.schema
    .createTable('api_keys')
    .addColumn('id', 'uuid', (c) => c.primaryKey())
    .addColumn('client_id', 'uuid', (c) => c.notNull().references('api_clients.id'))
    .addColumn('prefix', 'text', (c) => c.notNull().unique())
    .addColumn('key_hash', 'text', (c) => c.notNull())
    .addColumn('scopes', sql`text[]`, (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('revoked_at', 'timestamptz')
    .addColumn('last_used_at', 'timestamptz')
    .execute();
  await db.schema.createIndex('api_keys_client_idx').on('api_keys').column('client_id').execute();

  await db.schema
    .createTable('notifications')
    .addColumn('id', 'uuid', (c) => c.primaryKey())
    .addColumn('client_id', 'uuid', (c) => c.notNull().references('api_clients.id'))
    .addColumn('idempotency_key', 'text')
    .addColumn('request_hash', 'text')
    .addColumn('response', 'jsonb')
    .addColumn('request_id', 'text', (c) => c.notNull())
    .addColumn('recipient', 'text', (c) => c.notNull())
    .addColumn('sender_id', 'text')
    .addColumn('priority', 'text', (c) => c.notNull().check(sql`priority in ('high', 'bulk')`))
    .addColumn('message_type', 'text', (c) =>
      c.notNull().check(sql`message_type in ('template', 'text')`),
    )
    .addColumn('message', 'jsonb', (c) => c.notNull())
    .addColumn('metadata', 'jsonb')
    .addColumn('status', 'text', (c) =>
      c
        .notNull()
        .check(
          sql`status in ('scheduled', 'accepted', 'queued', 'sending', 'sent', 'delivered', 'read', 'failed', 'skipped', 'deferred')`,
        ),
    )
    .addColumn('status_reason', 'text')
    .addColumn('send_at', 'timestamptz')
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('wamid', 'text', (c) => c.unique())
    .addColumn('error_class', 'text')
    .addColumn('error_code', 'integer')
    .addColumn('error_message', 'text')
    .addColumn('next_attempt_at', 'timestamptz')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('queued_at', 'timestamptz')
    .addColumn('sent_at', 'timestamptz')
    .addColumn('delivered_at', 'timestamptz')
    .addColumn('read_at', 'timestamptz')
    .addColumn('failed_at', 'timestamptz')
    // One Idempotency-Key per client; rows without a key are not constrained (NULLs are distinct).
    .addUniqueConstraint('notifications_client_idempotency_key', ['client_id', 'idempotency_key'])
    .execute();
  // Per-recipient history: pair-rate spacing and the rate limiter look recipients up by number.
  await db.schema
    .createIndex('notifications_recipient_idx')
    .on('notifications')
    .columns(['recipient', 'created_at'])
    .execute();
  await db.schema
    .createIndex('notifications_client_created_idx')
    .on('notifications')
    .columns(['client_id', 'created_at'])
    .execute();
  await db.schema
    .createIndex('notifications_created_idx')
    .on('notifications')
    .column('created_at')
    .execute();
  // The scheduler's sweeps each read one small slice of the table; partial indexes keep them cheap
  // however many delivered rows pile up.
  await db.schema
    .createIndex('notifications_due_idx')
    .on('notifications')
    .column('send_at')
    .where(sql.ref('status'), '=', 'scheduled')
    .execute();
  await db.schema
    .createIndex('notifications_accepted_idx')
    .on('notifications')
    .column('created_at')
    .where(sql.ref('status'), '=', 'accepted')
    .execute();
  await db.schema
    .createIndex('notifications_deferred_idx')
    .on('notifications')
    .column('next_attempt_at')
    .where(sql.ref('status'), '=', 'deferred')
    .execute();

  await db.schema
    .createTable('notification_events')
    .addColumn('id', 'bigint', (c) => c.primaryKey().generatedAlwaysAsIdentity())
    .addColumn('notification_id', 'uuid', (c) =>
      c.notNull().references('notifications.id').onDelete('cascade'),
    )
    .addColumn('from_status', 'text')
    .addColumn('to_status', 'text', (c) => c.notNull())
    .addColumn('error_class', 'text')
    .addColumn('error_code', 'integer')
    .addColumn('attempt', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema
    .createIndex('notification_events_notification_idx')
    .on('notification_events')
    .columns(['notification_id', 'id'])
    .execute();

  // Every status transition is recorded by the database itself, so no code path (worker, webhook,
  // scheduler, operator) can move a row without leaving its event behind, and it costs no extra
  // round trip.
  await sql`
    create function record_notification_transition() returns trigger language plpgsql as $$
    begin
      if tg_op = 'INSERT' or old.status is distinct from new.status then
        insert into notification_events (notification_id, from_status, to_status, error_class, error_code, attempt)
        values (
          new.id,
          case when tg_op = 'INSERT' then null else old.status end,
          new.status,
          -- The error belongs to the transition it caused (a failure, a retry, a deferral), not to
          -- a later success that leaves the last error on the row for clients to see.
          case when new.status in ('failed', 'queued', 'deferred') then new.error_class end,
          case when new.status in ('failed', 'queued', 'deferred') then new.error_code end,
          new.attempts
        );
      end if;
      return null;
    end
    $$`.execute(db);
  await sql`
    create trigger notifications_record_transition
    after insert or update of status on notifications
    for each row execute function record_notification_transition()`.execute(db);

  await db.schema
    .createTable('opt_outs')
    .addColumn('recipient', 'text', (c) => c.primaryKey())
    .addColumn('source', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();

  await db.schema
    .createTable('audit_log')
    .addColumn('id', 'bigint', (c) => c.primaryKey().generatedAlwaysAsIdentity())
    .addColumn('at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('actor', 'text', (c) => c.notNull())
    .addColumn('action', 'text', (c) => c.notNull())
    .addColumn('outcome', 'text', (c) => c.notNull())
    .addColumn('request_id', 'text')
    .addColumn('source_ip', 'text')
    .addColumn('detail', 'jsonb')
    .execute();
  await db.schema.createIndex('audit_log_at_idx').on('audit_log').column('at').execute();

  await db.schema
    .createTable('pending_statuses')
    .addColumn('wamid', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('occurred_at', 'timestamptz', (c) => c.notNull())
    .addColumn('error_code', 'integer')
    .addColumn('error_title', 'text')
    .addColumn('received_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('pending_statuses_pk', ['wamid', 'status'])
    .execute();
}

// biome-ignore lint/suspicious/noExplicitAny: see up()
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('pending_statuses').execute();
  await db.schema.dropTable('audit_log').execute();
  await db.schema.dropTable('opt_outs').execute();
  await db.schema.dropTable('notification_events').execute();
  await sql`drop function record_notification_transition() cascade`.execute(db);
  await db.schema.dropTable('notifications').execute();
  await db.schema.dropTable('api_keys').execute();
  await db.schema.dropTable('api_clients').execute();
}
