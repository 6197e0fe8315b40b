import { afterAll, describe, expect, it } from 'vitest';
import { pendingMigrations } from '#core/db/migrate.ts';
import { testDatabase } from '../../support/database.ts';

const db = testDatabase();
afterAll(() => db.destroy());

describe('migrations', () => {
  it('leaves nothing pending after the suite set-up applied them', async () => {
    expect(await pendingMigrations(db)).toEqual([]);
  });

  it('records every status transition through the trigger', async () => {
    const clientId = crypto.randomUUID();
    await db.insertInto('api_clients').values({ id: clientId, name: 'trigger-test' }).execute();
    const id = crypto.randomUUID();
    await db
      .insertInto('notifications')
      .values({
        id,
        client_id: clientId,
        request_id: 'r1',
        recipient: '+573001234567',
        priority: 'high',
        message_type: 'text',
        message: JSON.stringify({ body: 'hi' }),
        status: 'accepted',
      })
      .execute();
    await db.updateTable('notifications').set({ status: 'queued' }).where('id', '=', id).execute();
    // A stale claim taken over (sending → sending) changes only `attempts`: it is an event too.
    await db.updateTable('notifications').set({ status: 'sending' }).where('id', '=', id).execute();
    await db
      .updateTable('notifications')
      .set((eb) => ({ attempts: eb('attempts', '+', 1) }))
      .where('id', '=', id)
      .execute();
    await db.updateTable('notifications').set({ request_id: 'r2' }).where('id', '=', id).execute();

    const events = await db
      .selectFrom('notification_events')
      .select(['from_status', 'to_status', 'attempt'])
      .where('notification_id', '=', id)
      .orderBy('id')
      .execute();
    expect(events).toEqual([
      { from_status: null, to_status: 'accepted', attempt: 0 },
      { from_status: 'accepted', to_status: 'queued', attempt: 0 },
      { from_status: 'queued', to_status: 'sending', attempt: 0 },
      { from_status: 'sending', to_status: 'sending', attempt: 1 },
    ]);
  });
});
