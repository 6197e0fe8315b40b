/** The audit log: who was denied or changed what, written once per event, never with a secret or a number. */
import type { Kysely } from 'kysely';
import type { Database } from '#core/db/schema.ts';

export interface AuditEvent {
  actor: string;
  action: string;
  outcome: 'ok' | 'denied';
  requestId?: string | null;
  sourceIp?: string | null;
  detail?: Record<string, unknown>;
}

export async function writeAudit(db: Kysely<Database>, event: AuditEvent): Promise<void> {
  await db
    .insertInto('audit_log')
    .values({
      actor: event.actor,
      action: event.action,
      outcome: event.outcome,
      request_id: event.requestId ?? null,
      source_ip: event.sourceIp ?? null,
      detail: event.detail ? JSON.stringify(event.detail) : null,
    })
    .execute();
}
