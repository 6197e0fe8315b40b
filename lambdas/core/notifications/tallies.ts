/** Hourly counters of delivery events that are not status transitions, for the 24 h admin view. */
import { type Kysely, sql } from 'kysely';
import type { Database, TallyKind } from '#core/db/schema.ts';

/** Adds a batch's counts in one statement; nothing is written when every count is zero. */
export async function addTallies(
  db: Kysely<Database>,
  counts: Partial<Record<TallyKind, number>>,
  now: Date,
): Promise<void> {
  const entries = Object.entries(counts).filter(([, n]) => n && n > 0) as [TallyKind, number][];
  if (entries.length === 0) return;
  const hour = new Date(Math.floor(now.getTime() / 3_600_000) * 3_600_000);
  await db
    .insertInto('delivery_tallies')
    .values(entries.map(([kind, count]) => ({ hour, kind, count })))
    .onConflict((oc) =>
      oc
        .columns(['hour', 'kind'])
        .doUpdateSet({ count: sql`delivery_tallies.count + excluded.count` }),
    )
    .execute();
}

/** The counts of the hours from the one holding `since` up to the one holding `until` (hour granularity). */
export async function readTallies(
  db: Kysely<Database>,
  since: Date,
  until?: Date,
): Promise<Record<TallyKind, number>> {
  let query = db
    .selectFrom('delivery_tallies')
    .select(['kind', (eb) => eb.fn.sum<string>('count').as('total')])
    .where('hour', '>=', new Date(Math.floor(since.getTime() / 3_600_000) * 3_600_000));
  if (until) query = query.where('hour', '<', until);
  const rows = await query.groupBy('kind').execute();
  const totals: Record<TallyKind, number> = { skipped_duplicate: 0, skipped_rate_limit: 0 };
  for (const row of rows) totals[row.kind] = Number(row.total);
  return totals;
}
