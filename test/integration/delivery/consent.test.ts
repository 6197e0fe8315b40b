/**
 * Consent through the webhook on the real database, with payloads shaped as Meta's catalogue
 * describes them: username users known only by a BSUID, user_preferences (marketing only),
 * changed numbers and BSUIDs carrying opt-outs over, and replays that must not undo a newer change.
 */
import { randomInt } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, describe, expect, it, onTestFinished } from 'vitest';
import { optOutsOf } from '#core/notifications/opt-outs.ts';
import {
  buildIdentityChangeWebhook,
  buildInboundTextWebhook,
  buildStatusWebhook,
  buildUserPreferencesWebhook,
} from '#core/whatsapp/webhook-payload.ts';
import { createWebhookApp } from '../../../lambdas/webhook/app.ts';
import { apiEvent, createTestClient, testApiApp, uniqueRecipient } from '../../support/api.ts';
import { testDatabase } from '../../support/database.ts';
import {
  postSignedWebhook,
  SANDBOX_APP_SECRET,
  SANDBOX_PHONE_NUMBER_ID,
  startDeliveryRig,
  testMetrics,
  testWebhookApp,
  WEBHOOK_VERIFY_TOKEN,
} from '../../support/delivery.ts';
import { recordingLogger } from '../../support/observability.ts';
import { fillRegistry, uniqueWabaId } from '../../support/templates.ts';

const db = testDatabase();
afterAll(() => db.destroy());
const app = testWebhookApp(db);

/** A BSUID of its own for each test: country, dot, digits. */
function uniqueBsuid(): string {
  return `CO.${Date.now()}${randomInt(0, 1_000_000_000)}`;
}

async function optOutRows(recipient: string) {
  return db
    .selectFrom('opt_outs')
    .select(['scope', 'source', 'changed_at'])
    .where('recipient', '=', recipient)
    .orderBy('scope')
    .execute();
}

function text(
  from: string,
  body: string,
  options: { userId?: string; at?: Date; id?: string } = {},
) {
  return buildInboundTextWebhook({
    phoneNumberId: SANDBOX_PHONE_NUMBER_ID,
    from: from.replace(/^\+/, ''),
    text: body,
    userId: options.userId,
    timestamp: options.at,
    id: options.id,
  });
}

function preference(value: 'stop' | 'resume', who: { phone?: string; userId?: string }, at: Date) {
  return buildUserPreferencesWebhook({
    phoneNumberId: SANDBOX_PHONE_NUMBER_ID,
    waId: who.phone,
    userId: who.userId,
    value,
    timestamp: at,
  });
}

const seconds = (n: number) => new Date(Date.UTC(2026, 10, 1) + n * 1000);

describe('consent: username users known only by a BSUID', () => {
  it('records a STOP from a user with `from: ""` under their BSUID', async () => {
    // prepare
    const userId = uniqueBsuid();

    // act
    const response = await postSignedWebhook(app, text('', 'STOP', { userId }));

    // assess
    expect(response.statusCode).toBe(200);
    expect(await optOutRows(userId)).toMatchObject([{ scope: 'all', source: 'keyword' }]);
  });

  it('skips a send to a number whose BSUID opted out, learnt from a status without a phone', async () => {
    // prepare: one notification sent, and its delivered status naming only the BSUID
    const r = await startDeliveryRig(db);
    onTestFinished(() => r.stop());
    const to = uniqueRecipient();
    const userId = uniqueBsuid();
    const first = await r.notify(to);
    await r.pass();
    const { wamid } = await r.row(first);
    const status = buildStatusWebhook({
      phoneNumberId: SANDBOX_PHONE_NUMBER_ID,
      wamid: wamid!,
      status: 'delivered',
      recipientId: '',
    });
    const value = status.entry[0]!.changes[0]!.value as unknown as { statuses: object[] };
    Object.assign(value.statuses[0]!, { recipient_user_id: userId });
    expect((await postSignedWebhook(app, status)).statusCode).toBe(200);
    expect((await r.row(first)).status).toBe('delivered');

    // act: the username user sends STOP, then a new notification goes to their number
    await postSignedWebhook(app, text('', 'STOP', { userId }));
    const second = await r.notify(to);
    await r.pass();

    // assess
    expect(await r.row(second)).toMatchObject({ status: 'skipped', status_reason: 'opted_out' });
    // The STOP reached the phone number too, through the link the status made.
    expect((await optOutsOf(db, to)).map((o) => o.recipient).sort()).toEqual([to, userId].sort());
  });

  it('lets a START under the phone number clear a STOP recorded under the linked BSUID', async () => {
    // prepare: a message carrying both ids links them; the STOP came without the phone
    const phone = uniqueRecipient();
    const userId = uniqueBsuid();
    await postSignedWebhook(app, text(phone, 'hello', { userId, at: seconds(1) }));
    await postSignedWebhook(app, text('', 'STOP', { userId, at: seconds(2) }));

    // act
    await postSignedWebhook(app, text(phone, 'START', { at: seconds(3) }));

    // assess
    expect(await optOutRows(userId)).toEqual([]);
    expect(await optOutRows(phone)).toEqual([]);
  });
});

