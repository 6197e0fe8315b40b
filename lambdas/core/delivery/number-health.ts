/**
 * The sending number's health as Meta reports it (quality rating, messaging limit tier, throughput,
 * the account's standing), from webhooks and the scheduler's Graph read, and what follows from it:
 * the limiter's default rate and daily cap, a warning when the number slips, and panic mode when
 * the account is restricted or banned.
 */
import type { Kysely } from 'kysely';
import type { Database, NumberHealthRow } from '#core/db/schema.ts';
import { openCircuit } from '#core/delivery/panic-mode.ts';
import type { Rollout } from '#core/delivery/rollout.ts';

export interface NumberHealth {
  senderId: string;
  qualityRating: string | null;
  messagingLimit: string | null;
  throughputLevel: string | null;
  accountState: string;
  accountDetail: string | null;
  source: string;
  checkedAt: string | null;
  updatedAt: string;
}

/** What one webhook or Graph read says; absent fields are left as they were. */
export interface HealthReading {
  qualityRating?: string;
  messagingLimit?: string;
  throughputLevel?: string;
  accountState?: string;
  accountDetail?: string | null;
}

/** Meta's throughput levels, in messages per second (whatsapp-cloud-api.md, Limits). */
export const THROUGHPUT_RATES: Record<string, number> = { STANDARD: 80, HIGH: 1000 };

/** Business-initiated conversations a tier allows in 24 h; null: no limit. */
export const TIER_LIMITS: Record<string, number | null> = {
  TIER_50: 50,
  TIER_250: 250,
  TIER_2K: 2_000,
  TIER_10K: 10_000,
  TIER_100K: 100_000,
  TIER_UNLIMITED: null,
};

const TIER_BY_NUMBER: Record<string, string> = {
  '50': 'TIER_50',
  '250': 'TIER_250',
  '2000': 'TIER_2K',
  '10000': 'TIER_10K',
  '100000': 'TIER_100K',
  '-1': 'TIER_UNLIMITED',
};

/** A tier as Meta writes it in one place or another (`TIER_2K`, `2000`, `-1`), or undefined. */
export function normaliseTier(value: unknown): string | undefined {
  if (typeof value === 'number' || (typeof value === 'string' && /^-?\d+$/.test(value))) {
    return TIER_BY_NUMBER[String(value)];
  }
  if (typeof value === 'string' && /^TIER_[A-Z0-9_]{1,20}$/.test(value)) return value;
  return undefined;
}

const TIER_ORDER = ['TIER_50', 'TIER_250', 'TIER_2K', 'TIER_10K', 'TIER_100K', 'TIER_UNLIMITED'];
const LOW_QUALITY = new Set(['RED', 'FLAGGED']);

/** The limits the gates apply to one sender: the operator's where set, else what the number allows. */
export interface EffectiveLimits {
  ratePerSecond: number;
  rateSource: 'operator' | 'meta' | 'default';
  perMinuteCap: number | null;
  dailyCap: number | null;
  dailyCapSource: 'operator' | 'meta' | 'none';
}

export function effectiveLimits(rollout: Rollout, health: NumberHealth | null): EffectiveLimits {
  const metaRate = health?.throughputLevel ? THROUGHPUT_RATES[health.throughputLevel] : undefined;
  const rate: Pick<EffectiveLimits, 'ratePerSecond' | 'rateSource'> = rollout.rateByHand
    ? { ratePerSecond: rollout.ratePerSecond, rateSource: 'operator' }
    : metaRate
      ? { ratePerSecond: metaRate, rateSource: 'meta' }
      : { ratePerSecond: rollout.ratePerSecond, rateSource: 'default' };
  const tier = health?.messagingLimit;
  const tierCap = tier && tier in TIER_LIMITS ? TIER_LIMITS[tier]! : null;
  const cap: Pick<EffectiveLimits, 'dailyCap' | 'dailyCapSource'> =
    rollout.dailyCap !== null
      ? { dailyCap: rollout.dailyCap, dailyCapSource: 'operator' }
      : tierCap !== null
        ? { dailyCap: tierCap, dailyCapSource: 'meta' }
        : { dailyCap: null, dailyCapSource: 'none' };
  return { ...rate, perMinuteCap: rollout.perMinuteCap, ...cap };
}

function toHealth(row: NumberHealthRow): NumberHealth {
  return {
    senderId: row.sender_id,
    qualityRating: row.quality_rating,
    messagingLimit: row.messaging_limit,
    throughputLevel: row.throughput_level,
    accountState: row.account_state,
    accountDetail: row.account_detail,
    source: row.source,
    checkedAt: row.checked_at?.toISOString() ?? null,
    updatedAt: row.updated_at.toISOString(),
  };
}

export async function readNumberHealth(
  db: Kysely<Database>,
  senderId: string,
): Promise<NumberHealth | null> {
  const row = await db
    .selectFrom('number_health')
    .selectAll()
    .where('sender_id', '=', senderId)
    .executeTakeFirst();
  return row ? toHealth(row) : null;
}

