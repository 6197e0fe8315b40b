/**
 * What Meta says about the sending number (quality rating, messaging limit tier, throughput, the
 * account's standing), a hold on a circuit a person or a Meta account event opened, a count of how
 * often one notification parked itself for an auth or account block, and whether the operator set
 * the send rate by hand (otherwise the rate follows the number's throughput).
 */
import { type Kysely, sql } from 'kysely';

type Privilege = 'SELECT' | 'INSERT' | 'UPDATE' | 'DELETE';

/** Role → table → privileges this migration's code paths need (see 0004 for the roles). */
const GRANTS: Record<string, Record<string, Privilege[]>> = {
  // GET /v1/admin/status shows the number's health; the rollout route reads it for the effective limits.
  notif_api: { number_health: ['SELECT'] },
  // phone_number_quality_update and account_update; a restriction or ban opens the circuit.
  notif_webhook: {
    number_health: ['SELECT', 'INSERT', 'UPDATE'],
    sender_state: ['SELECT', 'INSERT', 'UPDATE'],
  },
  // The gates derive the default rate and daily cap from the number's throughput and tier.
  notif_worker: { number_health: ['SELECT'] },
  // The probe and the periodic Graph read record what they see.
  notif_scheduler: { number_health: ['SELECT', 'INSERT', 'UPDATE'] },
};

// biome-ignore lint/suspicious/noExplicitAny: a migration must not depend on today's schema types
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('number_health')
    .addColumn('sender_id', 'text', (c) => c.primaryKey())
    // GREEN | YELLOW | RED | UNKNOWN from the Graph API; FLAGGED from Meta's quality event.
    .addColumn('quality_rating', 'text')
    // TIER_50 … TIER_UNLIMITED, TIER_NOT_SET.
    .addColumn('messaging_limit', 'text')
    // STANDARD (80 messages/s) | HIGH (1,000 messages/s).
    .addColumn('throughput_level', 'text')
    // OK | RESTRICTED | BANNED | SCHEDULED_FOR_DISABLE.
    .addColumn('account_state', 'text', (c) => c.notNull().defaultTo('OK'))
    .addColumn('account_detail', 'text')
    // Where the newest change came from: `graph` (the scheduler's read) or `webhook:<field>`.
    .addColumn('source', 'text', (c) => c.notNull())
    .addColumn('checked_at', 'timestamptz')
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  // A held circuit is closed only by a person: probes report but do not close it.
  await db.schema
    .alterTable('sender_state')
    .addColumn('held', 'boolean', (c) => c.notNull().defaultTo(false))
    .execute();
  await db.schema
    .alterTable('notifications')
    .addColumn('circuit_opens', 'smallint', (c) => c.notNull().defaultTo(0))
    .execute();
  await db.schema
    .alterTable('rollout_settings')
    .addColumn('rate_by_hand', 'boolean', (c) => c.notNull().defaultTo(false))
    .execute();
  // A rate other than the old default of 80 was set by someone: keep it as theirs.
  await sql`update rollout_settings set rate_by_hand = (rate_per_second <> 80)`.execute(db);

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
  await db.schema.alterTable('rollout_settings').dropColumn('rate_by_hand').execute();
  await db.schema.alterTable('notifications').dropColumn('circuit_opens').execute();
  await db.schema.alterTable('sender_state').dropColumn('held').execute();
  await sql`revoke select, insert, update on table sender_state from notif_webhook`.execute(db);
  await db.schema.dropTable('number_health').execute();
}
