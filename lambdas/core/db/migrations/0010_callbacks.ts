/**
 * Client callbacks: endpoints a client registers, an outbox of client events written by the
 * database itself in the same transaction as the status change, one delivery per event and
 * endpoint, and every attempt to post it. Also the two fallback columns the fallback code sets
 * (its trigger event is emitted here, so every path that sets them is covered).
 *
 * Why triggers: every code path that moves a notification (API accept, worker, webhook, scheduler,
 * cancel, an operator's SQL) then emits its event with no extra round trip and cannot forget to.
 * INSERT events come from an AFTER trigger because `insert ... on conflict do nothing` (an
 * idempotent replay) fires BEFORE INSERT triggers for rows it then discards; UPDATE events come
 * from a BEFORE trigger, which can bump the notification's own event sequence in the same write.
 */
import { type Kysely, sql } from 'kysely';

type Privilege = 'SELECT' | 'INSERT' | 'UPDATE' | 'DELETE';

/** Role → table → privileges (see 0004 for the roles; notif_dispatcher is new here). */
const GRANTS: Record<string, Record<string, Privilege[]>> = {
  // The admin and client routes manage endpoints and read deliveries; accepting a notification
  // fires the trigger, which writes events and deliveries with the privileges of the caller.
  notif_api: {
    callback_endpoints: ['SELECT', 'INSERT', 'UPDATE', 'DELETE'],
    callback_events: ['SELECT', 'INSERT'],
    callback_deliveries: ['SELECT', 'INSERT', 'UPDATE'],
    callback_attempts: ['SELECT'],
  },
  notif_webhook: {
    callback_endpoints: ['SELECT'],
    callback_events: ['INSERT'],
    callback_deliveries: ['INSERT'],
  },
  notif_worker: {
    callback_endpoints: ['SELECT'],
    callback_events: ['INSERT'],
    callback_deliveries: ['INSERT'],
  },
  notif_scheduler: {
    callback_endpoints: ['SELECT'],
    callback_events: ['INSERT'],
    callback_deliveries: ['INSERT'],
  },
  // Claims due deliveries, posts them, records attempts, disables failing endpoints, publishes to
  // EventBridge and prunes what is done.
  notif_dispatcher: {
    callback_endpoints: ['SELECT', 'UPDATE'],
    callback_events: ['SELECT', 'UPDATE', 'DELETE'],
    callback_deliveries: ['SELECT', 'UPDATE', 'DELETE'],
    callback_attempts: ['SELECT', 'INSERT', 'DELETE'],
    audit_log: ['INSERT'],
  },
};

const IDENTITY_COLUMNS: [table: string, column: string][] = [
  ['callback_attempts', 'id'],
  ['audit_log', 'id'],
];

/** The statuses that are the service's own retry mechanics, not news for a client. */
const INTERNAL_STATUSES = sql.raw(`'queued', 'sending'`);