describe('consent: the number ↔ BSUID link', () => {
  it('keeps the newest BSUID Meta reports for a number', async () => {
    // prepare
    const phone = uniqueRecipient();
    const [first, second] = [uniqueBsuid(), uniqueBsuid()];
    await postSignedWebhook(app, text(phone, 'hello', { userId: first }));
    await postSignedWebhook(app, text(phone, 'hello again', { userId: first }));

    // act
    await postSignedWebhook(app, text(phone, 'new phone, same number', { userId: second }));

    // assess
    const link = await db
      .selectFrom('recipient_ids')
      .select('bsuid')
      .where('phone', '=', phone)
      .executeTakeFirstOrThrow();
    expect(link.bsuid).toBe(second);
  });
});

describe('consent: user_preferences is a marketing opt-out', () => {
  it('records stop as a marketing opt-out that does not stop a send', async () => {
    // prepare
    const r = await startDeliveryRig(db);
    onTestFinished(() => r.stop());
    const to = uniqueRecipient();
    const userId = uniqueBsuid();

    // act
    const response = await postSignedWebhook(
      app,
      preference('stop', { phone: to, userId }, seconds(10)),
    );
    const id = await r.notify(to);
    await r.pass();

    // assess: our test template is not known to be marketing, so it goes out
    expect(JSON.parse(response.body)).toMatchObject({ preferences: 1 });
    expect(await optOutRows(to)).toMatchObject([
      { scope: 'marketing', source: 'user_preferences', changed_at: seconds(10) },
    ]);
    expect(await optOutRows(userId)).toMatchObject([{ scope: 'marketing' }]);
    expect((await r.row(id)).status).toBe('sent');
  });

  it('clears the marketing opt-out on resume, and a late stop older than the resume stays ignored', async () => {
    // prepare
    const to = uniqueRecipient();
    await postSignedWebhook(app, preference('stop', { phone: to }, seconds(10)));

    // act
    await postSignedWebhook(app, preference('resume', { phone: to }, seconds(20)));
    await postSignedWebhook(app, preference('stop', { phone: to }, seconds(10)));

    // assess
    expect(await optOutRows(to)).toEqual([]);
  });

  it('does not clear a STOP keyword when the platform says resume', async () => {
    // prepare
    const to = uniqueRecipient();
    await postSignedWebhook(app, text(to, 'STOP', { at: seconds(10) }));
    await postSignedWebhook(app, preference('stop', { phone: to }, seconds(11)));

    // act
    await postSignedWebhook(app, preference('resume', { phone: to }, seconds(12)));

    // assess
    expect(await optOutRows(to)).toMatchObject([{ scope: 'all', source: 'keyword' }]);
  });

  it('applies the valid item of a preferences body whose other item names nobody', async () => {
    // prepare
    const to = uniqueRecipient();
    const body = preference('stop', { phone: to }, seconds(5));
    const value = body.entry[0]!.changes[0]!.value as unknown as { user_preferences: unknown[] };
    const items = value.user_preferences;
    items.unshift({ value: 'stop', timestamp: 1 }, { wa_id: '123', value: 'maybe', timestamp: 1 });

    // act
    const response = await postSignedWebhook(app, body);

    // assess
    expect(response.statusCode).toBe(200);
    // The two bad items are refused alone (kept in webhook_rejects), not lost with the body.
    expect(JSON.parse(response.body)).toMatchObject({ preferences: 1, rejected: 2 });
    expect(await optOutRows(to)).toMatchObject([{ scope: 'marketing' }]);
  });
});

