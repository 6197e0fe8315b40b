/**
 * Applies what a webhook says about consent and identity: STOP/START keywords (full opt-out),
 * `user_preferences` stop/resume (marketing only), changed-number and changed-BSUID system
 * messages (opt-outs carried over), and the BSUIDs statuses and messages report for a number.
 * Each inbound message acts once (its id is remembered) and only if newer than the last change.
 */
import type { Kysely } from 'kysely';
import type { Database } from '#core/db/schema.ts';
import { inTransaction } from '#core/db/transaction.ts';
import {
  applyConsentChange,
  carryOverOptOuts,
  keywordIntent,
  linkedKeys,
  markInboundSeen,
  pruneInboundSeen,
  rememberBsuids,
  rememberBsuidsByWamid,
  toE164,
} from '#core/notifications/opt-outs.ts';
import type {
  InboundMessage,
  PreferenceChange,
  StatusUpdate,
  UserIdUpdate,
} from '#core/whatsapp/webhook-payload.ts';

/** System message types that move a person to a new number or BSUID (legacy name included). */
const IDENTITY_CHANGES = new Set([
  'user_changed_number',
  'user_changed_user_id',
  'customer_changed_number',
]);

export interface ConsentTally {
  optedOut: number;
  optedIn: number;
  /** A message id seen before, or a change older than the recipient's last one. */
  replayed: number;
  carriedOver: number;
}

export interface ConsentEventLog {
  kind: 'opt_out' | 'opt_in' | 'marketing_stop' | 'marketing_resume' | 'identity_change';
  outcome: 'applied' | 'replayed';
  /** The wamid of an inbound message; preference items have none. Never a phone number. */
  messageId?: string;
}

function keysOf(phone: string | undefined, userId: string | undefined): string[] {
  return [...(phone ? [toE164(phone)] : []), ...(userId ? [userId] : [])];
}

async function linkIds(db: Kysely<Database>, phone: string | undefined, userId?: string) {
  if (phone && userId) await rememberBsuids(db, [{ phone: toE164(phone), bsuid: userId }]);
}

export async function applyConsentEvents(
  db: Kysely<Database>,
  events: {
    statuses: readonly StatusUpdate[];
    inbound: readonly InboundMessage[];
    preferences: readonly PreferenceChange[];
    userIdUpdates?: readonly UserIdUpdate[];
  },
): Promise<{ tally: ConsentTally; log: ConsentEventLog[] }> {
  const tally: ConsentTally = { optedOut: 0, optedIn: 0, replayed: 0, carriedOver: 0 };
  const log: ConsentEventLog[] = [];

  // Statuses name the wamid; the phone number is the notification's, whatever recipient_id holds.
  await rememberBsuidsByWamid(
    db,
    events.statuses.flatMap((s) =>
      s.recipientUserId ? [{ wamid: s.wamid, bsuid: s.recipientUserId }] : [],
    ),
  );

  // Every message that names both ids links them, keyword or not.
  await rememberBsuids(
    db,
    events.inbound.flatMap((m) =>
      m.from && m.fromUserId ? [{ phone: toE164(m.from), bsuid: m.fromUserId }] : [],
    ),
  );

  let actedOnMessages = false;
  for (const message of events.inbound) {
    const intent = keywordIntent(message.text);
    const identity = message.system && IDENTITY_CHANGES.has(message.system.type);
    if (!intent && !identity) continue;
    const keys = keysOf(message.from, message.fromUserId);
    if (keys.length === 0 && !identity) continue;
    actedOnMessages = true;
    const entry = await inTransaction(db, async (trx): Promise<ConsentEventLog> => {
      const kind = identity ? 'identity_change' : intent!;
      if (!(await markInboundSeen(trx, message.id))) {
        tally.replayed += 1;
        return { kind, outcome: 'replayed', messageId: message.id };
      }
      if (identity) {
        const system = message.system!;
        await linkIds(trx, system.waId, system.userId);
        tally.carriedOver += await carryOverOptOuts(
          trx,
          await linkedKeys(trx, [...keys, ...keysOf(system.waId, system.userId)]),
        );
        return { kind, outcome: 'applied', messageId: message.id };
      }
      const changed = await applyConsentChange(trx, {
        recipients: await linkedKeys(trx, keys),
        optedOut: intent === 'opt_out',
        source: 'keyword',
        at: message.timestamp,
      });
      if (changed.length === 0) {
        tally.replayed += 1;
        return { kind, outcome: 'replayed', messageId: message.id };
      }
      if (intent === 'opt_out') tally.optedOut += 1;
      else tally.optedIn += 1;
      return { kind, outcome: 'applied', messageId: message.id };
    });
    log.push(entry);
  }
  if (actedOnMessages) await pruneInboundSeen(db);

  for (const preference of events.preferences) {
    const stop = preference.value === 'stop';
    const kind = stop ? 'marketing_stop' : 'marketing_resume';
    await linkIds(db, preference.waId, preference.userId);
    // No message id: the consent clock alone makes a redelivered item harmless.
    const changed = await applyConsentChange(db, {
      recipients: await linkedKeys(db, keysOf(preference.waId, preference.userId)),
      optedOut: stop,
      source: 'user_preferences',
      at: preference.timestamp,
    });
    if (changed.length === 0) tally.replayed += 1;
    else if (stop) tally.optedOut += 1;
    else tally.optedIn += 1;
    log.push({ kind, outcome: changed.length === 0 ? 'replayed' : 'applied' });
  }
  // A BSUID changed (the user_id_update field): the new one inherits the old one's opt-outs.
  for (const update of events.userIdUpdates ?? []) {
    await linkIds(db, update.waId, update.current);
    tally.carriedOver += await carryOverOptOuts(
      db,
      await linkedKeys(db, [update.previous, update.current, ...keysOf(update.waId, undefined)]),
    );
    log.push({ kind: 'identity_change', outcome: 'applied' });
  }
  return { tally, log };
}
