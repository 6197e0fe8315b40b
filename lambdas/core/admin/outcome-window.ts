/**
 * Outcomes over a window other than the status page's 24 hours: the last N hours, the same hours
 * a day earlier to compare with, and accepted / sent / failed per client (which client is failing?).
 */
import { type Kysely, sql } from 'kysely';
import { type Last24h, readOutcomes } from '#core/admin/admin-status.ts';
import type { Database } from '#core/db/schema.ts';

/** A week: the longest window the created_at index still answers in one quick pass. */
export const MAX_WINDOW_HOURS = 168;
/** The per-client table shows the clients with the most failures, then the most traffic. */
export const MAX_CLIENT_ROWS = 50;

export type OutcomeWindow = Last24h & { until: string; hours: number };

export interface ClientOutcomes {
  clientId: string;
  clientName: string | null;
  accepted: number;
  sent: number;
  failed: number;
  /** Of this client's finished notifications; null before any finished. */
  successRatePercent: number | null;
}

export interface OutcomeWindows {
  current: OutcomeWindow;
  /** The same hours 24 hours earlier (`compare=yesterday`), else null. */
  previous: OutcomeWindow | null;
  /** Per client in the current window (`byClient=true`), else null. */
  byClient: ClientOutcomes[] | null;
}

export interface OutcomeWindowQuery {
  hours: number;
  compare?: 'yesterday' | undefined;
  byClient?: boolean | undefined;
}

const DAY_MS = 86_400_000;

async function window(db: Kysely<Database>, until: Date, hours: number): Promise<OutcomeWindow> {
  const since = new Date(until.getTime() - hours * 3_600_000);
  return { ...(await readOutcomes(db, since, until)), until: until.toISOString(), hours };
}

function rate(succeeded: number, failed: number): number | null {
  return succeeded + failed === 0
    ? null
    : Math.round((succeeded / (succeeded + failed)) * 1000) / 10;
}

export async function readClientOutcomes(
  db: Kysely<Database>,
  since: Date,
  until: Date,
): Promise<ClientOutcomes[]> {
  const rows = await db
    .selectFrom('notifications as n')
    .leftJoin('api_clients as c', 'c.id', 'n.client_id')
    .select([
      'n.client_id',
      sql<string | null>`min(c.name)`.as('client_name'),
      sql<string>`count(*)`.as('accepted'),
      sql<string>`count(*) filter (where n.sent_at is not null)`.as('sent'),
      sql<string>`count(*) filter (where n.status = 'failed')`.as('failed'),
      sql<string>`count(*) filter (where n.status in ('sent', 'delivered', 'read'))`.as(
        'succeeded',
      ),
    ])
    .where('n.created_at', '>=', since)
    .where('n.created_at', '<', until)
    .groupBy('n.client_id')
    .orderBy(sql`count(*) filter (where n.status = 'failed')`, 'desc')
    .orderBy(sql`count(*)`, 'desc')
    .limit(MAX_CLIENT_ROWS)
    .execute();
  return rows.map((row) => ({
    clientId: row.client_id,
    clientName: row.client_name,
    accepted: Number(row.accepted),
    sent: Number(row.sent),
    failed: Number(row.failed),
    successRatePercent: rate(Number(row.succeeded), Number(row.failed)),
  }));
}

export async function readOutcomeWindows(
  db: Kysely<Database>,
  query: OutcomeWindowQuery,
  now: Date,
): Promise<OutcomeWindows> {
  const since = new Date(now.getTime() - query.hours * 3_600_000);
  const [current, previous, byClient] = await Promise.all([
    window(db, now, query.hours),
    query.compare === 'yesterday'
      ? window(db, new Date(now.getTime() - DAY_MS), query.hours)
      : null,
    query.byClient ? readClientOutcomes(db, since, now) : null,
  ]);
  return { current, previous, byClient };
}
