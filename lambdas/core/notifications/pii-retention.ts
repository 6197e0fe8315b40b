/**
 * The retention of personal data, run by the scheduler: a notification older than the stage's
 * retention (PII_RETENTION_DAYS, 90 days by default) keeps its statuses, timestamps and error class
 * and loses its number, text, template parameters and metadata; the per-recipient pacing rows and
 * BSUID links of that age go too. Opt-outs are kept on purpose (they are the person's own request;
 * erasure hashes them). The audit log is pruned after AUDIT_RETENTION_DAYS.
 */
import { type Kysely, sql } from 'kysely';
import type { Database } from '#core/db/schema.ts';
import { redactEventSnapshots, redactedColumns } from '#core/notifications/erase-recipient.ts';

const DAY_MS = 86_400_000;

/** What an expired row's recipient reads. */
export const RETAINED_RECIPIENT = 'redacted';

/** Rows that may still be sent keep what the send needs, however old (a far-off `sendAt`). */
const STILL_SENDABLE = ['scheduled', 'accepted', 'queued', 'sending', 'deferred'] as const;

export interface RetentionOptions {
  piiRetentionDays: number;
  auditRetentionDays: number;
  /** Rows per run at most, so one run after a long pause cannot hold the database for long. */
  batchLimit: number;
}

export interface RetentionReport {
  notificationsRedacted: number;
  /** Client events (the outbox) whose copy of a redacted row was redacted with it. */
  eventsRedacted: number;
  pacingDeleted: number;
  recipientIdsDeleted: number;
  auditPruned: number;
}

export async function applyRetention(
  db: Kysely<Database>,
  now: Date,
  options: RetentionOptions,
): Promise<RetentionReport> {
  const cutoff = new Date(now.getTime() - options.piiRetentionDays * DAY_MS);
  // Oldest first through the partial index on unredacted rows; `skip locked` steps around a row
  // the worker or webhook holds, which the next run takes.
  const redacted = await db
    .updateTable('notifications')
    .set(redactedColumns(RETAINED_RECIPIENT, now))
    .where('id', 'in', (eb) =>
      eb
        .selectFrom('notifications')
        .select('id')
        .where('redacted_at', 'is', null)
        .where('created_at', '<', cutoff)
        .where('status', 'not in', STILL_SENDABLE)
        .orderBy('created_at')
        .limit(options.batchLimit)
        .forUpdate()
        .skipLocked(),
    )
    .returning('id')
    .execute();
  // The outbox keeps its events up to CALLBACK_RETENTION_DAYS, which may outlast this retention:
  // their copies of the rows go the same way.
  const redactedIds = redacted.map((r) => r.id);
  const eventsRedacted =
    redactedIds.length === 0
      ? 0
      : await redactEventSnapshots(
          db,
          (eb) => eb.selectFrom('notifications').select('id').where('id', 'in', redactedIds),
          RETAINED_RECIPIENT,
          now,
        );
  const pacing = await db
    .deleteFrom('recipient_pacing')
    .where('last_sent_at', '<', cutoff)
    .executeTakeFirst();
  const links = await db
    .deleteFrom('recipient_ids')
    .where('updated_at', '<', cutoff)
    .executeTakeFirst();
  const auditCutoff = new Date(now.getTime() - options.auditRetentionDays * DAY_MS);
  const audit = await db
    .deleteFrom('audit_log')
    .where('id', 'in', (eb) =>
      eb
        .selectFrom('audit_log')
        .select('id')
        .where('at', '<', auditCutoff)
        .orderBy('id')
        .limit(options.batchLimit),
    )
    .executeTakeFirst();
  return {
    notificationsRedacted: redacted.length,
    eventsRedacted,
    pacingDeleted: Number(pacing.numDeletedRows),
    recipientIdsDeleted: Number(links.numDeletedRows),
    auditPruned: Number(audit.numDeletedRows),
  };
}

/** Rows past the retention still holding a number: what `ops status` could warn about. */
export async function overdueRedactions(
  db: Kysely<Database>,
  now: Date,
  piiRetentionDays: number,
): Promise<number> {
  const cutoff = new Date(now.getTime() - piiRetentionDays * DAY_MS);
  const row = await db
    .selectFrom('notifications')
    .select(sql<string>`count(*)`.as('n'))
    .where('redacted_at', 'is', null)
    .where('created_at', '<', cutoff)
    .where('status', 'not in', STILL_SENDABLE)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}
