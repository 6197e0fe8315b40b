/**
 * API keys: shown once at creation, stored as a SHA-256 hash, found by a non-secret prefix,
 * compared in constant time, scoped, revocable and rotatable. A key is never logged; its prefix is.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { ApiScope, Database } from '#core/db/schema.ts';
import { inTransaction } from '#core/db/transaction.ts';
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
  | { ok: true; clientId: string; keyId: string; prefix: string; scopes: ApiScope[] }
  | { ok: false; reason: 'missing' | 'malformed' | 'unknown' | 'revoked'; prefix?: string };

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
    .select(['id', 'client_id', 'key_hash', 'scopes', 'revoked_at', 'last_used_at'])
    .where('prefix', '=', prefix)
    .executeTakeFirst();
  const expected = Buffer.from(row?.key_hash ?? '0'.repeat(64), 'hex');
  const actual = Buffer.from(hashApiKey(presented), 'hex');
  // Compare even when the prefix is unknown, so timing does not tell a real prefix from a made-up one.
  const matches = timingSafeEqual(expected, actual) && row !== undefined;
  if (!row || !matches) return { ok: false, reason: 'unknown', prefix };
  if (row.revoked_at && row.revoked_at.getTime() <= now.getTime()) {
    return { ok: false, reason: 'revoked', prefix };
  }
  if (
    !row.last_used_at ||
    now.getTime() - row.last_used_at.getTime() > LAST_USED_GRANULARITY_SECONDS * 1000
  ) {
    await db.updateTable('api_keys').set({ last_used_at: now }).where('id', '=', row.id).execute();
  }
  return { ok: true, clientId: row.client_id, keyId: row.id, prefix, scopes: row.scopes };
}

export interface CreatedKey {
  clientId: string;
  keyId: string;
  key: string;
  prefix: string;
  scopes: ApiScope[];
}

/** Creates an API client with its first key. */
export async function createApiClient(
  db: Kysely<Database>,
  input: { name: string; scopes: ApiScope[] },
): Promise<CreatedKey> {
  const clientId = uuidv7();
  return inTransaction(db, async (trx) => {
    await trx.insertInto('api_clients').values({ id: clientId, name: input.name }).execute();
    return insertKey(trx, clientId, input.scopes);
  });
}

async function insertKey(
  db: Kysely<Database>,
  clientId: string,
  scopes: ApiScope[],
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
    })
    .execute();
  return { clientId, keyId, key: generated.key, prefix: generated.prefix, scopes };
}

/**
 * Issues a new key for the same client (same scopes) and lets the old one live for a grace period,
 * so callers can switch without an outage. Returns undefined for an unknown or revoked prefix.
 */
export async function rotateApiKey(
  db: Kysely<Database>,
  prefix: string,
  graceSeconds: number,
  now: Date,
): Promise<(CreatedKey & { oldKeyExpiresAt: Date }) | undefined> {
  return inTransaction(db, async (trx) => {
    const old = await trx
      .selectFrom('api_keys')
      .select(['id', 'client_id', 'scopes', 'revoked_at'])
      .where('prefix', '=', prefix)
      .forUpdate()
      .executeTakeFirst();
    if (!old || (old.revoked_at && old.revoked_at <= now)) return undefined;
    const oldKeyExpiresAt = new Date(now.getTime() + graceSeconds * 1000);
    await trx
      .updateTable('api_keys')
      .set({ revoked_at: oldKeyExpiresAt })
      .where('id', '=', old.id)
      .execute();
    const created = await insertKey(trx, old.client_id, old.scopes);
    return { ...created, oldKeyExpiresAt };
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
  lastUsedAt: Date | null;
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
      'api_keys.last_used_at',
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
    lastUsedAt: r.last_used_at,
  }));
}
