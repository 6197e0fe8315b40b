/**
 * Erasing one person (GDPR-style right to erasure): every place that holds their phone number is
 * redacted in one transaction, and their opt-outs and consent clocks are kept under a salted hash
 * of the number (`recipient_hash`, migration 0013) so that they stay opted out. The answer counts
 * what was touched per table; the number itself is never logged, audited or returned.
 *
 * Adding a table that holds numbers: add one step to `ERASURE_STEPS` below (and its grant to
 * notif_api in its migration); the route, the CLI and the counts follow.
 */
import {
  type ExpressionBuilder,
  type Kysely,
  type RawBuilder,
  type SelectQueryBuilder,
  sql,
  type Transaction,
} from 'kysely';
import type { Database } from '#core/db/schema.ts';
import { inTransaction } from '#core/db/transaction.ts';

/** What a redacted row's recipient reads: no number, and not a valid one either. */
export const ERASED_RECIPIENT = 'erased';

/** Non-terminal statuses a row may still be sent from: an erased person's are skipped instead. */
const UNSENT_STATUSES = ['scheduled', 'accepted', 'queued', 'deferred'] as const;

export interface ErasureContext {
  trx: Transaction<Database>;
  /** E.164, as stored. */
  phone: string;
  /** The business-scoped user ids Meta reported for the number (read before the links go). */
  bsuids: readonly string[];
  now: Date;
}

type ErasureStep = (ctx: ErasureContext) => Promise<number>;

const count = (result: { numUpdatedRows?: bigint; numDeletedRows?: bigint }) =>
  Number(result.numUpdatedRows ?? result.numDeletedRows ?? 0n);

/**
 * Every table that can hold the number, in the order that keeps the data consistent: statuses
 * waiting for a wamid before the rows that name it; opt-outs hashed before the BSUID links that
 * find them go.
 */
export const ERASURE_STEPS: Record<string, ErasureStep> = {
  /** Statuses that arrived before their send, for this person's wamids. */
  pendingStatuses: async ({ trx, phone }) =>
    count(
      await trx
        .deleteFrom('pending_statuses')
        .where('wamid', 'in', (eb) =>
          eb
            .selectFrom('notifications')
            .select('wamid')
            .where('recipient', '=', phone)
            .where('wamid', 'is not', null)
            .$narrowType<{ wamid: string }>(),
        )
        .executeTakeFirst(),
    ),
  /** Rows not sent yet are not sent at all: nobody can send to an erased number. */
  unsentNotifications: async ({ trx, phone }) =>
    count(
      await trx
        .updateTable('notifications')
        .set({ status: 'skipped', status_reason: 'recipient_erased', next_attempt_at: null })
        .where('recipient', '=', phone)
        .where('status', 'in', UNSENT_STATUSES)
        .executeTakeFirst(),
    ),
  /**
   * Client events (the outbox, 0010) keep a snapshot of the row as it was, number and text
   * included; the step above may just have added one. Redacted like the row itself, before the
   * row's number is gone and the events could no longer be found by it.
   */
  callbackEvents: async ({ trx, phone, now }) =>
    redactEventSnapshots(
      trx,
      (eb) => eb.selectFrom('notifications').select('id').where('recipient', '=', phone),
      ERASED_RECIPIENT,
      now,
    ),
  /** Every row: statuses, timestamps and error class stay; number, text, metadata go. */
  notifications: async ({ trx, phone, now }) =>
    count(
      await trx
        .updateTable('notifications')
        .set(redactedColumns(ERASED_RECIPIENT, now))
        .where('recipient', '=', phone)
        .executeTakeFirst(),
    ),
  /** Opt-outs under the number or its BSUIDs move to the hash of the number: still opted out. */
  optOuts: async ({ trx, phone, bsuids }) => {
    const keys = [phone, ...bsuids];
    await sql`
      insert into opt_outs (recipient, scope, source, changed_at)
      select recipient_hash(${phone}), o.scope, (array_agg(o.source order by o.changed_at desc))[1],
        max(o.changed_at)
      from opt_outs o where o.recipient = any(${keys}::text[])
      group by o.scope
      on conflict (recipient, scope) do update set changed_at = greatest(opt_outs.changed_at, excluded.changed_at)`.execute(
      trx,
    );
    return count(
      await trx.deleteFrom('opt_outs').where('recipient', 'in', keys).executeTakeFirst(),
    );
  },
  /** The newest consent change per scope, kept under the hash too. */
  consentClock: async ({ trx, phone, bsuids }) => {
    const keys = [phone, ...bsuids];
    await sql`
      insert into consent_clock (recipient, scope, changed_at)
      select recipient_hash(${phone}), c.scope, max(c.changed_at)
      from consent_clock c where c.recipient = any(${keys}::text[])
      group by c.scope
      on conflict (recipient, scope) do update set changed_at = greatest(consent_clock.changed_at, excluded.changed_at)`.execute(
      trx,
    );
    return count(
      await trx.deleteFrom('consent_clock').where('recipient', 'in', keys).executeTakeFirst(),
    );
  },
  recipientIds: async ({ trx, phone }) =>
    count(await trx.deleteFrom('recipient_ids').where('phone', '=', phone).executeTakeFirst()),
  recipientPacing: async ({ trx, phone }) =>
    count(
      await trx.deleteFrom('recipient_pacing').where('recipient', '=', phone).executeTakeFirst(),
    ),
  /** Refused webhook items are kept raw, numbers included (Meta writes them without `+`). */
  webhookRejects: async ({ trx, phone }) =>
    count(
      await trx
        .deleteFrom('webhook_rejects')
        .where(sql<boolean>`position(${phone.replace(/^\+/, '')} in raw::text) > 0`)
        .executeTakeFirst(),
    ),
};

