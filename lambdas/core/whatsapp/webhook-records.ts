/** Storing what a webhook POST carried besides statuses and messages: refused items and Meta's events. */
import type { Kysely } from 'kysely';
import type { Database } from '#core/db/schema.ts';
import type { RejectedItem, WhatsAppEvent } from '#core/whatsapp/webhook-payload.ts';

/** How long refused items are kept for an operator; the scheduler deletes older ones. */
export const WEBHOOK_REJECT_RETENTION_DAYS = 7;
/** How long template/number/account events are kept (they are read by `ops status`). */
export const WHATSAPP_EVENT_RETENTION_DAYS = 30;

/** Largest raw item kept, in characters of JSON: a 3 MB body of junk is not worth keeping whole. */
const MAX_RAW_CHARS = 64_000;

// JSON.stringify writes U+0000 and lone surrogates as \u escapes, which jsonb refuses; an escape is
// one preceded by an even run of backslashes (an odd run is a literal backslash in the text).
const UNSTORABLE_ESCAPE = /(?<!\\)((?:\\\\)*)\\u(?:0000|d[89a-f][0-9a-f]{2})/gi;

/** JSON text PostgreSQL's jsonb takes: NUL and lone surrogates replaced, bounded in size. */
export function storableJson(value: unknown): string {
  const text = (JSON.stringify(value ?? null) ?? 'null').replace(UNSTORABLE_ESCAPE, '$1\\ufffd');
  if (text.length > MAX_RAW_CHARS) {
    // The cut may split a surrogate pair: the replacement runs again on the wrapped prefix.
    return JSON.stringify({ truncated: true, prefix: text.slice(0, MAX_RAW_CHARS) }).replace(
      UNSTORABLE_ESCAPE,
      '$1\\ufffd',
    );
  }
  return text;
}

/** Text a PostgreSQL text column takes: no U+0000, no lone surrogate, at most `max` characters. */
function storableText(text: string, max: number): string {
  return text.slice(0, max).toWellFormed().replaceAll('\u0000', '\ufffd');
}

export async function storeWebhookRejects(
  db: Kysely<Database>,
  rejects: readonly RejectedItem[],
): Promise<void> {
  if (rejects.length === 0) return;
  await db
    .insertInto('webhook_rejects')
    .values(
      rejects.map((r) => ({
        field: storableText(r.field, 200),
        kind: r.kind,
        reason: storableText(r.reason, 1000),
        raw: storableJson(r.raw),
      })),
    )
    .execute();
}

export async function storeWhatsAppEvents(
  db: Kysely<Database>,
  events: readonly WhatsAppEvent[],
): Promise<void> {
  if (events.length === 0) return;
  await db
    .insertInto('whatsapp_events')
    .values(
      events.map((e) => ({
        field: e.field,
        event: storableText(e.event, 200),
        waba_id: e.wabaId && e.wabaId.length <= 64 ? storableText(e.wabaId, 64) : null,
        payload: storableJson(e.payload),
      })),
    )
    .execute();
}

/** Deletes refused items and events past their retention; returns how many rows went. */
export async function pruneWebhookRecords(db: Kysely<Database>, now: Date): Promise<number> {
  const day = 24 * 3_600_000;
  const rejects = await db
    .deleteFrom('webhook_rejects')
    .where('received_at', '<', new Date(now.getTime() - WEBHOOK_REJECT_RETENTION_DAYS * day))
    .executeTakeFirst();
  const events = await db
    .deleteFrom('whatsapp_events')
    .where('received_at', '<', new Date(now.getTime() - WHATSAPP_EVENT_RETENTION_DAYS * day))
    .executeTakeFirst();
  return Number(rejects.numDeletedRows) + Number(events.numDeletedRows);
}
