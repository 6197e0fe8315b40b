/** The pipeline's first statement: every row of the batch and its recipient's opt-out, in one query. */
import { type Kysely, sql } from 'kysely';
import type { Database } from '#core/db/schema.ts';
import { isUuid } from '#core/platform/ids.ts';
import type { DeliveryRecord, LoadedRow } from './verdict.ts';

/** The notification ids the records name; a body that is not one is left to triage to report. */
export function notificationIds(records: readonly DeliveryRecord[]): string[] {
  return [...new Set(records.filter((r) => isUuid(r.body)).map((r) => r.body))];
}

export async function loadRows(
  db: Kysely<Database>,
  ids: readonly string[],
  /** The WABA whose template registry says whether each template may still be sent. */
  wabaId?: string,
): Promise<Map<string, LoadedRow>> {
  if (ids.length === 0) return new Map();
  // The opt-out check rides along as a lateral subquery so that triage needs no second round trip:
  // one pass over the recipient's opt-outs, under the phone number, the salted hash an erasure
  // keeps them under (migration 0013) or the BSUID Meta reported for it, answers both scopes:
  // 'all' stops everything, 'marketing' (131050, user_preferences) only templates known to be
  // MARKETING. An aggregate without GROUP BY gives one row for every notification.
  const rows = await db
    .selectFrom('notifications as n')
    .innerJoinLateral(
      (eb) =>
        eb
          .selectFrom('opt_outs as o')
          .select([
            sql<boolean>`coalesce(bool_or(o.scope = 'all'), false)`.as('opted_out'),
            sql<boolean>`coalesce(bool_or(o.scope = 'marketing'), false)`.as('marketing_opted_out'),
          ])
          .where(
            sql<boolean>`o.recipient = n.recipient
              or o.recipient = recipient_hash(n.recipient)
              or o.recipient in (select r.bsuid from recipient_ids r where r.phone = n.recipient)`,
          )
          .as('opt'),
      (join) => join.onTrue(),
    )
    .selectAll('n')
    .select(['opt.opted_out', 'opt.marketing_opted_out'])
    // The registry's word on the template rides along too (triage fails a paused one unsent).
    .leftJoin('message_templates as t', (join) =>
      join
        .on('t.waba_id', '=', wabaId ?? '')
        .on('n.message_type', '=', 'template')
        .on('t.name', '=', sql<string>`n.message->>'name'`)
        .on('t.language', '=', sql<string>`n.message->>'language'`),
    )
    .select(['t.status as registry_status', 't.category as registry_category'])
    .where('n.id', 'in', ids)
    .execute();
  return new Map(rows.map((r) => [r.id, r]));
}
