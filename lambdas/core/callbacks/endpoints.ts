/**
 * Managing callback endpoints and their deliveries: register (the secret is shown once), list,
 * remove, rotate the secret with a grace period, list a notification's deliveries with their
 * attempts, and redeliver one. Every change writes its audit entry in the same transaction.
 */
import { randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import { CALLBACK_EVENT_TYPES } from '#core/callbacks/event-body.ts';
import { checkCallbackUrl, type TargetPolicy } from '#core/callbacks/safe-target.ts';
import type { CallbackEndpointRow, Database } from '#core/db/schema.ts';
import { inTransaction } from '#core/db/transaction.ts';
import { writeAudit } from '#core/notifications/audit.ts';
import { uuidv7 } from '#core/platform/ids.ts';

/** How long the old secret keeps signing after a rotation, unless the caller says otherwise. */
export const DEFAULT_ROTATION_GRACE_SECONDS = 24 * 60 * 60;

export interface CallbackActor {
  actor: string;
  requestId: string | null;
  sourceIp: string | null;
}

export class CallbackInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CallbackInputError';
  }
}

/** What an API or ops answer shows of an endpoint: never the secret. */
export interface CallbackEndpointView {
  id: string;
  clientId: string;
  url: string;
  events: string[] | null;
  createdAt: string;
  consecutiveFailures: number;
  disabledAt: string | null;
  disabledReason: string | null;
  previousSecretExpiresAt: string | null;
}

export function toEndpointView(row: CallbackEndpointRow): CallbackEndpointView {
  return {
    id: row.id,
    clientId: row.client_id,
    url: row.url,
    events: row.event_types,
    createdAt: row.created_at.toISOString(),
    consecutiveFailures: row.consecutive_failures,
    disabledAt: row.disabled_at?.toISOString() ?? null,
    disabledReason: row.disabled_reason,
    previousSecretExpiresAt: row.previous_secret_expires_at?.toISOString() ?? null,
  };
}

/** `whsec_` and 32 random bytes: recognisable in a secret scanner, strong enough for HMAC. */
function newSecret(): string {
  return `whsec_${randomBytes(32).toString('base64url')}`;
}

function checkEvents(events: readonly string[] | undefined): string[] | null {
  if (!events || events.length === 0) return null;
  const unknown = events.filter((e) => !CALLBACK_EVENT_TYPES.includes(e));
  if (unknown.length > 0) {
    throw new CallbackInputError(
      `unknown event type(s): ${unknown.join(', ')}; known: ${CALLBACK_EVENT_TYPES.join(', ')}`,
    );
  }
  return [...new Set(events)];
}

