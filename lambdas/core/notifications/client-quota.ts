/**
 * Per-client acceptance limits (issue 16): a token bucket (the key's rate, with a burst of
 * BURST_SECONDS of it) and a quota per UTC day, counted on the client's row in PostgreSQL so
 * every API instance takes from the same numbers, and answered with the RateLimit and
 * RateLimit-Policy fields of draft-ietf-httpapi-ratelimit-headers-11.
 *
 * Why the database and not a bucket per Lambda instance: API Gateway spreads one client's calls
 * over however many instances are warm (one per concurrent request), so a per-instance bucket of
 * rate r lets a client through at up to r × instances, which is exactly the unfairness this fixes.
 * The row lock costs one statement per accept, and only for clients that have a limit.
 */
import { type Kysely, sql } from 'kysely';
import type { Database } from '#core/db/schema.ts';
import type { Priority } from '#core/model/notification-request.ts';

/** A client's limits; null means none of that kind. */
export interface ClientLimits {
  /** Notifications accepted per second, sustained. */
  ratePerSecond: number | null;
  /** Notifications accepted per UTC day. */
  dailyQuota: number | null;
  /** The highest priority the client may ask for; a higher one is refused (403), not lowered. */
  maxPriority: Priority | null;
}

export const NO_LIMITS: ClientLimits = { ratePerSecond: null, dailyQuota: null, maxPriority: null };

/** The bucket holds this many seconds of the rate: what a client that was idle can send at once. */
export const BURST_SECONDS = 10;

const DAY_SECONDS = 86_400;

export function hasCountedLimits(limits: ClientLimits): boolean {
  return limits.ratePerSecond !== null || limits.dailyQuota !== null;
}

/** The bucket's size: BURST_SECONDS of the rate, and never less than one notification. */
export function bucketCapacity(ratePerSecond: number): number {
  return Math.max(1, ratePerSecond * BURST_SECONDS);
}

/** Whether a priority is within the client's maximum (high is above bulk). */
export function priorityAllowed(limits: ClientLimits, priority: Priority): boolean {
  return limits.maxPriority !== 'bulk' || priority === 'bulk';
}

/** What one take left behind: counts after the take. */
export interface QuotaTake {
  wanted: number;
  granted: number;
  /** Tokens left in the bucket after the take; null without a rate. */
  tokensLeft: number | null;
  /** Notifications counted today after the take. */
  dayUsed: number;
}

/**
 * Takes up to `wanted` acceptances for a client in one statement, under the client row's lock: at
 * most the whole tokens in the bucket and what is left of today's quota. The limits are read from
 * the row itself, so a take never uses limits older than the statement. `now` is the API's clock
 * (a bucket time never moves backwards, so two instances' skew cannot mint tokens).
 */
export async function takeClientQuota(
  db: Kysely<Database>,
  clientId: string,
  wanted: number,
  now: Date,
): Promise<QuotaTake & { limits: ClientLimits }> {
  const result = await sql<{
    granted: number;
    available: number | null;
    day_used: number;
    rate_per_second: number | null;
    daily_quota: number | null;
    max_priority: Priority | null;
  }>`
    with cur as (
      select id, rate_per_second, daily_quota, max_priority,
        case when rate_per_second is null then null else least(
          greatest(1, rate_per_second * ${BURST_SECONDS}::float8),
          coalesce(
            quota_tokens + greatest(0, extract(epoch from (${now}::timestamptz - quota_bucket_at))) * rate_per_second,
            greatest(1, rate_per_second * ${BURST_SECONDS}::float8))
        ) end as available,
        case when quota_day = (${now}::timestamptz at time zone 'UTC')::date then quota_day_count else 0 end as day_used
      from api_clients where id = ${clientId}
      for update
    ), g as (
      select cur.*, greatest(0, least(
        ${wanted}::int,
        coalesce(floor(available)::int, ${wanted}::int),
        coalesce(daily_quota - day_used, ${wanted}::int)
      )) as n
      from cur
    )
    update api_clients c set
      quota_tokens = g.available - g.n,
      quota_bucket_at = greatest(coalesce(c.quota_bucket_at, ${now}::timestamptz), ${now}::timestamptz),
      quota_day = (${now}::timestamptz at time zone 'UTC')::date,
      quota_day_count = g.day_used + g.n
    from g
    where c.id = g.id
    returning g.n as granted, g.available, g.day_used,
      g.rate_per_second, g.daily_quota, g.max_priority`.execute(db);
  const row = result.rows[0];
  if (!row) throw new Error(`API client ${clientId} does not exist`);
  const granted = Number(row.granted);
  return {
    wanted,
    granted,
    tokensLeft: row.available === null ? null : Number(row.available) - granted,
    dayUsed: Number(row.day_used) + granted,
    limits: {
      ratePerSecond: row.rate_per_second === null ? null : Number(row.rate_per_second),
      dailyQuota: row.daily_quota === null ? null : Number(row.daily_quota),
      maxPriority: row.max_priority,
    },
  };
}

