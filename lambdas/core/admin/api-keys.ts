/**
 * API keys: shown once at creation, stored as a SHA-256 hash, found by a non-secret prefix,
 * compared in constant time, scoped, revocable and rotatable. A key is never logged; its prefix is.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { ApiScope, Database } from '#core/db/schema.ts';
import { inTransaction } from '#core/db/transaction.ts';
import { type ClientLimits, NO_LIMITS } from '#core/notifications/client-quota.ts';
import { uuidv7 } from '#core/platform/ids.ts';

export const API_SCOPES: readonly ApiScope[] = [
  'notifications:write',
  'notifications:read',
  'admin',
];
export const DEFAULT_CLIENT_SCOPES: ApiScope[] = ['notifications:write', 'notifications:read'];

const KEY_PATTERN = /^wn_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$/;

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

/** The prefix of a well-formed key, or undefined: a safe handle to log for a presented key. */
export function apiKeyPrefix(key: string): string | undefined {
  return KEY_PATTERN.exec(key)?.[1];
}

export function generateApiKey(): { key: string; prefix: string; hash: string } {
  const prefix = randomBytes(6).toString('hex');
  const key = `wn_${prefix}_${randomBytes(32).toString('base64url')}`;
  return { key, prefix, hash: hashApiKey(key) };
}

export type AuthResult =
  | {
      ok: true;
      clientId: string;
      keyId: string;
      prefix: string;
      scopes: ApiScope[];
      /** The client's limits, read in the same query. */
      limits: ClientLimits;
    }
  | {
      ok: false;
      reason: 'missing' | 'malformed' | 'unknown' | 'revoked' | 'expired';
      prefix?: string;
    };

const LAST_USED_GRANULARITY_SECONDS = 60;

/** Checks a presented X-API-Key against the stored hash. One query, plus a touch at most once a minute. */
export async function authenticateApiKey(
  db: Kysely<Database>,
  presented: string | undefined,
  now: Date,
): Promise<AuthResult> {
  if (!presented) return { ok: false, reason: 'missing' };
  const prefix = apiKeyPrefix(presented);
  if (!prefix) return { ok: false, reason: 'malformed' };
  const row = await db
    .selectFrom('api_keys')
    .innerJoin('api_clients', 'api_clients.id', 'api_keys.client_id')
    .select([
      'api_keys.id',
      'api_keys.client_id',
      'api_keys.key_hash',
      'api_keys.scopes',
      'api_keys.revoked_at',
      'api_keys.expires_at',
      'api_keys.last_used_at',
      'api_clients.rate_per_second',
      'api_clients.daily_quota',
      'api_clients.max_priority',
    ])
    .where('api_keys.prefix', '=', prefix)
    .executeTakeFirst();
  const expected = Buffer.from(row?.key_hash ?? '0'.repeat(64), 'hex');
  const actual = Buffer.from(hashApiKey(presented), 'hex');
  // Compare even when the prefix is unknown, so timing does not tell a real prefix from a made-up one.
  const matches = timingSafeEqual(expected, actual) && row !== undefined;
  if (!row || !matches) return { ok: false, reason: 'unknown', prefix };
  if (row.revoked_at && row.revoked_at.getTime() <= now.getTime()) {
    return { ok: false, reason: 'revoked', prefix };
  }
  if (row.expires_at && row.expires_at.getTime() <= now.getTime()) {
    return { ok: false, reason: 'expired', prefix };
  }
  if (
    !row.last_used_at ||
    now.getTime() - row.last_used_at.getTime() > LAST_USED_GRANULARITY_SECONDS * 1000
  ) {
    await db.updateTable('api_keys').set({ last_used_at: now }).where('id', '=', row.id).execute();
  }
  return {
    ok: true,
    clientId: row.client_id,
    keyId: row.id,
    prefix,
    scopes: row.scopes,
    limits: {
      ratePerSecond: row.rate_per_second === null ? null : Number(row.rate_per_second),
      dailyQuota: row.daily_quota,
      maxPriority: row.max_priority,
    },
  };
}

export interface CreatedKey {
  clientId: string;
  keyId: string;
  key: string;
  prefix: string;
  scopes: ApiScope[];
  expiresAt: Date | null;
}

