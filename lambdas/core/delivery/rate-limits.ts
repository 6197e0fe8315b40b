/**
 * Rate limits shared by every concurrent worker, kept in PostgreSQL: a token bucket per sender
 * phone number with per-minute and daily caps, and a minimum spacing per recipient.
 */
import { type Kysely, sql } from 'kysely';
import type { Database } from '#core/db/schema.ts';

export interface BucketLimits {
  ratePerSecond: number;
  perMinuteCap: number | null;
  dailyCap: number | null;
  /** Tokens this take must leave in the bucket (the share kept for high priority; issue 16). */
  reserveTokens?: number;
}

export interface TokenGrant {
  circuitOpen: boolean;
  granted: number;
  /** Tokens left in the bucket before this take. */
  available: number;
  minuteUsed: number;
  dayUsed: number;
}

/**
 * Takes up to `wanted` send permits for one sender in one statement. The row lock (`for update`)
 * makes concurrent workers queue on the bucket, so together they never exceed the rate or a cap.
 * The bucket holds one second of tokens and refills continuously; counters reset on the minute
 * and the UTC day. Nothing is taken while the circuit is open.
 */
export async function takeSendTokens(
  db: Kysely<Database>,
  senderId: string,
  wanted: number,
  limits: BucketLimits,
): Promise<TokenGrant> {
  const result = await sql<{
    circuit: 'open' | 'closed';
    granted: number;
    available: number;
    minute_used: number;
    day_used: number;
  }>`
    with cur as (
      select sender_id, circuit,
        least(${limits.ratePerSecond}::float8,
              tokens + extract(epoch from (clock_timestamp() - bucket_at)) * ${limits.ratePerSecond}::float8) as available,
        case when minute_start < date_trunc('minute', clock_timestamp()) then 0 else minute_count end as minute_used,
        case when day_start < date_trunc('day', clock_timestamp()) then 0 else day_count end as day_used
      from sender_state where sender_id = ${senderId}
      for update
    ), granted as (
      select cur.*,
        case when circuit = 'open' then 0 else greatest(0, least(
          ${wanted}::int,
          floor(available - ${limits.reserveTokens ?? 0}::float8)::int,
          coalesce(${limits.perMinuteCap}::int - minute_used, ${wanted}::int),
          coalesce(${limits.dailyCap}::int - day_used, ${wanted}::int)
        )) end as n
      from cur
    )
    update sender_state s set
      tokens = g.available - g.n,
      bucket_at = clock_timestamp(),
      minute_start = date_trunc('minute', clock_timestamp()),
      minute_count = g.minute_used + g.n,
      day_start = date_trunc('day', clock_timestamp()),
      day_count = g.day_used + g.n
    from granted g
    where s.sender_id = g.sender_id
    returning g.circuit, g.n as granted, g.available, g.minute_used, g.day_used`.execute(db);
  const row = result.rows[0];
  if (!row) throw new Error(`sender ${senderId} has no state row; call ensureSender first`);
  return {
    circuitOpen: row.circuit === 'open',
    granted: Number(row.granted),
    available: Number(row.available),
    minuteUsed: Number(row.minute_used),
    dayUsed: Number(row.day_used),
  };
}

/**
 * Claims a send slot for each recipient whose last send is at least `spacingSeconds` old, in one
 * statement; returns the notification ids that got one. The upsert's conflict lock makes two
 * workers racing for one recipient get one slot between them. A retry of the notification that
 * holds the slot passes: its failed attempt reached nobody, and its backoff already spaces it.
 */
export async function claimRecipientSlots(
  db: Kysely<Database>,
  candidates: readonly { id: string; recipient: string }[],
  spacingSeconds: number,
): Promise<Set<string>> {
  const firstPerRecipient = new Map<string, string>();
  for (const c of candidates)
    if (!firstPerRecipient.has(c.recipient)) firstPerRecipient.set(c.recipient, c.id);
  if (firstPerRecipient.size === 0) return new Set();
  if (spacingSeconds <= 0) return new Set(firstPerRecipient.values());
  const recipients = [...firstPerRecipient.keys()];
  const ids = [...firstPerRecipient.values()];
  const result = await sql<{ notification_id: string }>`
    insert into recipient_pacing as p (recipient, last_sent_at, notification_id)
    select r, clock_timestamp(), n from unnest(${sql.val(recipients)}::text[], ${sql.val(ids)}::uuid[]) as t(r, n)
    on conflict (recipient) do update
      set last_sent_at = excluded.last_sent_at, notification_id = excluded.notification_id
      where p.last_sent_at <= clock_timestamp() - make_interval(secs => ${spacingSeconds})
         or p.notification_id = excluded.notification_id
    returning notification_id`.execute(db);
  return new Set(result.rows.map((r) => r.notification_id));
}

/**
 * Returns `count` permits taken by `takeSendTokens` that were not used. The minute and day
 * counters only go down while they still count the period the permits were taken in.
 */
export async function returnSendTokens(
  db: Kysely<Database>,
  senderId: string,
  count: number,
  ratePerSecond: number,
): Promise<void> {
  if (count <= 0) return;
  await sql`
    update sender_state set
      tokens = least(${ratePerSecond}::float8, tokens + ${count}::int),
      minute_count = case when minute_start = date_trunc('minute', clock_timestamp())
        then greatest(0, minute_count - ${count}::int) else minute_count end,
      day_count = case when day_start = date_trunc('day', clock_timestamp())
        then greatest(0, day_count - ${count}::int) else day_count end
    where sender_id = ${senderId}`.execute(db);
}

/**
 * Frees the recipient slots these notifications hold when they were not sent after all. Safe to
 * forget the row: a slot is only granted once the previous send is at least the spacing old.
 */
export async function releaseRecipientSlots(
  db: Kysely<Database>,
  slots: readonly { id: string; recipient: string }[],
): Promise<void> {
  if (slots.length === 0) return;
  // By recipient (the key); a notification has one recipient, so the pair matches one row.
  await db
    .deleteFrom('recipient_pacing')
    .where(
      'recipient',
      'in',
      slots.map((s) => s.recipient),
    )
    .where(
      'notification_id',
      'in',
      slots.map((s) => s.id),
    )
    .execute();
}

/** Seconds until the bucket holds `missing` more tokens. */
export function secondsUntilTokens(missing: number, ratePerSecond: number): number {
  return Math.max(1, Math.ceil(missing / ratePerSecond));
}

export function startOfNextUtcDay(now: Date): Date {
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1));
}

export function secondsToNextMinute(now: Date): number {
  return Math.max(1, 60 - now.getUTCSeconds());
}
