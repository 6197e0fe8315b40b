/**
 * Consent that cannot be replayed and reaches users known only by a business-scoped user id
 * (BSUID): opt-outs get a scope (all | marketing) and a Meta time, a clock per recipient and scope
 * remembers the newest consent change (a START leaves no opt-out row, so the time must live
 * elsewhere), seen inbound message ids stop a redelivered or re-posted message from acting twice,
 * and recipient_ids links a phone number to the BSUID Meta reports for it.
 */
import { type Kysely, sql } from 'kysely';

type Privilege = 'SELECT' | 'INSERT' | 'UPDATE' | 'DELETE';

/** Role → table → privileges this migration's code paths need (see 0004 for the roles). */
const GRANTS: Record<string, Record<string, Privilege[]>> = {
  // GET /v1/admin/recipients/opt-outs reads them (read only: consent is the webhook's to change).
  notif_api: {
    opt_outs: ['SELECT'],
    recipient_ids: ['SELECT'],
  },
  // Keyword STOP/START, user_preferences, changed-number system messages, 131050 statuses.
  notif_webhook: {
    opt_outs: ['SELECT', 'INSERT', 'UPDATE', 'DELETE'],
    consent_clock: ['SELECT', 'INSERT', 'UPDATE'],
    inbound_seen: ['SELECT', 'INSERT', 'DELETE'],
    recipient_ids: ['SELECT', 'INSERT', 'UPDATE'],
  },
  // 131050 on a send answer (a marketing opt-out) and the opt-out check, which reads BSUIDs.
  notif_worker: {
    opt_outs: ['SELECT', 'INSERT', 'UPDATE'],
    consent_clock: ['SELECT', 'INSERT', 'UPDATE'],
    recipient_ids: ['SELECT'],
  },
  // Pending 131050 statuses it applies.
  notif_scheduler: {
    opt_outs: ['SELECT', 'INSERT', 'UPDATE'],
    consent_clock: ['SELECT', 'INSERT', 'UPDATE'],
    recipient_ids: ['SELECT'],
  },
};

// biome-ignore lint/suspicious/noExplicitAny: a migration must not depend on today's schema types
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable('opt_outs')
    .addColumn('scope', 'text', (c) => c.notNull().defaultTo('all'))
    .execute();
  await db.schema
    .alterTable('opt_outs')
    .addColumn('changed_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  // Meta's 131050 only ever meant "no marketing templates"; earlier rows were recorded too wide.
  await sql`update opt_outs set scope = 'marketing' where source = 'meta_131050'`.execute(db);
  await sql`update opt_outs set changed_at = created_at`.execute(db);
  await sql`alter table opt_outs drop constraint opt_outs_pkey`.execute(db);
  await sql`alter table opt_outs add constraint opt_outs_pkey primary key (recipient, scope)`.execute(
    db,
  );
  await sql`alter table opt_outs add constraint opt_outs_scope_check check (scope in ('all', 'marketing'))`.execute(
    db,
  );

  await db.schema
    .createTable('consent_clock')
    .addColumn('recipient', 'text', (c) => c.notNull())
    .addColumn('scope', 'text', (c) => c.notNull())
    .addColumn('changed_at', 'timestamptz', (c) => c.notNull())
    .addPrimaryKeyConstraint('consent_clock_pk', ['recipient', 'scope'])
    .execute();
  await sql`
    insert into consent_clock (recipient, scope, changed_at)
    select recipient, scope, changed_at from opt_outs`.execute(db);

  await db.schema
    .createTable('inbound_seen')
    .addColumn('message_id', 'text', (c) => c.primaryKey())
    .addColumn('seen_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema
    .createIndex('inbound_seen_seen_at_idx')
    .on('inbound_seen')
    .column('seen_at')
    .execute();

  await db.schema
    .createTable('recipient_ids')
    .addColumn('phone', 'text', (c) => c.primaryKey())
    .addColumn('bsuid', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema
    .createIndex('recipient_ids_bsuid_idx')
    .on('recipient_ids')
    .column('bsuid')
    .execute();

  for (const [role, tables] of Object.entries(GRANTS)) {
    for (const [table, privileges] of Object.entries(tables)) {
      await sql`grant ${sql.raw(privileges.join(', '))} on table ${sql.id(table)} to ${sql.id(role)}`.execute(
        db,
      );
    }
  }
}

// biome-ignore lint/suspicious/noExplicitAny: see up()
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('recipient_ids').execute();
  await db.schema.dropTable('inbound_seen').execute();
  await db.schema.dropTable('consent_clock').execute();
  // Back to one row per recipient: an 'all' opt-out wins over a marketing one.
  await sql`delete from opt_outs o where o.scope = 'marketing'
    and exists (select 1 from opt_outs a where a.recipient = o.recipient and a.scope = 'all')`.execute(
    db,
  );
  await sql`alter table opt_outs drop constraint opt_outs_scope_check`.execute(db);
  await sql`alter table opt_outs drop constraint opt_outs_pkey`.execute(db);
  await sql`alter table opt_outs add constraint opt_outs_pkey primary key (recipient)`.execute(db);
  await db.schema.alterTable('opt_outs').dropColumn('changed_at').execute();
  await db.schema.alterTable('opt_outs').dropColumn('scope').execute();
  await sql`revoke update on table opt_outs from notif_worker, notif_scheduler, notif_webhook`.execute(
    db,
  );
  await sql`revoke select on table opt_outs from notif_api`.execute(db);
}
