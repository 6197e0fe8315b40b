/**
 * Per-client limits and key expiry (issue 16): each API client can have its own acceptance rate,
 * daily quota and highest priority, with the rate and quota state kept on the client's row so
 * every API instance counts against the same numbers; and a key can carry an expiry date.
 */
import { type Kysely, sql } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: a migration must not depend on today's schema types
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable('api_clients')
    // The limits, set with the key; null means no limit of that kind.
    .addColumn('rate_per_second', 'float8', (c) =>
      c.check(sql`rate_per_second is null or rate_per_second > 0`),
    )
    .addColumn('daily_quota', 'integer', (c) =>
      c.check(sql`daily_quota is null or daily_quota >= 0`),
    )
    .addColumn('max_priority', 'text', (c) =>
      c.check(sql`max_priority is null or max_priority in ('high', 'bulk')`),
    )
    // The state: a token bucket (null tokens: full, the client has not been counted yet) and the
    // UTC day's count.
    .addColumn('quota_tokens', 'float8')
    .addColumn('quota_bucket_at', 'timestamptz')
    .addColumn('quota_day', 'date')
    .addColumn('quota_day_count', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
  await db.schema.alterTable('api_keys').addColumn('expires_at', 'timestamptz').execute();

  // The API takes from the bucket and the day's count on every accept of a limited client; it
  // creates clients (already granted INSERT) but changes no other column of them.
  await sql`grant update (quota_tokens, quota_bucket_at, quota_day, quota_day_count) on table api_clients to notif_api`.execute(
    db,
  );
}

// biome-ignore lint/suspicious/noExplicitAny: see up()
export async function down(db: Kysely<any>): Promise<void> {
  await sql`revoke update (quota_tokens, quota_bucket_at, quota_day, quota_day_count) on table api_clients from notif_api`.execute(
    db,
  );
  await db.schema.alterTable('api_keys').dropColumn('expires_at').execute();
  for (const column of [
    'quota_day_count',
    'quota_day',
    'quota_bucket_at',
    'quota_tokens',
    'max_priority',
    'daily_quota',
    'rate_per_second',
  ]) {
    await db.schema.alterTable('api_clients').dropColumn(column).execute();
  }
}
