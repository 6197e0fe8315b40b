/**
 * A stale `sending` claim taken over by another worker (sending → sending, one more attempt) left
 * no event, so a notification's history hid the attempt that may have reached the recipient
 * twice. The trigger now also records a change of `attempts`.
 */
import { type Kysely, sql } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: a migration must not depend on today's schema types
async function recordTransitions(db: Kysely<any>, onAttempts: boolean): Promise<void> {
  const attemptsChanged = onAttempts ? sql`or old.attempts is distinct from new.attempts` : sql``;
  await sql`
    create or replace function record_notification_transition() returns trigger language plpgsql as $$
    begin
      if tg_op = 'INSERT' or old.status is distinct from new.status ${attemptsChanged} then
        insert into notification_events (notification_id, from_status, to_status, error_class, error_code, attempt)
        values (
          new.id,
          case when tg_op = 'INSERT' then null else old.status end,
          new.status,
          case when new.status in ('failed', 'queued', 'deferred') then new.error_class end,
          case when new.status in ('failed', 'queued', 'deferred') then new.error_code end,
          new.attempts
        );
      end if;
      return null;
    end
    $$`.execute(db);
  await sql`drop trigger notifications_record_transition on notifications`.execute(db);
  const columns = onAttempts ? sql`status, attempts` : sql`status`;
  await sql`
    create trigger notifications_record_transition
    after insert or update of ${columns} on notifications
    for each row execute function record_notification_transition()`.execute(db);
}

// biome-ignore lint/suspicious/noExplicitAny: a migration must not depend on today's schema types
export async function up(db: Kysely<any>): Promise<void> {
  await recordTransitions(db, true);
}

// biome-ignore lint/suspicious/noExplicitAny: a migration must not depend on today's schema types
export async function down(db: Kysely<any>): Promise<void> {
  await recordTransitions(db, false);
}