/**
 * Gives back acceptances a take counted that were not used (an idempotent replay stores nothing
 * new). The day's count only goes down while it still counts the day they were taken on.
 */
export async function returnClientQuota(
  db: Kysely<Database>,
  clientId: string,
  count: number,
  now: Date,
): Promise<void> {
  if (count <= 0) return;
  await sql`
    update api_clients set
      quota_tokens = case when rate_per_second is null or quota_tokens is null then quota_tokens
        else least(greatest(1, rate_per_second * ${BURST_SECONDS}::float8), quota_tokens + ${count}::int) end,
      quota_day_count = case when quota_day = (${now}::timestamptz at time zone 'UTC')::date
        then greatest(0, quota_day_count - ${count}::int) else quota_day_count end
    where id = ${clientId}`.execute(db);
}

export function secondsToNextUtcDay(now: Date): number {
  const next = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1);
  return Math.max(1, Math.ceil((next - now.getTime()) / 1000));
}

/** What the answer says about the limits: its headers, and when a refusal may be retried. */
export interface QuotaAnswer {
  /** `RateLimit-Policy` and `RateLimit` (draft -11), and `Retry-After` when something was refused. */
  headers: Record<string, string>;
  /** Which limit refused the rest, when `granted < wanted`. */
  refusedBy: 'rate' | 'daily' | null;
  retryAfterSeconds: number | null;
}

/**
 * Pure: the header fields for a take. A policy is named `"rate"` (q = the bucket, w = the seconds
 * an empty bucket takes to fill) or `"daily"` (q = the quota, w = a day); `r` is what is left and
 * `t` the seconds until it is all back. When items were refused, the quota wins over the rate if
 * it is spent (no wait for tokens helps before the UTC day turns), else Retry-After is the wait
 * for the tokens the refused items (up to a bucket) need.
 */
export function quotaAnswer(limits: ClientLimits, take: QuotaTake, now: Date): QuotaAnswer {
  const policies: string[] = [];
  const states: string[] = [];
  const rate = limits.ratePerSecond;
  const tokensLeft = take.tokensLeft ?? 0;
  if (rate !== null) {
    const capacity = bucketCapacity(rate);
    const refill = Math.max(0, Math.ceil((capacity - tokensLeft) / rate));
    policies.push(`"rate";q=${Math.floor(capacity)};w=${Math.ceil(capacity / rate)}`);
    states.push(`"rate";r=${Math.max(0, Math.floor(tokensLeft))};t=${refill}`);
  }
  const quota = limits.dailyQuota;
  const dailyLeft = quota === null ? null : Math.max(0, quota - take.dayUsed);
  if (quota !== null) {
    policies.push(`"daily";q=${quota};w=${DAY_SECONDS}`);
    states.push(`"daily";r=${dailyLeft};t=${secondsToNextUtcDay(now)}`);
  }
  const headers: Record<string, string> = {};
  if (policies.length > 0) {
    headers['ratelimit-policy'] = policies.join(', ');
    headers.ratelimit = states.join(', ');
  }
  if (take.granted >= take.wanted) return { headers, refusedBy: null, retryAfterSeconds: null };
  let refusedBy: 'rate' | 'daily';
  let retryAfterSeconds: number;
  if (dailyLeft === 0 || rate === null) {
    refusedBy = 'daily';
    retryAfterSeconds = secondsToNextUtcDay(now);
  } else {
    refusedBy = 'rate';
    const needed = Math.min(take.wanted - take.granted, Math.floor(bucketCapacity(rate)));
    retryAfterSeconds = Math.max(1, Math.ceil((needed - tokensLeft) / rate));
  }
  headers['retry-after'] = String(retryAfterSeconds);
  return { headers, refusedBy, retryAfterSeconds };
}
