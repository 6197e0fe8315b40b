/**
 * Opt-outs: recipients who asked not to be messaged, keyed by phone number or business-scoped
 * user id (BSUID), with a scope (a STOP keyword stops everything; Meta's 131050 and
 * `user_preferences` stop marketing templates only) and a consent clock so that a replayed or
 * late consent change older than the newest one is ignored.
 */
import { type Kysely, sql, type Transaction } from 'kysely';
import type { Database, OptOutScope, OptOutSource } from '#core/db/schema.ts';
import { inTransaction } from '#core/db/transaction.ts';

/** Keywords in the languages of our senders' users; compared after trimming and upper-casing. */
export const OPT_OUT_KEYWORDS = new Set([
  'STOP',
  'STOPALL',
  'UNSUBSCRIBE',
  'CANCEL',
  'END',
  'QUIT',
  'BAJA',
  'ALTO',
  'PARAR',
  'DETENER',
  'CANCELAR',
  'SAIR',
]);
export const OPT_IN_KEYWORDS = new Set([
  'START',
  'UNSTOP',
  'SUBSCRIBE',
  'ALTA',
  'INICIAR',
  'VOLVER',
]);

export type KeywordIntent = 'opt_out' | 'opt_in' | undefined;

export function keywordIntent(text: string | undefined): KeywordIntent {
  if (!text) return undefined;
  const word = text
    .trim()
    .toUpperCase()
    .replace(/[.!¡¿?]+$/u, '');
  if (OPT_OUT_KEYWORDS.has(word)) return 'opt_out';
  if (OPT_IN_KEYWORDS.has(word)) return 'opt_in';
  return undefined;
}

/** Meta writes numbers as digits; we store recipients in E.164. */
export function toE164(digits: string): string {
  return digits.startsWith('+') ? digits : `+${digits}`;
}

/** What each source of an opt-out stops: Meta's signals only ever cover marketing templates. */
export function scopeOf(source: OptOutSource): OptOutScope {
  return source === 'meta_131050' || source === 'user_preferences' ? 'marketing' : 'all';
}

/** A BSUID: ISO country, optionally `.ENT` for a parent id, then up to 128 letters and digits. */
export const BSUID_PATTERN = /^[A-Z]{2}(\.ENT)?\.[A-Za-z0-9]{1,128}$/;

export interface ConsentChange {
  /** Every key the person is known by in the event: E.164 phone and/or BSUID. */
  recipients: readonly string[];
  optedOut: boolean;
  source: OptOutSource;
  /** Meta's time of the change; only a change newer than the recipient's last one applies. */
  at: Date;
}

/**
 * Applies a consent change to each key whose clock for that scope is older than `at`, and reports
 * the keys it changed. The clock row is locked by the upsert until the transaction ends, so two
 * changes for one person racing each other apply in timestamp order whatever their arrival order.
 * Meta's times are whole seconds, so a STOP and a START in the same second tie: the later arrival
 * wins (a redelivery of the same message is stopped earlier, by its id; see markInboundSeen).
 */
export async function applyConsentChange(
  db: Kysely<Database>,
  change: ConsentChange,
): Promise<string[]> {
  const scope = scopeOf(change.source);
  const recipients = [...new Set(change.recipients)].sort();
  if (recipients.length === 0) return [];
  return inTransaction(db, async (trx) => {
    const changed: string[] = [];
    for (const recipient of recipients) {
      const newer = await trx
        .insertInto('consent_clock')
        .values({ recipient, scope, changed_at: change.at })
        .onConflict((oc) =>
          oc
            .columns(['recipient', 'scope'])
            .doUpdateSet({ changed_at: change.at })
            .where('consent_clock.changed_at', '<=', change.at),
        )
        .returning('recipient')
        .executeTakeFirst();
      if (!newer) continue;
      changed.push(recipient);
      if (change.optedOut) {
        await trx
          .insertInto('opt_outs')
          .values({ recipient, scope, source: change.source, changed_at: change.at })
          .onConflict((oc) =>
            oc
              .columns(['recipient', 'scope'])
              .doUpdateSet({ source: change.source, changed_at: change.at }),
          )
          .execute();
      } else {
        // An opt-in also lifts the opt-out an erasure kept under the number's hash.
        await trx
          .deleteFrom('opt_outs')
          .where((eb) =>
            eb.or([
              eb('recipient', '=', recipient),
              eb('recipient', '=', sql<string>`recipient_hash(${recipient})`),
            ]),
          )
          .where('scope', '=', scope)
          .execute();
      }
    }
    return changed;
  });
}

/** Records an opt-out now (or at Meta's `at`), scoped by its source; an older one is ignored. */
export async function addOptOut(
  db: Kysely<Database>,
  recipient: string,
  source: OptOutSource,
  at: Date = new Date(),
): Promise<void> {
  await applyConsentChange(db, { recipients: [recipient], optedOut: true, source, at });
}

/** Clears every opt-out of a recipient, whatever its scope (tests and operators). */
export async function removeOptOut(db: Kysely<Database>, recipient: string): Promise<boolean> {
  const result = await db
    .deleteFrom('opt_outs')
    .where('recipient', '=', recipient)
    .executeTakeFirst();
  return result.numDeletedRows > 0n;
}

/**
 * A person changed number or BSUID: every opt-out known under any of their keys (old or new;
 * Meta does not say which side a message's own fields are on) is copied to all the others, and
 * so are the consent clocks, so that neither a replay nor the new key escapes the opt-out.
 */