describe('consent: marketing opt-outs at send time', () => {
  /** A rig whose worker reads template categories from a registry filled from the sandbox. */
  async function rigWithCategories() {
    const wabaId = uniqueWabaId();
    const r = await startDeliveryRig(db, { deps: { wabaId } });
    onTestFinished(() => r.stop());
    await fillRegistry(db, r.sandbox, wabaId);
    const api = testApiApp(db, {
      sqs: r.sqs,
      queue: { sqs: r.sqs, queueUrls: { high: r.queue.url, bulk: r.queue.url } },
    });
    const { key } = await createTestClient(db);
    const notify = async (to: string, name: string) => {
      const components =
        name === 'weekly_offers'
          ? [{ type: 'body', parameters: [{ type: 'text', text: 'Ana' }] }]
          : undefined;
      const response = await api(
        apiEvent({
          method: 'POST',
          path: '/v1/notifications',
          headers: { 'X-API-Key': key },
          body: { to, template: { name, language: 'en_US', components } },
        }),
      );
      expect(response.statusCode).toBe(202);
      return (JSON.parse(response.body) as { id: string }).id;
    };
    return { r, notify };
  }

  it('skips a MARKETING template to someone who stopped marketing, and sends a UTILITY one', async () => {
    // prepare: the sandbox lists weekly_offers as MARKETING and hello_world as UTILITY
    const { r, notify } = await rigWithCategories();
    const to = uniqueRecipient();
    await postSignedWebhook(app, preference('stop', { phone: to }, seconds(1)));
    const marketing = await notify(to, 'weekly_offers');
    const utility = await notify(to, 'hello_world');

    // act
    await r.pass({ minMessages: 2 });

    // assess
    expect(await r.row(marketing)).toMatchObject({
      status: 'skipped',
      status_reason: 'opted_out_marketing',
    });
    expect((await r.row(utility)).status).toBe('sent');
    expect(r.sandbox.stats().sendsReceived).toBe(1);
  });

  it('sends the MARKETING template again once the person resumes', async () => {
    // prepare
    const { r, notify } = await rigWithCategories();
    const to = uniqueRecipient();
    await postSignedWebhook(app, preference('stop', { phone: to }, seconds(1)));
    await postSignedWebhook(app, preference('resume', { phone: to }, seconds(2)));
    const marketing = await notify(to, 'weekly_offers');

    // act
    await r.pass();

    // assess
    expect((await r.row(marketing)).status).toBe('sent');
  });
});

describe('consent: changed numbers and BSUIDs carry opt-outs over', () => {
  it('opts out the new number and BSUID on user_changed_number after a STOP from the old one', async () => {
    // prepare
    const oldPhone = uniqueRecipient();
    const newPhone = uniqueRecipient();
    const newUserId = uniqueBsuid();
    await postSignedWebhook(app, text(oldPhone, 'STOP', { at: seconds(30) }));
    await postSignedWebhook(app, preference('stop', { phone: oldPhone }, seconds(31)));

    // act
    const response = await postSignedWebhook(
      app,
      buildIdentityChangeWebhook({
        phoneNumberId: SANDBOX_PHONE_NUMBER_ID,
        type: 'user_changed_number',
        from: oldPhone.slice(1),
        newWaId: newPhone.slice(1),
        newUserId,
        timestamp: seconds(40),
      }),
    );

    // assess
    expect(response.statusCode).toBe(200);
    for (const key of [newPhone, newUserId]) {
      expect(await optOutRows(key)).toMatchObject([
        { scope: 'all', source: 'keyword', changed_at: seconds(30) },
        { scope: 'marketing', source: 'user_preferences', changed_at: seconds(31) },
      ]);
    }
  });

  it('carries a BSUID-only opt-out to the new BSUID on user_changed_user_id', async () => {
    // prepare
    const oldUserId = uniqueBsuid();
    const newUserId = uniqueBsuid();
    await postSignedWebhook(app, text('', 'STOP', { userId: oldUserId, at: seconds(50) }));

    // act
    await postSignedWebhook(
      app,
      buildIdentityChangeWebhook({
        phoneNumberId: SANDBOX_PHONE_NUMBER_ID,
        type: 'user_changed_user_id',
        fromUserId: oldUserId,
        newUserId,
        timestamp: seconds(60),
      }),
    );

    // assess: and a START older than the STOP, under the new id, does not clear it
    await postSignedWebhook(app, text('', 'START', { userId: newUserId, at: seconds(45) }));
    expect(await optOutRows(newUserId)).toMatchObject([{ scope: 'all', source: 'keyword' }]);
  });
});