/** Creates an API client, with its limits (none by default), and its first key. */
export async function createApiClient(
  db: Kysely<Database>,
  input: {
    name: string;
    scopes: ApiScope[];
    limits?: ClientLimits | undefined;
    expiresAt?: Date | null | undefined;
  },
): Promise<CreatedKey> {
  const clientId = uuidv7();
  const limits = input.limits ?? NO_LIMITS;
  return inTransaction(db, async (trx) => {
    await trx
      .insertInto('api_clients')
      .values({
        id: clientId,
        name: input.name,
        rate_per_second: limits.ratePerSecond,
        daily_quota: limits.dailyQuota,
        max_priority: limits.maxPriority,
      })
      .execute();
    return insertKey(trx, clientId, input.scopes, input.expiresAt ?? null);
  });
}

async function insertKey(
  db: Kysely<Database>,
  clientId: string,
  scopes: ApiScope[],
  expiresAt: Date | null,
): Promise<CreatedKey> {
  const generated = generateApiKey();
  const keyId = uuidv7();
  await db
    .insertInto('api_keys')
    .values({
      id: keyId,
      client_id: clientId,
      prefix: generated.prefix,
      key_hash: generated.hash,
      scopes,
      expires_at: expiresAt,
    })
    .execute();
  return { clientId, keyId, key: generated.key, prefix: generated.prefix, scopes, expiresAt };
}

export type RotateResult =
  | ({ kind: 'rotated'; oldKeyExpiresAt: Date } & CreatedKey)
  /** No key with the prefix works now (unknown, revoked or expired). */
  | { kind: 'not_found' }
  /** The key is already being retired (a rotation's grace period): rotating it again is refused. */
  | { kind: 'expiring'; endsAt: Date };

/**
 * Issues a new key for the same client (same scopes) and lets the old one live for a grace period,
 * so callers can switch without an outage. The grace never outlives the old key's own expiry, and
 * a key already in a grace period is not rotated again: that would extend a key being retired
 * (issue 16). The new key gets the lifetime the old one was created with, or `expiresAt` if given.
 */
export async function rotateApiKey(
  db: Kysely<Database>,
  prefix: string,
  graceSeconds: number,
  now: Date,
  expiresAt?: Date | null,
): Promise<RotateResult> {
  return inTransaction(db, async (trx) => {
    const old = await trx
      .selectFrom('api_keys')
      .select(['id', 'client_id', 'scopes', 'revoked_at', 'expires_at', 'created_at'])
      .where('prefix', '=', prefix)
      .forUpdate()
      .executeTakeFirst();
    if (!old || (old.revoked_at && old.revoked_at <= now)) return { kind: 'not_found' };
    if (old.expires_at && old.expires_at <= now) return { kind: 'not_found' };
    if (old.revoked_at) return { kind: 'expiring', endsAt: old.revoked_at };
    const graceEnd = now.getTime() + graceSeconds * 1000;
    const oldKeyExpiresAt = new Date(
      old.expires_at ? Math.min(graceEnd, old.expires_at.getTime()) : graceEnd,
    );
    await trx
      .updateTable('api_keys')
      .set({ revoked_at: oldKeyExpiresAt })
      .where('id', '=', old.id)
      .execute();
    const lifetime = old.expires_at ? old.expires_at.getTime() - old.created_at.getTime() : null;
    const newExpiry =
      expiresAt !== undefined
        ? expiresAt
        : lifetime === null
          ? null
          : new Date(now.getTime() + lifetime);
    const created = await insertKey(trx, old.client_id, old.scopes, newExpiry);
    return { kind: 'rotated', ...created, oldKeyExpiresAt };
  });
}

/** Revokes a key at once. Returns false when no live key has that prefix. */
export async function revokeApiKey(
  db: Kysely<Database>,
  prefix: string,
  now: Date,
): Promise<boolean> {
  const result = await db
    .updateTable('api_keys')
    .set({ revoked_at: now })
    .where('prefix', '=', prefix)
    .where((eb) => eb.or([eb('revoked_at', 'is', null), eb('revoked_at', '>', now)]))
    .executeTakeFirst();
  return result.numUpdatedRows > 0n;
}

export interface ApiKeySummary {
  prefix: string;
  clientId: string;
  clientName: string;
  scopes: ApiScope[];
  createdAt: Date;
  revokedAt: Date | null;
  expiresAt: Date | null;
  lastUsedAt: Date | null;
  limits: ClientLimits;
}

