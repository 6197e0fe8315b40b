/**
 * Rollout switches, stored in the database so every worker sees the same ones: the kill switch,
 * dry run, the pilot allow-list, and the sending limits. Workers read them through a short cache.
 */
import type { Kysely } from 'kysely';
import * as z from 'zod';
import type { Database, RolloutSettingsRow } from '#core/db/schema.ts';
import { writeAudit } from '#core/notifications/audit.ts';

export interface Rollout {
  /** Kill switch: false means nothing is sent and rows wait as `deferred`. */
  deliveryEnabled: boolean;
  /** The whole path runs but the send is skipped and the row recorded `skipped`. */
  dryRun: boolean;
  /** E.164 prefixes (`+57`, `+57300`); empty means everyone. Others are `skipped`. */
  pilotPrefixes: string[];
  /** Token bucket refill per sender phone number: Meta's default tier is 80/s, the top one 1,000/s. */
  ratePerSecond: number;
  /**
   * True when an operator set ratePerSecond; otherwise the gates use the rate of the number's
   * throughput level (number-health.ts) and ratePerSecond only while that is unknown.
   */
  rateByHand: boolean;
  perMinuteCap: number | null;
  dailyCap: number | null;
  /** Minimum time between two sends to the same recipient (Meta's pair rate limit). */
  recipientSpacingSeconds: number;
  /** How fast deferred rows are re-queued after panic mode closes or the kill switch is lifted. */
  drainPerSecond: number;
  updatedAt: string;
  updatedBy: string;
}

/** Meta's default throughput per number, and the rate while the number's own is unknown. */
export const DEFAULT_RATE_PER_SECOND = 80;

export const rolloutPatchSchema = z
  .object({
    deliveryEnabled: z.boolean(),
    dryRun: z.boolean(),
    pilotPrefixes: z
      .array(z.string().regex(/^\+\d{1,14}$/, 'a prefix such as +57 or +57300'))
      .max(100),
    // null: follow the number's throughput again (Meta's 80 or 1,000 per second).
    ratePerSecond: z.number().int().min(1).max(1000).nullable(),
    perMinuteCap: z.number().int().min(1).nullable(),
    dailyCap: z.number().int().min(1).nullable(),
    recipientSpacingSeconds: z.number().int().min(0).max(3600),
    drainPerSecond: z.number().int().min(1).max(1000),
  })
  .partial()
  .strict();
export type RolloutPatch = z.infer<typeof rolloutPatchSchema>;

function toRollout(row: RolloutSettingsRow): Rollout {
  return {
    deliveryEnabled: row.delivery_enabled,
    dryRun: row.dry_run,
    pilotPrefixes: row.pilot_prefixes,
    ratePerSecond: row.rate_per_second,
    rateByHand: row.rate_by_hand,
    perMinuteCap: row.per_minute_cap,
    dailyCap: row.daily_cap,
    recipientSpacingSeconds: row.recipient_spacing_seconds,
    drainPerSecond: row.drain_per_second,
    updatedAt: row.updated_at.toISOString(),
    updatedBy: row.updated_by,
  };
}

export async function getRollout(db: Kysely<Database>): Promise<Rollout> {
  const row = await db
    .selectFrom('rollout_settings')
    .selectAll()
    .where('id', '=', 1)
    .executeTakeFirstOrThrow();
  return toRollout(row);
}

/** Changes some switches and audits who changed what, from what, to what. */
export async function updateRollout(
  db: Kysely<Database>,
  patch: RolloutPatch,
  actor: string,
  requestId?: string,
): Promise<Rollout> {
  return db.transaction().execute(async (trx) => {
    const before = toRollout(
      await trx
        .selectFrom('rollout_settings')
        .selectAll()
        .where('id', '=', 1)
        .forUpdate()
        .executeTakeFirstOrThrow(),
    );
    const row = await trx
      .updateTable('rollout_settings')
      .set({
        ...(patch.deliveryEnabled !== undefined ? { delivery_enabled: patch.deliveryEnabled } : {}),
        ...(patch.dryRun !== undefined ? { dry_run: patch.dryRun } : {}),
        ...(patch.pilotPrefixes !== undefined ? { pilot_prefixes: patch.pilotPrefixes } : {}),
        // A number is the operator's rate; null hands the rate back to the number's throughput.
        ...(patch.ratePerSecond !== undefined
          ? {
              rate_per_second: patch.ratePerSecond ?? DEFAULT_RATE_PER_SECOND,
              rate_by_hand: patch.ratePerSecond !== null,
            }
          : {}),
        ...(patch.perMinuteCap !== undefined ? { per_minute_cap: patch.perMinuteCap } : {}),
        ...(patch.dailyCap !== undefined ? { daily_cap: patch.dailyCap } : {}),
        ...(patch.recipientSpacingSeconds !== undefined
          ? { recipient_spacing_seconds: patch.recipientSpacingSeconds }
          : {}),
        ...(patch.drainPerSecond !== undefined ? { drain_per_second: patch.drainPerSecond } : {}),
        updated_at: new Date(),
        updated_by: actor,
      })
      .where('id', '=', 1)
      .returningAll()
      .executeTakeFirstOrThrow();
    const after = toRollout(row);
    const changes: Record<string, { from: unknown; to: unknown }> = {};
    const keys = Object.keys(patch) as (keyof Rollout)[];
    if (patch.ratePerSecond !== undefined) keys.push('rateByHand');
    for (const key of keys) {
      if (JSON.stringify(before[key]) !== JSON.stringify(after[key])) {
        changes[key] = { from: before[key], to: after[key] };
      }
    }
    await writeAudit(trx, {
      actor,
      action: 'rollout.update',
      outcome: 'ok',
      requestId: requestId ?? null,
      detail: { changes },
    });
    return after;
  });
}

/** Rollout read through a cache: switches take effect within `ttlMs` on every worker. */
export function cachedRollout(db: Kysely<Database>, ttlMs = 5_000, clock: () => number = Date.now) {
  let value: Rollout | undefined;
  let fetchedAt = 0;
  return async (): Promise<Rollout> => {
    if (!value || clock() - fetchedAt > ttlMs) {
      value = await getRollout(db);
      fetchedAt = clock();
    }
    return value;
  };
}

export function inPilot(recipient: string, pilotPrefixes: readonly string[]): boolean {
  return pilotPrefixes.length === 0 || pilotPrefixes.some((p) => recipient.startsWith(p));
}