export async function carryOverOptOuts(
  db: Kysely<Database>,
  keys: readonly string[],
): Promise<number> {
  const recipients = [...new Set(keys)].sort();
  if (recipients.length < 2) return 0;
  return inTransaction(db, async (trx: Transaction<Database>) => {
    const copied = await sql<{ recipient: string }>`
      insert into opt_outs (recipient, scope, source, changed_at)
      select k.recipient, o.scope, (array_agg(o.source order by o.changed_at desc))[1],
        max(o.changed_at)
      from opt_outs o cross join unnest(${recipients}::text[]) as k(recipient)
      where o.recipient = any(${recipients}::text[])
      group by k.recipient, o.scope
      on conflict (recipient, scope) do nothing
      returning recipient`.execute(trx);
    await sql`
      insert into consent_clock (recipient, scope, changed_at)
      select k.recipient, c.scope, max(c.changed_at)
      from consent_clock c cross join unnest(${recipients}::text[]) as k(recipient)
      where c.recipient = any(${recipients}::text[])
      group by k.recipient, c.scope
      on conflict (recipient, scope) do update set changed_at = excluded.changed_at
      where consent_clock.changed_at < excluded.changed_at`.execute(trx);
    return copied.rows.length;
  });
}

/** Remembers the BSUID Meta reports for a phone number (the opt-out check reads both). */
export async function rememberBsuids(
  db: Kysely<Database>,
  pairs: readonly { phone: string; bsuid: string }[],
): Promise<void> {
  const unique = new Map(pairs.map((p) => [p.phone, p.bsuid]));
  if (unique.size === 0) return;
  await db
    .insertInto('recipient_ids')
    .values([...unique].map(([phone, bsuid]) => ({ phone, bsuid })))
    .onConflict((oc) =>
      oc
        .column('phone')
        .doUpdateSet({ bsuid: (eb) => eb.ref('excluded.bsuid'), updated_at: new Date() })
        // Every status repeats the BSUID: rewrite the row only when it changed.
        .where('recipient_ids.bsuid', '<>', (eb) => eb.ref('excluded.bsuid')),
    )
    .execute();
}

/**
 * The keys given plus every phone number or BSUID linked to them in recipient_ids, so a START
 * sent under a BSUID also clears a STOP recorded under the phone number, and the other way round.
 */
export async function linkedKeys(db: Kysely<Database>, keys: readonly string[]): Promise<string[]> {
  if (keys.length === 0) return [];
  const rows = await db
    .selectFrom('recipient_ids')
    .select(['phone', 'bsuid'])
    .where((eb) => eb.or([eb('phone', 'in', keys), eb('bsuid', 'in', keys)]))
    .execute();
  return [...new Set([...keys, ...rows.flatMap((r) => [r.phone, r.bsuid])])].sort();
}

/** The BSUID a status reports, stored against the phone number of the notification it names. */
export async function rememberBsuidsByWamid(
  db: Kysely<Database>,
  pairs: readonly { wamid: string; bsuid: string }[],
): Promise<void> {
  if (pairs.length === 0) return;
  await sql`
    insert into recipient_ids (phone, bsuid)
    select distinct on (n.recipient) n.recipient, v.bsuid
    from unnest(${pairs.map((p) => p.wamid)}::text[], ${pairs.map((p) => p.bsuid)}::text[])
      as v(wamid, bsuid)
    join notifications n on n.wamid = v.wamid
    on conflict (phone) do update set bsuid = excluded.bsuid, updated_at = now()
    where recipient_ids.bsuid <> excluded.bsuid`.execute(db);
}

/** How long inbound message ids are remembered: Meta retries for up to 7 days. */
export const INBOUND_SEEN_RETENTION_DAYS = 8;

/**
 * Marks an inbound message id as seen; false when it was seen before (a redelivery by Meta or a
 * re-posted capture), in which case the caller must not act on it again.
 */
export async function markInboundSeen(db: Kysely<Database>, messageId: string): Promise<boolean> {
  const inserted = await db
    .insertInto('inbound_seen')
    .values({ message_id: messageId })
    .onConflict((oc) => oc.column('message_id').doNothing())
    .returning('message_id')
    .executeTakeFirst();
  return inserted !== undefined;
}

/** Forgets seen inbound ids past the retention (older ones also fail the consent clock). */
export async function pruneInboundSeen(
  db: Kysely<Database>,
  now: Date = new Date(),
): Promise<void> {
  const cutoff = new Date(now.getTime() - INBOUND_SEEN_RETENTION_DAYS * 86_400_000);
  await db.deleteFrom('inbound_seen').where('seen_at', '<', cutoff).execute();
}

export interface OptOutView {
  recipient: string;
  scope: OptOutScope;
  source: OptOutSource;
  changedAt: Date;
}

/** The opt-outs of a phone number and of the BSUID known for it. */
export async function optOutsOf(db: Kysely<Database>, phone: string): Promise<OptOutView[]> {
  const rows = await db
    .selectFrom('opt_outs')
    .select(['recipient', 'scope', 'source', 'changed_at'])
    .where((eb) =>
      eb.or([
        eb('recipient', '=', phone),
        eb('recipient', '=', sql<string>`recipient_hash(${phone})`),
        eb(
          'recipient',
          'in',
          eb.selectFrom('recipient_ids').select('bsuid').where('phone', '=', phone),
        ),
      ]),
    )
    .orderBy('changed_at')
    .execute();
  return rows.map((r) => ({
    recipient: r.recipient,
    scope: r.scope,
    source: r.source,
    changedAt: r.changed_at,
  }));
}
