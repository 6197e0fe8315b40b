/**
 * Where the webhook keeps what it does not apply to a notification: items it could not read
 * (`webhook_rejects`, raw, for an operator to look at for a few days) and account, template and
 * number events Meta sends on fields other than `messages` (`whatsapp_events`). Grants follow
 * 0004: the webhook writes both, the scheduler prunes them, the api's admin routes read them.
 */
import { type Kysely, sql } from 'kysely';

const GRANTS: [role: string, table: string, privileges: string][] = [
  ['notif_webhook', 'webhook_rejects', 'INSERT'],
  ['notif_webhook', 'whatsapp_events', 'INSERT'],
  // DELETE ... WHERE received_at < x reads the column, so SELECT too.
  ['notif_scheduler', 'webhook_rejects', 'SELECT, DELETE'],
  ['notif_scheduler', 'whatsapp_events', 'SELECT, DELETE'],
  ['notif_api', 'webhook_rejects', 'SELECT'],
  ['notif_api', 'whatsapp_events', 'SELECT'],
];

// biome-ignore lint/suspicious/noExplicitAny: a migration must not depend on today's schema types
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('webhook_rejects')
    .addColumn('id', 'bigint', (c) => c.primaryKey().generatedAlwaysAsIdentity())
    .addColumn('received_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    // The webhook field (`messages`, ...) and what in it was refused (`status`, `message`, `value`).
    .addColumn('field', 'text', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('reason', 'text', (c) => c.notNull())
    // As Meta sent it, phone numbers included: for the operator only, never logged.
    .addColumn('raw', 'jsonb', (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex('webhook_rejects_received_at')
    .on('webhook_rejects')
    .column('received_at')
    .execute();
  await db.schema
    .createTable('whatsapp_events')
    .addColumn('id', 'bigint', (c) => c.primaryKey().generatedAlwaysAsIdentity())
    .addColumn('received_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('field', 'text', (c) => c.notNull())
    .addColumn('event', 'text', (c) => c.notNull())
    .addColumn('waba_id', 'text')
    // The value without phone numbers (see redactEventPayload).
    .addColumn('payload', 'jsonb', (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex('whatsapp_events_received_at')
    .on('whatsapp_events')
    .column('received_at')
    .execute();
  // Roles exist once 0004 ran; a database restored without them (none here) would fail loudly.
  for (const [role, table, privileges] of GRANTS) {
    await sql`grant ${sql.raw(privileges)} on table ${sql.id(table)} to ${sql.id(role)}`.execute(
      db,
    );
    if (privileges.includes('INSERT')) {
      await sql`
        do $$ begin
          execute format('grant usage on sequence %s to %I',
            pg_get_serial_sequence(${sql.lit(table)}, 'id'), ${sql.lit(role)});
        end $$`.execute(db);
    }
  }
}

// biome-ignore lint/suspicious/noExplicitAny: see up()
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('whatsapp_events').execute();
  await db.schema.dropTable('webhook_rejects').execute();
}