export async function listNumberHealth(db: Kysely<Database>): Promise<NumberHealth[]> {
  const rows = await db.selectFrom('number_health').selectAll().orderBy('sender_id').execute();
  return rows.map(toHealth);
}

/** A number's health read through a cache, as the worker reads the rollout. */
export function cachedNumberHealth(
  db: Kysely<Database>,
  senderId: string,
  ttlMs = 5_000,
  clock: () => number = Date.now,
) {
  let value: NumberHealth | null = null;
  let fetchedAt = Number.NEGATIVE_INFINITY;
  return async (): Promise<NumberHealth | null> => {
    if (clock() - fetchedAt > ttlMs) {
      value = await readNumberHealth(db, senderId);
      fetchedAt = clock();
    }
    return value;
  };
}

/** Why the number's standing got worse between two readings (each raises NumberHealthWarnings). */
export function healthWarnings(before: NumberHealth | null, after: NumberHealth): string[] {
  const warnings: string[] = [];
  if (
    after.qualityRating &&
    LOW_QUALITY.has(after.qualityRating) &&
    !LOW_QUALITY.has(before?.qualityRating ?? '')
  ) {
    warnings.push(`quality rating dropped to ${after.qualityRating}`);
  }
  const from = TIER_ORDER.indexOf(before?.messagingLimit ?? '');
  const to = TIER_ORDER.indexOf(after.messagingLimit ?? '');
  if (from >= 0 && to >= 0 && to < from) {
    warnings.push(
      `messaging limit lowered from ${before!.messagingLimit} to ${after.messagingLimit}`,
    );
  }
  if (
    after.accountState === 'SCHEDULED_FOR_DISABLE' &&
    before?.accountState !== 'SCHEDULED_FOR_DISABLE'
  ) {
    warnings.push('Meta scheduled the account to be disabled');
  }
  return warnings;
}

/**
 * Stores a reading over the sender's row (fields it does not carry stay) and returns the row before
 * and after, with the warnings the change raises.
 */
export async function recordNumberHealth(
  db: Kysely<Database>,
  input: { senderId: string; reading: HealthReading; source: string; checked?: boolean },
): Promise<{ before: NumberHealth | null; after: NumberHealth; warnings: string[] }> {
  return db.transaction().execute(async (trx) => {
    await trx
      .insertInto('number_health')
      .values({ sender_id: input.senderId, source: input.source })
      .onConflict((oc) => oc.column('sender_id').doNothing())
      .execute();
    const row = await trx
      .selectFrom('number_health')
      .selectAll()
      .where('sender_id', '=', input.senderId)
      .forUpdate()
      .executeTakeFirstOrThrow();
    // A row just inserted has nothing in it yet: nothing to compare with.
    const fresh =
      row.quality_rating === null && row.messaging_limit === null && row.throughput_level === null;
    const before = fresh && row.account_state === 'OK' ? null : toHealth(row);
    const r = input.reading;
    const updated = await trx
      .updateTable('number_health')
      .set({
        ...(r.qualityRating !== undefined ? { quality_rating: r.qualityRating.slice(0, 40) } : {}),
        ...(r.messagingLimit !== undefined
          ? { messaging_limit: r.messagingLimit.slice(0, 40) }
          : {}),
        ...(r.throughputLevel !== undefined
          ? { throughput_level: r.throughputLevel.slice(0, 40) }
          : {}),
        ...(r.accountState !== undefined ? { account_state: r.accountState } : {}),
        ...(r.accountDetail !== undefined
          ? { account_detail: r.accountDetail?.slice(0, 500) ?? null }
          : {}),
        ...(input.checked ? { checked_at: new Date() } : {}),
        source: input.source,
        updated_at: new Date(),
      })
      .where('sender_id', '=', input.senderId)
      .returningAll()
      .executeTakeFirstOrThrow();
    const after = toHealth(updated);
    return { before, after, warnings: healthWarnings(before, after) };
  });
}

/** What a number or account event says, and whether it stops every business-initiated send. */
export interface EventReading {
  reading: HealthReading;
  /** Set when the account can no longer send notifications: the circuit opens with this reason. */
  blocks?: string;
}

// Restrictions that leave business-initiated template sends alone (whatsapp-events.md, §5).
const HARMLESS_RESTRICTION = /CUSTOMER_INITIATED|ADD_PHONE_NUMBER|CALL/;

