/**
 * The first admin key of a deployed stage. Every key is created through the admin API, which
 * needs an admin key; this one comes from invoking the migrate function with
 * `{"action": "create-admin-key", "name": "..."}`, which only an AWS principal allowed to invoke
 * it can do. The key is in the answer once, and the audit log records who made it.
 *
 * Only the first (issue 16): while an admin key works, the invocation is refused, so the migrate
 * function is not a standing admin-key mint. When every admin is locked out (keys lost, expired),
 * `breakGlass: true` with a reason mints one anyway, and that is loud: a `key.break_glass` audit
 * entry, the AdminKeyBreakGlass metric and its alarm (runbooks/security.md).
 */
import { type Kysely, sql } from 'kysely';
import * as z from 'zod';
import { createApiClient } from '#core/admin/api-keys.ts';
import type { Database } from '#core/db/schema.ts';
import { inTransaction } from '#core/db/transaction.ts';
import { writeAudit } from '#core/notifications/audit.ts';

export const bootstrapKeyEventSchema = z
  .strictObject({
    action: z.literal('create-admin-key'),
    /** Who the key is for: a person or a team, kept as the client's name. */
    name: z.string().trim().min(1).max(100),
    /** Mint even though an admin key works: for when nobody can use the ones that exist. */
    breakGlass: z.literal(true).optional(),
    /** Why, for the audit log; required with breakGlass. */
    reason: z.string().trim().min(1).max(300).optional(),
  })
  .refine((e) => !e.breakGlass || e.reason !== undefined, {
    message: 'breakGlass needs a reason',
  });

/** Refused: an admin key still works and no break-glass was asked for. */
export class AdminKeyExistsError extends Error {
  constructor(prefixes: readonly string[]) {
    super(
      `an active admin key exists (${prefixes.join(', ')}): create keys with it through the admin API (ops keys create), or, if nobody can use it, invoke again with "breakGlass": true and a "reason" (audited, and it alarms)`,
    );
    this.name = 'AdminKeyExistsError';
  }
}

/** Any constant: only bootstrap takes it, so two invocations cannot both see no admin key. */
const BOOTSTRAP_LOCK_KEY = 7_362_019_612;

export type BootstrapKeyEvent = z.infer<typeof bootstrapKeyEventSchema>;

export interface BootstrapKeyResult {
  key: string;
  prefix: string;
  scopes: string[];
  /** True when an admin key already worked and this one was minted by break-glass. */
  breakGlass: boolean;
}

export function isBootstrapKeyEvent(event: unknown): boolean {
  return (
    typeof event === 'object' &&
    event !== null &&
    (event as { action?: unknown }).action === 'create-admin-key'
  );
}

export async function createBootstrapAdminKey(
  db: Kysely<Database>,
  event: unknown,
  requestId: string | undefined,
): Promise<BootstrapKeyResult> {
  const parsed = bootstrapKeyEventSchema.safeParse(event);
  if (!parsed.success) {
    throw new Error(
      'create-admin-key needs {"action": "create-admin-key", "name": "<who>"} (and "reason" with "breakGlass": true)',
    );
  }
  const { name, breakGlass, reason } = parsed.data;
  return inTransaction(db, async (trx) => {
    await sql`select pg_advisory_xact_lock(${BOOTSTRAP_LOCK_KEY})`.execute(trx);
    const active = await activeAdminKeys(trx);
    if (active.length > 0 && !breakGlass) throw new AdminKeyExistsError(active);
    const isBreakGlass = active.length > 0;
    const created = await createApiClient(trx, { name, scopes: ['admin'] });
    await writeAudit(trx, {
      actor: 'aws:lambda-invoke',
      action: isBreakGlass ? 'key.break_glass' : 'key.create',
      outcome: 'ok',
      requestId,
      detail: {
        via: 'migrate-function',
        name,
        prefix: created.prefix,
        scopes: created.scopes,
        ...(isBreakGlass ? { reason, activeAdminKeys: active } : {}),
      },
    });
    return {
      key: created.key,
      prefix: created.prefix,
      scopes: created.scopes,
      breakGlass: isBreakGlass,
    };
  });
}

/** Prefixes of the admin keys that work now (not revoked, not expired). */
async function activeAdminKeys(db: Kysely<Database>): Promise<string[]> {
  const rows = await db
    .selectFrom('api_keys')
    .select('prefix')
    .where(sql<boolean>`'admin' = any(scopes)`)
    .where((eb) => eb.or([eb('revoked_at', 'is', null), eb('revoked_at', '>', sql<Date>`now()`)]))
    .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', sql<Date>`now()`)]))
    .orderBy('created_at')
    .execute();
  return rows.map((r) => r.prefix);
}