export type ErasureCounts = Record<keyof typeof ERASURE_STEPS, number>;

/** A redacted message: a template keeps its name and language, everything else goes. */
function redactedMessage(messageType: RawBuilder<unknown>, message: RawBuilder<unknown>) {
  return sql<string>`case when ${messageType} = 'template'
    then jsonb_build_object('name', ${message}->'name', 'language', ${message}->'language', 'redacted', true)
    else '{"redacted": true}'::jsonb end`;
}

/**
 * The columns a redaction sets: what identifies or speaks to the person goes, the history stays.
 * A template keeps its name and language (which template was sent is not about the person); its
 * parameters and any text go.
 */
export function redactedColumns(recipient: string, now: Date) {
  return {
    recipient,
    message: redactedMessage(sql`message_type`, sql`message`),
    metadata: null,
    response: null,
    error_message: null,
    redacted_at: now,
  } as const;
}

/**
 * Redacts the client events' copies (the outbox's `snapshot`, 0010) of the notifications `ids`
 * selects, the way redactedColumns redacts the rows themselves; returns the events touched.
 */
export async function redactEventSnapshots(
  db: Kysely<Database>,
  ids: (
    eb: ExpressionBuilder<Database, 'callback_events'>,
  ) => SelectQueryBuilder<Database, 'notifications', { id: string }>,
  recipient: string,
  now: Date,
): Promise<number> {
  return count(
    await db
      .updateTable('callback_events')
      .set({
        snapshot: sql`snapshot || jsonb_build_object(
          'recipient', ${recipient}::text, 'metadata', null, 'error_message', null,
          'redacted_at', ${now}::timestamptz,
          'message', ${redactedMessage(sql`snapshot->>'message_type'`, sql`snapshot->'message'`)})`,
      })
      .where('notification_id', 'in', ids)
      .executeTakeFirst(),
  );
}

/** Erases one person everywhere, in one transaction; returns the rows touched per table. */
export async function eraseRecipient(
  db: Kysely<Database>,
  phone: string,
  now: Date = new Date(),
): Promise<{ counts: ErasureCounts; total: number }> {
  return inTransaction(db, async (trx) => {
    const bsuids = (
      await trx.selectFrom('recipient_ids').select('bsuid').where('phone', '=', phone).execute()
    ).map((r) => r.bsuid);
    const counts = {} as ErasureCounts;
    for (const [name, step] of Object.entries(ERASURE_STEPS)) {
      counts[name] = await step({ trx, phone, bsuids, now });
    }
    // `unsentNotifications` counts rows also counted by `notifications`, and `callbackEvents`
    // copies of them: left out of the total, which counts places the person was.
    const total = Object.entries(counts)
      .filter(([name]) => name !== 'unsentNotifications' && name !== 'callbackEvents')
      .reduce((sum, [, n]) => sum + n, 0);
    return { counts, total };
  });
}