// biome-ignore lint/suspicious/noExplicitAny: a migration must not depend on today's schema types
export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table notifications
    add column event_sequence integer not null default 1,
    add column fallback_required_at timestamptz null,
    add column fallback_reason text null`.execute(db);

  await db.schema
    .createTable('callback_endpoints')
    .addColumn('id', 'uuid', (c) => c.primaryKey())
    .addColumn('client_id', 'uuid', (c) =>
      c.notNull().references('api_clients.id').onDelete('cascade'),
    )
    .addColumn('url', 'text', (c) => c.notNull())
    // Null: every event type.
    .addColumn('event_types', sql`text[]`)
    // Kept in the clear: signing needs the secret itself (a hash would not do).
    .addColumn('secret', 'text', (c) => c.notNull())
    .addColumn('previous_secret', 'text')
    .addColumn('previous_secret_expires_at', 'timestamptz')
    .addColumn('consecutive_failures', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('failing_since', 'timestamptz')
    .addColumn('disabled_at', 'timestamptz')
    .addColumn('disabled_reason', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema
    .createIndex('callback_endpoints_client_idx')
    .on('callback_endpoints')
    .column('client_id')
    .execute();

  await db.schema
    .createTable('callback_events')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('notification_id', 'uuid', (c) =>
      c.notNull().references('notifications.id').onDelete('cascade'),
    )
    .addColumn('client_id', 'uuid', (c) => c.notNull())
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('sequence', 'integer', (c) => c.notNull())
    .addColumn('previous_status', 'text')
    .addColumn('reason', 'text')
    // The row as it was at the event (minus the stored idempotent answer); the dispatcher masks
    // the recipient when it builds the body, exactly as GET does.
    .addColumn('snapshot', 'jsonb', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    // EventBridge (AWS only): null until put on the bus.
    .addColumn('published_at', 'timestamptz')
    .addUniqueConstraint('callback_events_notification_sequence', [
      'notification_id',
      'sequence',
      'type',
    ])
    .execute();
  await sql`create index callback_events_unpublished_idx on callback_events (created_at) where published_at is null`.execute(
    db,
  );
  await db.schema
    .createIndex('callback_events_created_idx')
    .on('callback_events')
    .column('created_at')
    .execute();

  await db.schema
    .createTable('callback_deliveries')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('event_id', 'uuid', (c) =>
      c.notNull().references('callback_events.id').onDelete('cascade'),
    )
    .addColumn('endpoint_id', 'uuid', (c) =>
      c.notNull().references('callback_endpoints.id').onDelete('cascade'),
    )
    .addColumn('notification_id', 'uuid', (c) => c.notNull())
    .addColumn('sequence', 'integer', (c) => c.notNull())
    .addColumn('status', 'text', (c) =>
      c.notNull().defaultTo('pending').check(sql`status in ('pending', 'delivered', 'failed')`),
    )
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    // Also the claim's lease: a claimed row is pushed into the future, so a dispatcher killed
    // mid-post leaves it due again once the lease runs out, and nothing is lost.
    .addColumn('next_attempt_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('last_status_code', 'integer')
    .addColumn('last_error', 'text')
    .addColumn('delivered_at', 'timestamptz')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addUniqueConstraint('callback_deliveries_event_endpoint', ['event_id', 'endpoint_id'])
    .execute();
  // The dispatcher's claim reads only what is due.
  await sql`create index callback_deliveries_due_idx on callback_deliveries (next_attempt_at) where status = 'pending'`.execute(
    db,
  );
  await db.schema
    .createIndex('callback_deliveries_notification_idx')
    .on('callback_deliveries')
    .columns(['notification_id', 'sequence'])
    .execute();

  await db.schema
    .createTable('callback_attempts')
    .addColumn('id', 'bigint', (c) => c.primaryKey().generatedAlwaysAsIdentity())
    .addColumn('delivery_id', 'uuid', (c) =>
      c.notNull().references('callback_deliveries.id').onDelete('cascade'),
    )
    .addColumn('at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('status_code', 'integer')
    .addColumn('latency_ms', 'integer', (c) => c.notNull())
    .addColumn('error', 'text')
    .execute();
  await db.schema
    .createIndex('callback_attempts_delivery_idx')
    .on('callback_attempts')
    .columns(['delivery_id', 'id'])
    .execute();

  // One event: the outbox row plus a delivery per enabled endpoint of the client that wants it.
  await sql`
    create function emit_callback_event(n notifications, event_type text, previous text, why text)
    returns void language plpgsql as $$
    declare
      event_id uuid;
    begin
      -- Generated here rather than returned, so the roles that only write events need no SELECT.
      event_id := gen_random_uuid();
      insert into callback_events (id, notification_id, client_id, type, sequence, previous_status, reason, snapshot)
      values (event_id, n.id, n.client_id, event_type, n.event_sequence, previous, why,
              to_jsonb(n) - 'response' - 'request_hash');
      insert into callback_deliveries (event_id, endpoint_id, notification_id, sequence)
      select event_id, e.id, n.id, n.event_sequence
      from callback_endpoints e
      where e.client_id = n.client_id
        and e.disabled_at is null
        and (e.event_types is null or event_type = any (e.event_types));
    end
    $$`.execute(db);

  await sql`
    create function record_callback_insert() returns trigger language plpgsql as $$
    begin
      if new.status not in (${INTERNAL_STATUSES}) then
        perform emit_callback_event(new, 'notification.' || new.status, null, new.status_reason);
      end if;
      return null;
    end
    $$`.execute(db);
  await sql`
    create trigger notifications_outbox_insert
    after insert on notifications
    for each row execute function record_callback_insert()`.execute(db);

  // Each event gets the next sequence number of its notification, written into the row being
  // updated: no extra statement, and the row lock the update holds orders concurrent writers.
  // PostgreSQL fires BEFORE triggers in the order of their names: `notifications_outbox_update`
  // comes after `notifications_fallback_on_failed` (0011), which marks a failed row's fallback in
  // the same update, so that mark is seen here and its event emitted.
  await sql`
    create function record_callback_update() returns trigger language plpgsql as $$
    begin
      if old.status is distinct from new.status and new.status not in (${INTERNAL_STATUSES}) then
        new.event_sequence := old.event_sequence + 1;
        perform emit_callback_event(new, 'notification.' || new.status, old.status, new.status_reason);
      end if;
      if old.fallback_required_at is null and new.fallback_required_at is not null then
        new.event_sequence := new.event_sequence + 1;
        perform emit_callback_event(new, 'notification.fallback_required', old.status, new.fallback_reason);
      end if;
      return new;
    end
    $$`.execute(db);
  await sql`
    create trigger notifications_outbox_update
    before update of status, fallback_required_at on notifications
    for each row execute function record_callback_update()`.execute(db);

  await sql`
    do $$ begin
      if not exists (select 1 from pg_roles where rolname = 'notif_dispatcher') then
        create role notif_dispatcher login;
      end if;
      if exists (select 1 from pg_roles where rolname = 'rds_iam') then
        grant rds_iam to notif_dispatcher;
      end if;
    end $$`.execute(db);
  const { rows } = await sql<{ name: string }>`select current_database() as name`.execute(db);
  await sql`grant connect on database ${sql.id(rows[0]!.name)} to notif_dispatcher`.execute(db);
  await sql`grant usage on schema public to notif_dispatcher`.execute(db);
  for (const [role, tables] of Object.entries(GRANTS)) {
    for (const [table, privileges] of Object.entries(tables)) {
      await sql`grant ${sql.raw(privileges.join(', '))} on table ${sql.id(table)} to ${sql.id(role)}`.execute(
        db,
      );
      if (!privileges.includes('INSERT')) continue;
      for (const [identityTable, column] of IDENTITY_COLUMNS) {
        if (identityTable !== table) continue;
        await sql`
          do $$ begin
            execute format('grant usage on sequence %s to %I',
              pg_get_serial_sequence(${sql.lit(table)}, ${sql.lit(column)}), ${sql.lit(role)});
          end $$`.execute(db);
      }
    }
  }
}

// biome-ignore lint/suspicious/noExplicitAny: see up()
export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop trigger notifications_outbox_update on notifications`.execute(db);
  await sql`drop trigger notifications_outbox_insert on notifications`.execute(db);
  await sql`drop function record_callback_update()`.execute(db);
  await sql`drop function record_callback_insert()`.execute(db);
  await sql`drop function emit_callback_event(notifications, text, text, text)`.execute(db);
  await db.schema.dropTable('callback_attempts').execute();
  await db.schema.dropTable('callback_deliveries').execute();
  await db.schema.dropTable('callback_events').execute();
  await db.schema.dropTable('callback_endpoints').execute();
  await sql`alter table notifications
    drop column fallback_reason,
    drop column fallback_required_at,
    drop column event_sequence`.execute(db);
  const { rows } = await sql<{ name: string }>`select current_database() as name`.execute(db);
  await sql`revoke all on all tables in schema public from notif_dispatcher`.execute(db);
  await sql`revoke all on all sequences in schema public from notif_dispatcher`.execute(db);
  await sql`revoke usage on schema public from notif_dispatcher`.execute(db);
  await sql`revoke connect on database ${sql.id(rows[0]!.name)} from notif_dispatcher`.execute(db);
  await sql`
    do $$ begin
      drop role if exists notif_dispatcher;
    exception when dependent_objects_still_exist then
      raise notice 'role notif_dispatcher is still used by another database; kept';
    end $$`.execute(db);
}
