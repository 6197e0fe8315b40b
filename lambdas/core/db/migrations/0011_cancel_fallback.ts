/**
 * Cancel and fallback: a `cancelled` status, and per-notification fallback timing (a client default
 * on api_clients, the due time on the row, and when and why fallback was found required), with
 * the partial index the scheduler's fallback sweep reads and a trigger that marks a `failed`
 * notification at once, in the same statement that fails it.
 */
import { type Kysely, sql } from 'kysely';

type Privilege = 'SELECT' | 'INSERT' | 'UPDATE' | 'DELETE';

/** Role → table → privileges this migration's code paths need (see 0004 for the roles). */
const GRANTS: Record<string, Record<string, Privilege[]>> = {
  notif_api: {
    api_clients: ['SELECT'],
  },
};

const STATUSES_BEFORE = `'scheduled', 'accepted', 'queued', 'sending', 'sent', 'delivered', 'read', 'failed', 'skipped', 'deferred'`;

// biome-ignore lint/suspicious/noExplicitAny: a migration must not depend on today's schema types
export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table notifications drop constraint if exists notifications_status_check`.execute(
    db,
  );
  await sql`alter table notifications add constraint notifications_status_check
    check (status in (${sql.raw(STATUSES_BEFORE)}, 'cancelled'))`.execute(db);

  // The two columns the client-event outbox (0010) also creates: either migration may come first.
  await sql`alter table notifications add column if not exists fallback_required_at timestamptz`.execute(
    db,
  );
  await sql`alter table notifications add column if not exists fallback_reason text`.execute(db);
  await sql`alter table notifications add column fallback_after_seconds integer
    constraint notifications_fallback_after_check check (fallback_after_seconds between 60 and 604800)`.execute(
    db,
  );
  await sql`alter table notifications add column fallback_due_at timestamptz`.execute(db);
  await sql`alter table api_clients add column fallback_after_seconds integer
    constraint api_clients_fallback_after_check check (fallback_after_seconds between 60 and 604800)`.execute(
    db,
  );

  // The sweep reads only rows that carry a fallback, are not yet marked and may still need one;
  // delivered, read, skipped and cancelled rows leave the index, so it stays the size of the
  // notifications in flight, not of the table.
  await sql`create index notifications_fallback_due_idx on notifications (fallback_due_at)
    where fallback_required_at is null
      and status in ('scheduled', 'accepted', 'queued', 'sending', 'sent', 'deferred', 'failed')`.execute(
    db,
  );
  // Counting the last 24 h of fallbacks for the status page.
  await sql`create index notifications_fallback_required_idx on notifications (fallback_required_at)
    where fallback_required_at is not null`.execute(db);

  // A `failed` notification needs its fallback now, not at its due time. A trigger marks it in the
  // statement that fails it, whichever code path that is (the worker's send, a webhook status, a
  // late status the scheduler applies), and only when nothing has marked it yet: once.
  await sql`
    create function notifications_fallback_on_failed() returns trigger language plpgsql as $$
    begin
      if new.status = 'failed' and old.status is distinct from 'failed'
        and new.fallback_after_seconds is not null and new.fallback_required_at is null then
        new.fallback_required_at := now();
        new.fallback_reason := 'failed';
      end if;
      return new;
    end $$`.execute(db);
  await sql`
    create trigger notifications_fallback_on_failed
    before update of status on notifications
    for each row execute function notifications_fallback_on_failed()`.execute(db);

  // PUT /v1/admin/clients/{clientId}/fallback sets a client's default: that column only, so the
  // api role can never change a client's name or its limits.
  await sql`grant update (fallback_after_seconds) on table api_clients to notif_api`.execute(db);
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
  await sql`revoke update (fallback_after_seconds) on table api_clients from notif_api`.execute(db);
  await sql`drop trigger notifications_fallback_on_failed on notifications`.execute(db);
  await sql`drop function notifications_fallback_on_failed()`.execute(db);
  await sql`drop index notifications_fallback_required_idx`.execute(db);
  await sql`drop index notifications_fallback_due_idx`.execute(db);
  await sql`alter table api_clients drop column fallback_after_seconds`.execute(db);
  await sql`alter table notifications drop column fallback_due_at`.execute(db);
  await sql`alter table notifications drop column fallback_after_seconds`.execute(db);
  // fallback_required_at and fallback_reason stay: the outbox migration (0010) may own them.
  // A cancelled row has no place in the older lifecycle; it ends as skipped, which is what it was.
  await sql`update notifications set status = 'skipped' where status = 'cancelled'`.execute(db);
  await sql`alter table notifications drop constraint notifications_status_check`.execute(db);
  await sql`alter table notifications add constraint notifications_status_check
    check (status in (${sql.raw(STATUSES_BEFORE)}))`.execute(db);
}
