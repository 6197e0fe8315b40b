/**
 * The template registry: the WhatsApp Business Account's message templates as Meta lists them
 * (status, category, quality, what parameters each component needs), so a notification can be
 * checked at acceptance and again before its send without asking the Graph API. One row per
 * (WABA, name, language); a state row per WABA says when the list was last read whole. A
 * notification records the category its template had when it was sent.
 * Grants: the api reads (acceptance check, admin routes), the webhook and the scheduler write
 * (template webhooks; the periodic refresh), the worker reads (the check before the send).
 */
import { type Kysely, sql } from 'kysely';

const GRANTS: [role: string, table: string, privileges: string][] = [
  ['notif_api', 'message_templates', 'SELECT'],
  ['notif_api', 'template_registry_state', 'SELECT'],
  ['notif_webhook', 'message_templates', 'SELECT, INSERT, UPDATE'],
  ['notif_webhook', 'template_registry_state', 'SELECT, INSERT, UPDATE'],
  ['notif_scheduler', 'message_templates', 'SELECT, INSERT, UPDATE'],
  ['notif_scheduler', 'template_registry_state', 'SELECT, INSERT, UPDATE'],
  ['notif_worker', 'message_templates', 'SELECT'],
  ['notif_worker', 'template_registry_state', 'SELECT'],
];

// biome-ignore lint/suspicious/noExplicitAny: a migration must not depend on today's schema types
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('message_templates')
    .addColumn('waba_id', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    // As the Graph API writes it (en_US); webhooks write en-US and are normalised before they land.
    .addColumn('language', 'text', (c) => c.notNull())
    .addColumn('template_id', 'text')
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('category', 'text')
    .addColumn('quality', 'text')
    .addColumn('rejected_reason', 'text')
    // null: the components are not known yet (a webhook named a template the list has not shown).
    .addColumn('parameters', 'jsonb')
    .addColumn('header_params', 'integer')
    .addColumn('body_params', 'integer')
    .addColumn('button_params', 'integer')
    // Where the last change came from: `refresh` or the webhook field's name.
    .addColumn('source', 'text', (c) => c.notNull())
    .addColumn('last_seen_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('message_templates_pk', ['waba_id', 'name', 'language'])
    .execute();
  await db.schema
    .createTable('template_registry_state')
    .addColumn('waba_id', 'text', (c) => c.primaryKey())
    // Set by the first complete read of the list: until then acceptance does not check templates.
    .addColumn('filled_at', 'timestamptz')
    .addColumn('refreshed_at', 'timestamptz')
    .addColumn('attempted_at', 'timestamptz')
    .addColumn('last_error', 'text')
    // A webhook asks for a re-read (REINSTATED, UNARCHIVED: Meta says to read the status again).
    .addColumn('refresh_requested_at', 'timestamptz')
    .execute();
  await db.schema.alterTable('notifications').addColumn('template_category', 'text').execute();

  for (const [role, table, privileges] of GRANTS) {
    await sql`grant ${sql.raw(privileges)} on table ${sql.id(table)} to ${sql.id(role)}`.execute(
      db,
    );
  }
}

// biome-ignore lint/suspicious/noExplicitAny: see up()
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('notifications').dropColumn('template_category').execute();
  await db.schema.dropTable('template_registry_state').execute();
  await db.schema.dropTable('message_templates').execute();
}
