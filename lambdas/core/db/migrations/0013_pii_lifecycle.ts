/**
 * The life of personal data (issue 16): a notification row can be redacted (`redacted_at`), by the
 * retention the scheduler runs or by erasing one person; an erased person's opt-outs live on as a
 * salted hash of their number, so they stay opted out without the number being kept.
 *
 * The hash: SHA-256 over a per-deployment secret salt and the E.164 number, computed in SQL by
 * `recipient_hash(text)` so the worker's one-query opt-out check can match it. The salt is made
 * here from two `gen_random_uuid()` (strong randomness, built into PostgreSQL 13+) and sits in
 * `pii_salt`, which no function role can read: the function is SECURITY DEFINER and the roles may
 * only execute it. Core PostgreSQL has no HMAC without pgcrypto, hence a salted hash of a fixed
 * layout (`salt:number`) rather than HMAC. What it guards against: a copy of a table or a log that
 * leaks without the salt. What it cannot: someone with the whole database (salt included) can try
 * every number of a country, as for any hash of a phone number.
 *
 * Grants for the code paths of this issue: the api function erases (every table that holds a
 * number), the scheduler applies the retention (notifications, pacing, BSUID links) and prunes
 * the audit log.
 */
import { type Kysely, sql } from 'kysely';

type Privilege = 'SELECT' | 'INSERT' | 'UPDATE' | 'DELETE';

/** Role → table → privileges this migration's code paths add to 0004–0006. */
const GRANTS: Record<string, Record<string, Privilege[]>> = {
  // POST /v1/admin/recipients/erase (core/notifications/erase-recipient.ts).
  notif_api: {
    opt_outs: ['SELECT', 'INSERT', 'UPDATE', 'DELETE'],
    consent_clock: ['SELECT', 'INSERT', 'UPDATE', 'DELETE'],
    recipient_ids: ['SELECT', 'DELETE'],
    recipient_pacing: ['SELECT', 'DELETE'],
    pending_statuses: ['SELECT', 'DELETE'],
    webhook_rejects: ['SELECT', 'DELETE'],
    // The client-event outbox (0010) keeps a snapshot of the row, number included.
    callback_events: ['SELECT', 'UPDATE'],
  },
  // The retention run (core/notifications/pii-retention.ts) and the audit log's retention.
  notif_scheduler: {
    audit_log: ['SELECT', 'DELETE'],
    // The outbox's copies of the rows the retention redacts.
    callback_events: ['SELECT', 'UPDATE'],
    recipient_pacing: ['SELECT', 'DELETE'],
    recipient_ids: ['SELECT', 'DELETE'],
  },
};

const HASH_USERS = ['notif_api', 'notif_webhook', 'notif_worker', 'notif_scheduler'];

// biome-ignore lint/suspicious/noExplicitAny: a migration must not depend on today's schema types
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('notifications').addColumn('redacted_at', 'timestamptz').execute();
  // The retention scans rows not yet redacted, oldest first; redacted rows leave the index.
  await sql`create index notifications_unredacted_created_idx on notifications (created_at)
    where redacted_at is null`.execute(db);

  await sql`create table pii_salt (
    id integer primary key check (id = 1),
    salt text not null
  )`.execute(db);
  await sql`insert into pii_salt (id, salt)
    values (1, replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''))`.execute(db);
  await sql`revoke all on table pii_salt from public`.execute(db);

  await sql`
    create function recipient_hash(recipient text) returns text
    language sql stable security definer set search_path = public, pg_temp
    as $$
      select 'sha256:' || encode(sha256(convert_to(s.salt || ':' || recipient, 'UTF8')), 'hex')
      from pii_salt s where s.id = 1
    $$`.execute(db);
  await sql`revoke all on function recipient_hash(text) from public`.execute(db);
  for (const role of HASH_USERS) {
    await sql`grant execute on function recipient_hash(text) to ${sql.id(role)}`.execute(db);
  }

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
  await sql`revoke delete on table audit_log from notif_scheduler`.execute(db);
  await sql`revoke select on table audit_log from notif_scheduler`.execute(db);
  await sql`revoke delete on table recipient_pacing, recipient_ids from notif_scheduler`.execute(
    db,
  );
  await sql`revoke insert, update, delete on table opt_outs from notif_api`.execute(db);
  await sql`revoke all on table consent_clock, recipient_pacing, pending_statuses from notif_api`.execute(
    db,
  );
  await sql`revoke delete on table recipient_ids, webhook_rejects from notif_api`.execute(db);
  await sql`revoke update on table callback_events from notif_api, notif_scheduler`.execute(db);
  await sql`revoke select on table callback_events from notif_scheduler`.execute(db);
  await sql`drop function recipient_hash(text)`.execute(db);
  await sql`drop table pii_salt`.execute(db);
  await sql`drop index notifications_unredacted_created_idx`.execute(db);
  await db.schema.alterTable('notifications').dropColumn('redacted_at').execute();
}