export async function listApiKeys(db: Kysely<Database>): Promise<ApiKeySummary[]> {
  const rows = await db
    .selectFrom('api_keys')
    .innerJoin('api_clients', 'api_clients.id', 'api_keys.client_id')
    .select([
      'api_keys.prefix',
      'api_keys.client_id',
      'api_clients.name',
      'api_keys.scopes',
      'api_keys.created_at',
      'api_keys.revoked_at',
      'api_keys.expires_at',
      'api_keys.last_used_at',
      'api_clients.rate_per_second',
      'api_clients.daily_quota',
      'api_clients.max_priority',
    ])
    .orderBy('api_keys.created_at')
    .execute();
  return rows.map((r) => ({
    prefix: r.prefix,
    clientId: r.client_id,
    clientName: r.name,
    scopes: r.scopes,
    createdAt: r.created_at,
    revokedAt: r.revoked_at,
    expiresAt: r.expires_at,
    lastUsedAt: r.last_used_at,
    limits: {
      ratePerSecond: r.rate_per_second === null ? null : Number(r.rate_per_second),
      dailyQuota: r.daily_quota,
      maxPriority: r.max_priority,
    },
  }));
}

/**
 * Keys that still work and reach their expiry within `withinDays`: the warning of `ops status`.
 * A key already in a rotation's grace period is left out: its end was chosen, not forgotten.
 */
export async function keysExpiringSoon(
  db: Kysely<Database>,
  now: Date,
  withinDays: number,
): Promise<{ prefix: string; clientName: string; expiresAt: Date }[]> {
  const rows = await db
    .selectFrom('api_keys')
    .innerJoin('api_clients', 'api_clients.id', 'api_keys.client_id')
    .select(['api_keys.prefix', 'api_clients.name', 'api_keys.expires_at'])
    .where('api_keys.revoked_at', 'is', null)
    .where('api_keys.expires_at', '>', now)
    .where('api_keys.expires_at', '<=', new Date(now.getTime() + withinDays * 86_400_000))
    .orderBy('api_keys.expires_at')
    .execute();
  return rows.map((r) => ({ prefix: r.prefix, clientName: r.name, expiresAt: r.expires_at! }));
}

/** A key lives at most this long; anything longer is a key that never expires, said plainly. */
export const MAX_KEY_LIFETIME_DAYS = 730;

/**
 * A key's expiry as given to `keys create --expires` or the admin API: a duration from now
 * (`90d`, `2h`, `30m`) or an ISO 8601 date-time with a zone (`2027-03-01T00:00:00Z`). The answer
 * is a time in the future, at most MAX_KEY_LIFETIME_DAYS away, or a message saying what is wrong.
 */
export function parseKeyExpiry(
  raw: string,
  now: Date,
): { ok: true; expiresAt: Date } | { ok: false; message: string } {
  const text = raw.trim();
  const duration = /^(\d{1,6})([mhd])$/.exec(text);
  let at: number;
  if (duration) {
    const unit = { m: 60_000, h: 3_600_000, d: 86_400_000 }[duration[2] as 'm' | 'h' | 'd'];
    at = now.getTime() + Number(duration[1]) * unit;
  } else if (
    /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2}))?$/.test(text)
  ) {
    // A bare date is midnight UTC of that day; a date-time must say its zone.
    at = Date.parse(text.length === 10 ? `${text}T00:00:00Z` : text);
    const [year, month, day] = text.slice(0, 10).split('-').map(Number) as [number, number, number];
    // Date.parse rolls 2027-02-30 over into March; a day that does not exist is a mistake.
    const real = new Date(Date.UTC(year, month - 1, day));
    if (Number.isNaN(at) || real.getUTCMonth() !== month - 1 || real.getUTCDate() !== day) {
      return { ok: false, message: `${text} is not a valid date` };
    }
  } else {
    return {
      ok: false,
      message: 'expires must be a duration (30m, 2h, 90d) or an ISO date (2027-03-01T00:00:00Z)',
    };
  }
  if (at <= now.getTime()) return { ok: false, message: 'expires must be in the future' };
  if (at > now.getTime() + MAX_KEY_LIFETIME_DAYS * 86_400_000) {
    return { ok: false, message: `expires can be at most ${MAX_KEY_LIFETIME_DAYS}d away` };
  }
  return { ok: true, expiresAt: new Date(at) };
}
