/**
 * Client events on EventBridge (AWS only): every unpublished outbox row goes to the stack's bus with
 * the callback body, in calls of at most ten entries; a rejected entry stays due for a later round.
 */
import { randomUUID } from 'node:crypto';
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, describe, expect, it } from 'vitest';
import { EVENT_SOURCE, publishClientEvents } from '#core/callbacks/event-bus.ts';
import { createTestClient, uniqueRecipient } from '../../support/api.ts';
import { testDatabase } from '../../support/database.ts';

const db = testDatabase();
afterAll(() => db.destroy());

describe('publishClientEvents', () => {
  it('puts each event on the bus once, in batches of ten, and retries a rejected entry later', async () => {
    // prepare: twelve events of one client. The shared database's outbox holds every other
    // file's events too, and nothing publishes them here (no bus locally): mark those published
    // so that the rounds below reach ours, as a bus that keeps up would.
    await db
      .updateTable('callback_events')
      .set({ published_at: new Date() })
      .where('published_at', 'is', null)
      .execute();
    const { clientId } = await createTestClient(db);
    const ids: string[] = [];
    for (let i = 0; i < 12; i += 1) {
      ids.push(randomUUID());
      await db
        .insertInto('notifications')
        .values({
          id: ids[i]!,
          client_id: clientId,
          request_id: `req-${i}`,
          recipient: uniqueRecipient(),
          priority: 'bulk',
          message_type: 'template',
          message: JSON.stringify({ name: 'hello_world' }),
          status: 'accepted',
        })
        .execute();
    }
    const eventBridge = mockClient(EventBridgeClient);
    let refused: string | undefined;
    eventBridge.on(PutEventsCommand).callsFake((input: { Entries: { Detail: string }[] }) => {
      // The first entry of ours is refused once (throttled): it must go again in a later call.
      const answers = input.Entries.map((entry) => {
        const body = JSON.parse(entry.Detail);
        if (!refused && ids.includes(body.data.notification.id)) {
          refused = body.id;
          return { ErrorCode: 'ThrottlingException' };
        }
        return { EventId: body.id };
      });
      return { FailedEntryCount: answers.filter((a) => 'ErrorCode' in a).length, Entries: answers };
    });
    const bus = {
      client: new EventBridgeClient({ region: 'us-east-1' }),
      busName: 'whatsapp-notif-test',
    };

    // act: rounds until all of ours are out (other test files add events of their own meanwhile)
    const ours = () =>
      db
        .selectFrom('callback_events')
        .select(['id', 'published_at'])
        .where('client_id', '=', clientId)
        .execute();
    for (let round = 0; round < 10 && (await ours()).some((e) => !e.published_at); round += 1) {
      await publishClientEvents(db, bus);
    }

    // assess
    const calls = eventBridge.commandCalls(PutEventsCommand).map((c) => c.args[0].input.Entries!);
    expect(Math.max(...calls.map((entries) => entries.length))).toBeLessThanOrEqual(10);
    const details = calls.flat().map((e) => ({ entry: e, body: JSON.parse(e.Detail!) }));
    const mine = details.filter(
      (d) => d.body.data.notification.id && ids.includes(d.body.data.notification.id),
    );
    const perEvent = new Map<string, number>();
    for (const d of mine) perEvent.set(d.body.id, (perEvent.get(d.body.id) ?? 0) + 1);
    expect(perEvent.size).toBe(12);
    expect(perEvent.get(refused!)).toBe(2);
    expect([...perEvent.values()].filter((n) => n !== 1)).toEqual([2]);
    expect((await ours()).every((e) => e.published_at !== null)).toBe(true);
    expect(mine[0]!.entry).toMatchObject({
      EventBusName: 'whatsapp-notif-test',
      Source: EVENT_SOURCE,
      DetailType: 'notification.accepted',
    });
    expect(mine[0]!.body).toMatchObject({
      type: 'notification.accepted',
      sequence: 1,
      data: { previousStatus: null },
    });
    expect(mine[0]!.body.data.notification.to).toMatch(/\*{4,}/);
    eventBridge.restore();
  });
});