describe('consent: user_id_update', () => {
  it('gives the current BSUID the opt-outs of the previous one, skipping a malformed item', async () => {
    // prepare
    const previous = uniqueBsuid();
    const current = uniqueBsuid();
    await postSignedWebhook(app, text('', 'STOP', { userId: previous, at: seconds(5) }));
    const body = {
      object: 'whatsapp_business_account',
      entry: [
        {
          id: '100000000000001',
          time: 1764000000,
          changes: [
            {
              field: 'user_id_update',
              value: {
                messaging_product: 'whatsapp',
                metadata: {
                  display_phone_number: '15550000000',
                  phone_number_id: SANDBOX_PHONE_NUMBER_ID,
                },
                contacts: [{ user_id: current }],
                user_id_update: [
                  { detail: 'no ids at all', timestamp: '1764000000' },
                  {
                    detail: 'User changed their business-scoped user id',
                    user_id: { previous, current },
                    timestamp: '1764000000',
                  },
                ],
              },
            },
          ],
        },
      ],
    };

    // act
    const response = await postSignedWebhook(app, body);

    // assess
    expect(response.statusCode).toBe(200);
    expect(await optOutRows(current)).toMatchObject([
      { scope: 'all', source: 'keyword', changed_at: seconds(5) },
    ]);
  });
});

describe('consent: replays', () => {
  it('does not let a re-posted START undo a newer STOP', async () => {
    // prepare: START at t=100 (captured), then STOP at t=200
    const to = uniqueRecipient();
    const start = text(to, 'START', { at: seconds(100), id: `wamid.start.${to}` });
    await postSignedWebhook(app, start);
    await postSignedWebhook(app, text(to, 'STOP', { at: seconds(200) }));

    // act: the same signed START again, and a late START with a new id but an older time
    await postSignedWebhook(app, start);
    await postSignedWebhook(app, text(to, 'START', { at: seconds(150) }));

    // assess
    expect(await optOutRows(to)).toMatchObject([{ scope: 'all', changed_at: seconds(200) }]);
  });

  it('ignores a redelivered message id even when its time would be newest', async () => {
    // prepare: a STOP, answered later by START
    const to = uniqueRecipient();
    const stop = text(to, 'STOP', { at: seconds(300), id: `wamid.stop.${to}` });
    await postSignedWebhook(app, stop);
    await postSignedWebhook(app, text(to, 'START', { at: seconds(300) }));
    expect(await optOutRows(to)).toEqual([]);

    // act: Meta redelivers the STOP (same id, same second as the START)
    await postSignedWebhook(app, stop);

    // assess
    expect(await optOutRows(to)).toEqual([]);
  });

  it('ends in the state of the newest STOP or START, whatever the order and redeliveries', async () => {
    await fc.assert(
      fc.asyncProperty(
        // Distinct times (a tie has no newest), each a STOP or a START, then a delivery order
        // that repeats some of them.
        fc.uniqueArray(fc.integer({ min: 0, max: 100_000 }), { minLength: 1, maxLength: 6 }),
        fc.array(fc.boolean(), { minLength: 6, maxLength: 6 }),
        fc.array(fc.nat(), { minLength: 1, maxLength: 12 }),
        async (times, stops, picks) => {
          const to = uniqueRecipient();
          const events = times.map((t, i) => ({
            at: seconds(t),
            stop: stops[i]!,
            body: text(to, stops[i] ? 'STOP' : 'START', {
              at: seconds(t),
              id: `wamid.p${i}.${to}`,
            }),
          }));
          const order = [...events.keys(), ...picks.map((p) => p % events.length)];
          const shuffled = fc.sample(
            fc.shuffledSubarray(order, { minLength: order.length }),
            1,
          )[0]!;
          for (const index of shuffled) await postSignedWebhook(app, events[index]!.body);

          const newest = events.reduce((a, b) => (b.at > a.at ? b : a));
          expect((await optOutRows(to)).length).toBe(newest.stop ? 1 : 0);
        },
      ),
      { numRuns: 25 },
    );
  });
});

