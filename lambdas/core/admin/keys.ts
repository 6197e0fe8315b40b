/**
 * The admin key actions: create, rotate and revoke an API key, each with its audit entry in the
 * same transaction, so the log never misses a change and never records one that did not happen.
 */
import type { Kysely } from 'kysely';
import type { ApiScope, Database } from '#core/db/schema.ts';
import { inTransaction } from '#core/db/transaction.ts';
import { writeAudit } from '#core/notifications/audit.ts';
import type { ClientLimits } from '#core/notifications/client-quota.ts';
import {
  type CreatedKey,
  createApiClient,
  type RotateResult,
  revokeApiKey,
  rotateApiKey,
} from './api-keys.ts';

/** Who asked: the audit entry's actor, request id and source address. */
export interface AdminActor {
  actor: string;
  requestId: string | null;
  sourceIp: string | null;
}

export async function createKey(
  db: Kysely<Database>,
  by: AdminActor,
  input: { name: string; scopes: ApiScope[]; limits?: ClientLimits; expiresAt?: Date | null },
): Promise<CreatedKey> {
  const scopes = [...new Set(input.scopes)];
  return inTransaction(db, async (trx) => {
    const created = await createApiClient(trx, {
      name: input.name,
      scopes,
      limits: input.limits,
      expiresAt: input.expiresAt,
    });
    await writeAudit(trx, {
      ...by,
      action: 'key.create',
      outcome: 'ok',
      detail: {
        prefix: created.prefix,
        clientId: created.clientId,
        name: input.name,
        scopes,
        ...(input.limits ? { limits: input.limits } : {}),
        expiresAt: created.expiresAt?.toISOString() ?? null,
      },
    });
    return created;
  });
}

/** Nothing is written unless the key is rotated. */
export async function rotateKey(
  db: Kysely<Database>,
  by: AdminActor,
  input: { prefix: string; graceSeconds: number; now: Date; expiresAt?: Date | null },
): Promise<RotateResult> {
  return inTransaction(db, async (trx) => {
    const rotated = await rotateApiKey(
      trx,
      input.prefix,
      input.graceSeconds,
      input.now,
      input.expiresAt,
    );
    if (rotated.kind !== 'rotated') return rotated;
    await writeAudit(trx, {
      ...by,
      action: 'key.rotate',
      outcome: 'ok',
      detail: {
        prefix: input.prefix,
        newPrefix: rotated.prefix,
        clientId: rotated.clientId,
        graceSeconds: input.graceSeconds,
        expiresAt: rotated.expiresAt?.toISOString() ?? null,
      },
    });
    return rotated;
  });
}

/** False when no live key has the prefix (nothing is written then). */
export async function revokeKey(
  db: Kysely<Database>,
  by: AdminActor,
  input: { prefix: string; now: Date },
): Promise<boolean> {
  return inTransaction(db, async (trx) => {
    const revoked = await revokeApiKey(trx, input.prefix, input.now);
    if (revoked) {
      await writeAudit(trx, {
        ...by,
        action: 'key.revoke',
        outcome: 'ok',
        detail: { prefix: input.prefix },
      });
    }
    return revoked;
  });
}
