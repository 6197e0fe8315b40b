/**
 * Client events on the stack's EventBridge bus (`whatsapp-notif-<stage>`, AWS only), so a team can
 * route them with rules without running an endpoint. Same bodies as the callbacks, at least once:
 * a row is marked published only after EventBridge accepted its entry.
 */
import { type EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import type { Kysely } from 'kysely';
import { callbackEventBody } from '#core/callbacks/event-body.ts';
import type { Database } from '#core/db/schema.ts';

/** The `source` of every entry; rules match on it and on `detail-type` (the event type). */
export const EVENT_SOURCE = 'whatsapp-notif';
/** PutEvents takes at most 10 entries per call. */
const ENTRIES_PER_CALL = 10;

export interface EventBus {
  client: Pick<EventBridgeClient, 'send'>;
  busName: string;
}

/** Puts up to `limit` unpublished events on the bus, oldest first; returns how many went. */
export async function publishClientEvents(
  db: Kysely<Database>,
  bus: EventBus,
  limit = 100,
): Promise<number> {
  const events = await db
    .selectFrom('callback_events')
    .selectAll()
    .where('published_at', 'is', null)
    .orderBy('created_at')
    .limit(limit)
    .execute();
  let published = 0;
  for (let i = 0; i < events.length; i += ENTRIES_PER_CALL) {
    const chunk = events.slice(i, i + ENTRIES_PER_CALL);
    const answer = await bus.client.send(
      new PutEventsCommand({
        Entries: chunk.map((event) => ({
          EventBusName: bus.busName,
          Source: EVENT_SOURCE,
          DetailType: event.type,
          Detail: JSON.stringify(callbackEventBody(event)),
          Time: event.created_at,
        })),
      }),
    );
    // Entries come back in request order; one with an ErrorCode was not accepted and stays due.
    const accepted = chunk.filter((_, n) => !answer.Entries?.[n]?.ErrorCode);
    if (accepted.length === 0) continue;
    await db
      .updateTable('callback_events')
      .set({ published_at: new Date() })
      .where(
        'id',
        'in',
        accepted.map((e) => e.id),
      )
      .execute();
    published += accepted.length;
  }
  return published;
}