describe('consent: personal data', () => {
  it('keeps phone numbers and BSUIDs out of its logs and answers', async () => {
    // prepare
    const { logger, lines } = recordingLogger();
    const logged = createWebhookApp({
      db,
      appSecret: SANDBOX_APP_SECRET,
      verifyToken: WEBHOOK_VERIFY_TOKEN,
      logger,
      metrics: testMetrics(),
    });
    const phone = uniqueRecipient();
    const userId = uniqueBsuid();

    // act
    const answers = [
      await postSignedWebhook(logged, text(phone, 'STOP', { userId })),
      await postSignedWebhook(logged, preference('stop', { phone, userId }, seconds(1))),
      await postSignedWebhook(
        logged,
        buildIdentityChangeWebhook({
          phoneNumberId: SANDBOX_PHONE_NUMBER_ID,
          type: 'user_changed_number',
          from: phone.slice(1),
          newWaId: uniqueRecipient().slice(1),
          newUserId: uniqueBsuid(),
        }),
      ),
    ];

    // assess
    const text_ = JSON.stringify([lines, answers.map((a) => a.body)]);
    expect(lines.length).toBeGreaterThan(0);
    expect(text_).not.toContain(phone.slice(1));
    expect(text_).not.toContain(userId);
    for (const answer of answers) expect(answer.statusCode).toBe(200);
  });
});

describe('consent: GET /v1/admin/recipients/opt-outs', () => {
  it('shows scope, source and time under the number and its BSUID, masked and audited', async () => {
    // prepare
    const api = testApiApp(db);
    const { key } = await createTestClient(db, ['admin']);
    const phone = uniqueRecipient();
    const userId = uniqueBsuid();
    await postSignedWebhook(app, text(phone, 'hello', { userId, at: seconds(1) }));
    await postSignedWebhook(app, text('', 'STOP', { userId, at: seconds(2) }));
    await postSignedWebhook(app, preference('stop', { phone }, seconds(3)));

    // act
    const response = await api({
      ...apiEvent({
        method: 'GET',
        path: '/v1/admin/recipients/opt-outs',
        headers: { 'X-API-Key': key },
      }),
      queryStringParameters: { to: phone },
    });

    // assess
    expect(response.statusCode).toBe(200);
    expect(response.body).not.toContain(phone.slice(1));
    expect(response.body).not.toContain(userId);
    const body = JSON.parse(response.body);
    expect(body.recipient).toMatch(/^\+57\*+\d{4}$/);
    expect(body.optOuts).toEqual(
      expect.arrayContaining([
        { key: 'phone', scope: 'all', source: 'keyword', changedAt: seconds(2).toISOString() },
        { key: 'bsuid', scope: 'all', source: 'keyword', changedAt: seconds(2).toISOString() },
        {
          key: 'phone',
          scope: 'marketing',
          source: 'user_preferences',
          changedAt: seconds(3).toISOString(),
        },
      ]),
    );
    const audit = await db
      .selectFrom('audit_log')
      .select(['action', 'detail'])
      .where('action', '=', 'recipients.opt_outs_read')
      .orderBy('id', 'desc')
      .executeTakeFirstOrThrow();
    expect(JSON.stringify(audit.detail)).not.toContain(phone.slice(1));
  });

  it('refuses a key without the admin scope and a number that is not E.164, echoing neither', async () => {
    // prepare
    const api = testApiApp(db);
    const { key: writer } = await createTestClient(db);
    const { key: admin } = await createTestClient(db, ['admin']);
    const get = (key: string, to: string) =>
      api({
        ...apiEvent({
          method: 'GET',
          path: '/v1/admin/recipients/opt-outs',
          headers: { 'X-API-Key': key },
        }),
        queryStringParameters: { to },
      });

    // act
    const forbidden = await get(writer, uniqueRecipient());
    const bad = await get(admin, '573001234567');

    // assess
    expect(forbidden.statusCode).toBe(403);
    expect(bad.statusCode).toBe(400);
    expect(bad.body).not.toContain('573001234567');
  });
});
