/**
 * A client's limits changed after its first key: rate, daily quota and highest priority, each set,
 * removed (null) or left as it is (absent), with the `client.limits` audit entry (from → to)
 * written by the same database function, so no change goes unrecorded (migration 0014).
 */
import { type Kysely, sql } from 'kysely';
import type { Database } from '#core/db/schema.ts';
import type { ClientLimits } from '#core/notifications/client-quota.ts';
import type { AdminActor } from './keys.ts';

/** The limits to change: a given field is set (null removes that limit), a missing one is kept. */
export type ClientLimitsChange = Partial<ClientLimits>;

export interface ClientLimitsChanged {
  clientId: string;
  name: string;
  from: ClientLimits;
  to: ClientLimits;
}

/** Undefined when there is no such client (nothing is written then). */
export async function setClientLimits(
  db: Kysely<Database>,
  by: AdminActor,
  input: { clientId: string; change: ClientLimitsChange },
): Promise<ClientLimitsChanged | undefined> {
  // JSON.stringify drops undefined fields, so "left out" stays left out and null stays null.
  const changes = JSON.stringify({
    ratePerSecond: input.change.ratePerSecond,
    dailyQuota: input.change.dailyQuota,
    maxPriority: input.change.maxPriority,
  });
  const result = await sql<{ changed: ClientLimitsChanged | null }>`
    select set_client_limits(${input.clientId}::uuid, ${changes}::jsonb, ${by.actor},
      ${by.requestId}, ${by.sourceIp}) as changed`.execute(db);
  return result.rows[0]?.changed ?? undefined;
}
