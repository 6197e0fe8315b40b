/**
 * A client's default fallback: the delay a notification of this client gets when it names none.
 * Set or cleared by an admin, audited in the same transaction as the change.
 */
import type { Kysely } from 'kysely';
import type { Database } from '#core/db/schema.ts';
import { inTransaction } from '#core/db/transaction.ts';
import { writeAudit } from '#core/notifications/audit.ts';
import type { AdminActor } from './keys.ts';

export interface ClientFallback {
  clientId: string;
  name: string;
  /** Null: notifications of this client carry a fallback only when they ask for one. */
  fallbackAfterSeconds: number | null;
}

/** Undefined when there is no such client (nothing is written then). */
export async function setClientFallback(
  db: Kysely<Database>,
  by: AdminActor,
  input: { clientId: string; afterSeconds: number | null },
): Promise<ClientFallback | undefined> {
  return inTransaction(db, async (trx) => {
    const updated = await trx
      .updateTable('api_clients')
      .set({ fallback_after_seconds: input.afterSeconds })
      .where('id', '=', input.clientId)
      .returning(['id', 'name', 'fallback_after_seconds'])
      .executeTakeFirst();
    if (!updated) return undefined;
    await writeAudit(trx, {
      ...by,
      action: 'client.fallback',
      outcome: 'ok',
      detail: { clientId: input.clientId, fallbackAfterSeconds: input.afterSeconds },
    });
    return {
      clientId: updated.id,
      name: updated.name,
      fallbackAfterSeconds: updated.fallback_after_seconds,
    };
  });
}