/** Reads a `phone_number_quality_update` or `account_update` value; undefined for other events. */
export function readNumberEvent(
  field: string,
  event: string,
  value: Record<string, unknown>,
): EventReading | undefined {
  if (field === 'phone_number_quality_update') {
    const reading: HealthReading = {};
    const tier = normaliseTier(value.max_daily_conversations_per_business ?? value.current_limit);
    if (tier) reading.messagingLimit = tier;
    if (event === 'THROUGHPUT_UPGRADE') reading.throughputLevel = 'HIGH';
    if (event === 'FLAGGED') reading.qualityRating = 'FLAGGED';
    // Meta does not say what the rating is now; the next Graph read tells.
    if (event === 'UNFLAGGED') reading.qualityRating = 'UNKNOWN';
    return { reading };
  }
  if (field !== 'account_update') return undefined;
  if (event === 'ACCOUNT_RESTRICTION') {
    const items = Array.isArray(value.restriction_info) ? value.restriction_info : [];
    const types = items.flatMap((item) =>
      item &&
      typeof item === 'object' &&
      typeof (item as Record<string, unknown>).restriction_type === 'string'
        ? [String((item as Record<string, unknown>).restriction_type).slice(0, 80)]
        : [],
    );
    const blocking = types.filter((t) => !HARMLESS_RESTRICTION.test(t));
    // Meta gives each restriction an end (unix seconds); the latest tells on-call how long it lasts.
    const ends = items.flatMap((item) => {
      const at =
        item && typeof item === 'object' ? (item as Record<string, unknown>).expiration : undefined;
      return typeof at === 'number' && Number.isFinite(at) && at > 0 && at < 1e11 ? [at] : [];
    });
    const until = ends.length ? ` until ${new Date(Math.max(...ends) * 1000).toISOString()}` : '';
    const detail = `restricted: ${types.join(', ') || 'no type given'}${until}`;
    return {
      reading: { accountState: blocking.length ? 'RESTRICTED' : 'OK', accountDetail: detail },
      ...(blocking.length
        ? { blocks: `Meta restricted the account (${blocking.join(', ')})` }
        : {}),
    };
  }
  if (event === 'DISABLED_UPDATE') {
    const ban = value.ban_info && typeof value.ban_info === 'object' ? value.ban_info : {};
    const state = String((ban as Record<string, unknown>).waba_ban_state ?? '').slice(0, 40);
    const date = String((ban as Record<string, unknown>).waba_ban_date ?? '').slice(0, 40);
    if (state === 'DISABLE') {
      return {
        reading: { accountState: 'BANNED', accountDetail: `disabled ${date}`.trim() },
        blocks: 'Meta disabled (banned) the account',
      };
    }
    if (state === 'SCHEDULE_FOR_DISABLE') {
      return {
        reading: {
          accountState: 'SCHEDULED_FOR_DISABLE',
          accountDetail: `to be disabled ${date}`.trim(),
        },
      };
    }
    // REINSTATE: the account may send again, but the circuit stays for a person to close.
    if (state === 'REINSTATE')
      return { reading: { accountState: 'OK', accountDetail: 'reinstated' } };
  }
  return undefined;
}

/** What the Graph API's phone number node says (status `RESTRICTED` or `BANNED` blocks sends). */
export function readGraphNumber(probe: {
  qualityRating?: string;
  messagingLimit?: string;
  throughputLevel?: string;
  status?: string;
}): EventReading {
  const reading: HealthReading = {};
  if (probe.qualityRating) reading.qualityRating = probe.qualityRating;
  const tier = normaliseTier(probe.messagingLimit);
  if (tier) reading.messagingLimit = tier;
  if (probe.throughputLevel) reading.throughputLevel = probe.throughputLevel;
  if (probe.status === 'FLAGGED') reading.qualityRating = 'FLAGGED';
  if (probe.status === 'RESTRICTED' || probe.status === 'BANNED') {
    const state = probe.status === 'BANNED' ? 'BANNED' : 'RESTRICTED';
    return {
      reading: {
        ...reading,
        accountState: state,
        accountDetail: `phone number status ${probe.status}`,
      },
      blocks: `the Graph API reports the number ${probe.status}`,
    };
  }
  return { reading };
}

/**
 * Applies one reading to a sender: stores it, opens (and holds) the circuit when it blocks sends,
 * and returns the warnings for the NumberHealthWarnings metric.
 */
export async function applyHealthReading(
  db: Kysely<Database>,
  input: {
    senderId: string;
    reading: EventReading;
    source: string;
    actor: string;
    checked?: boolean;
    metrics?: Parameters<typeof openCircuit>[1]['metrics'];
  },
): Promise<{ warnings: string[]; opened: boolean; after: NumberHealth }> {
  const { after, warnings } = await recordNumberHealth(db, {
    senderId: input.senderId,
    reading: input.reading.reading,
    source: input.source,
    ...(input.checked ? { checked: true } : {}),
  });
  let opened = false;
  if (input.reading.blocks) {
    // Held: the phone number node still answers a probe while the account may not send.
    opened = await openCircuit(db, {
      senderId: input.senderId,
      actor: input.actor,
      reason: input.reading.blocks,
      hold: true,
      ...(input.metrics ? { metrics: input.metrics } : {}),
    });
  }
  return { warnings, opened, after };
}