export async function createCallbackEndpoint(
  db: Kysely<Database>,
  by: CallbackActor,
  input: { clientId: string; url: string; events?: readonly string[] },
  policy: TargetPolicy,
): Promise<CallbackEndpointView & { secret: string }> {
  let url: URL;
  try {
    url = checkCallbackUrl(input.url, policy);
  } catch (error) {
    throw new CallbackInputError((error as Error).message);
  }
  const events = checkEvents(input.events);
  return inTransaction(db, async (trx) => {
    const client = await trx
      .selectFrom('api_clients')
      .select('id')
      .where('id', '=', input.clientId)
      .executeTakeFirst();
    if (!client) throw new CallbackInputError('no such client');
    const row = await trx
      .insertInto('callback_endpoints')
      .values({
        id: uuidv7(),
        client_id: input.clientId,
        url: url.toString(),
        event_types: events,
        secret: newSecret(),
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    await writeAudit(trx, {
      ...by,
      action: 'callbacks.create',
      outcome: 'ok',
      detail: { endpointId: row.id, clientId: row.client_id, host: url.host, events },
    });
    return { ...toEndpointView(row), secret: row.secret };
  });
}

export async function listCallbackEndpoints(
  db: Kysely<Database>,
  filter: { clientId?: string },
): Promise<CallbackEndpointView[]> {
  let query = db.selectFrom('callback_endpoints').selectAll().orderBy('created_at');
  if (filter.clientId) query = query.where('client_id', '=', filter.clientId);
  return (await query.execute()).map(toEndpointView);
}

/** False when the endpoint does not exist (or belongs to another client). */
export async function removeCallbackEndpoint(
  db: Kysely<Database>,
  by: CallbackActor,
  input: { endpointId: string; clientId?: string },
): Promise<boolean> {
  return inTransaction(db, async (trx) => {
    let query = trx.deleteFrom('callback_endpoints').where('id', '=', input.endpointId);
    if (input.clientId) query = query.where('client_id', '=', input.clientId);
    const removed = await query.returning(['id', 'client_id']).executeTakeFirst();
    if (!removed) return false;
    await writeAudit(trx, {
      ...by,
      action: 'callbacks.remove',
      outcome: 'ok',
      detail: { endpointId: removed.id, clientId: removed.client_id },
    });
    return true;
  });
}

/**
 * A new secret; the old one keeps signing next to it for `graceSeconds`, so receivers can switch
 * without missing a post. Undefined when the endpoint does not exist.
 */
export async function rotateCallbackSecret(
  db: Kysely<Database>,
  by: CallbackActor,
  input: { endpointId: string; clientId?: string; graceSeconds: number; now: Date },
): Promise<(CallbackEndpointView & { secret: string }) | undefined> {
  return inTransaction(db, async (trx) => {
    let query = trx
      .updateTable('callback_endpoints')
      .set((eb) => ({
        previous_secret: eb.ref('secret'),
        previous_secret_expires_at: new Date(input.now.getTime() + input.graceSeconds * 1000),
        secret: newSecret(),
      }))
      .where('id', '=', input.endpointId);
    if (input.clientId) query = query.where('client_id', '=', input.clientId);
    const row = await query.returningAll().executeTakeFirst();
    if (!row) return undefined;
    await writeAudit(trx, {
      ...by,
      action: 'callbacks.rotate_secret',
      outcome: 'ok',
      detail: { endpointId: row.id, clientId: row.client_id, graceSeconds: input.graceSeconds },
    });
    return { ...toEndpointView(row), secret: row.secret };
  });
}

/** Turns a disabled endpoint back on; its parked deliveries are retried from now. */
export async function enableCallbackEndpoint(
  db: Kysely<Database>,
  by: CallbackActor,
  input: { endpointId: string },
): Promise<boolean> {
  return inTransaction(db, async (trx) => {
    const row = await trx
      .updateTable('callback_endpoints')
      .set({
        disabled_at: null,
        disabled_reason: null,
        consecutive_failures: 0,
        failing_since: null,
      })
      .where('id', '=', input.endpointId)
      .returning(['id', 'client_id'])
      .executeTakeFirst();
    if (!row) return false;
    // Due now, with a new retry window: the wait while disabled does not count against them.
    await trx
      .updateTable('callback_deliveries')
      .set({ next_attempt_at: new Date(), created_at: new Date() })
      .where('endpoint_id', '=', row.id)
      .where('status', '=', 'pending')
      .execute();
    await writeAudit(trx, {
      ...by,
      action: 'callbacks.enable',
      outcome: 'ok',
      detail: { endpointId: row.id, clientId: row.client_id },
    });
    return true;
  });
}

export interface CallbackDeliveryView {
  id: string;
  eventId: string;
  type: string;
  sequence: number;
  endpointId: string;
  status: string;
  attempts: { at: string; statusCode: number | null; latencyMs: number; error: string | null }[];
  nextAttemptAt: string | null;
  deliveredAt: string | null;
}

/** A notification's deliveries in sequence order, each with every attempt. */
export async function listCallbackDeliveries(
  db: Kysely<Database>,
  filter: { notificationId: string; clientId?: string },
): Promise<CallbackDeliveryView[]> {
  let query = db
    .selectFrom('callback_deliveries as d')
    .innerJoin('callback_events as e', 'e.id', 'd.event_id')
    .select([
      'd.id',
      'd.event_id',
      'e.type',
      'd.sequence',
      'd.endpoint_id',
      'd.status',
      'd.next_attempt_at',
      'd.delivered_at',
    ])
    .where('d.notification_id', '=', filter.notificationId)
    .orderBy('d.sequence')
    .orderBy('d.endpoint_id');
  if (filter.clientId) query = query.where('e.client_id', '=', filter.clientId);
  const deliveries = await query.execute();
  if (deliveries.length === 0) return [];
  const attempts = await db
    .selectFrom('callback_attempts')
    .selectAll()
    .where(
      'delivery_id',
      'in',
      deliveries.map((d) => d.id),
    )
    .orderBy('id')
    .execute();
  return deliveries.map((d) => ({
    id: d.id,
    eventId: d.event_id,
    type: d.type,
    sequence: d.sequence,
    endpointId: d.endpoint_id,
    status: d.status,
    attempts: attempts
      .filter((a) => a.delivery_id === d.id)
      .map((a) => ({
        at: a.at.toISOString(),
        statusCode: a.status_code,
        latencyMs: a.latency_ms,
        error: a.error,
      })),
    nextAttemptAt: d.status === 'pending' ? d.next_attempt_at.toISOString() : null,
    deliveredAt: d.delivered_at?.toISOString() ?? null,
  }));
}

/**
 * Posts a delivery again as soon as the dispatcher next looks, whatever became of it (delivered,
 * given up). The event keeps its id, so a receiver that already has it can tell it is a repeat.
 */
export async function redeliverCallback(
  db: Kysely<Database>,
  by: CallbackActor,
  input: { deliveryId: string },
): Promise<boolean> {
  return inTransaction(db, async (trx) => {
    const row = await trx
      .updateTable('callback_deliveries')
      .set({ status: 'pending', next_attempt_at: new Date(), created_at: new Date() })
      .where('id', '=', input.deliveryId)
      .returning(['id', 'endpoint_id', 'notification_id'])
      .executeTakeFirst();
    if (!row) return false;
    await writeAudit(trx, {
      ...by,
      action: 'callbacks.redeliver',
      outcome: 'ok',
      detail: {
        deliveryId: row.id,
        endpointId: row.endpoint_id,
        notificationId: row.notification_id,
      },
    });
    return true;
  });
}
