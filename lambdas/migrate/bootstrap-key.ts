/**
 * The first admin key of a deployed stage. Every key is created through the admin API, which
 * needs an admin key; this one comes from invoking the migrate function with
 * `{"action": "create-admin-key", "name": "..."}`, which only an AWS principal allowed to invoke
 * it can do. The key is in the answer once, and the audit log records who made it.
 */
import type { Kysely } from 'kysely';
import * as z from 'zod';
import { createApiClient } from '#core/admin/api-keys.ts';
import type { Database } from '#core/db/schema.ts';
import { writeAudit } from '#core/notifications/audit.ts';

export const bootstrapKeyEventSchema = z.strictObject({
  action: z.literal('create-admin-key'),
  /** Who the key is for: a person or a team, kept as the client's name. */
  name: z.string().trim().min(1).max(100),
});

export type BootstrapKeyEvent = z.infer<typeof bootstrapKeyEventSchema>;

export interface BootstrapKeyResult {
  key: string;
  prefix: string;
  scopes: string[];
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
    throw new Error('create-admin-key needs {"action": "create-admin-key", "name": "<who>"}');
  }
  const created = await createApiClient(db, { name: parsed.data.name, scopes: ['admin'] });
  await writeAudit(db, {
    actor: 'aws:lambda-invoke',
    action: 'key.create',
    outcome: 'ok',
    requestId,
    detail: {
      via: 'migrate-function',
      name: parsed.data.name,
      prefix: created.prefix,
      scopes: created.scopes,
    },
  });
  return { key: created.key, prefix: created.prefix, scopes: created.scopes };
}
