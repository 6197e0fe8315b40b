/** Tests parsing Meta's webhook bodies, item by item, into statuses, inbound messages, events and refused items. */
import { describe, expect, it } from 'vitest';
import {
  buildInboundTextWebhook,
  buildStatusWebhook,
  buildUserPreferencesWebhook,
  parseWebhookPayload,
} from '#core/whatsapp/webhook-payload.ts';

const PHONE_NUMBER_ID = '106540352242922';
const RECIPIENT = '573001234567';
/** What a body carrying only statuses and messages has besides them. */
const NOTHING_ELSE = {
  preferences: [],
  userIdUpdates: [],
  events: [],
  rejects: [],
  foreignChanges: 0,
  unknownFields: [],
  skippedStatuses: 0,
};

/** A status delivery as Meta documents it, with fields we do not read. */
function metaStatusDelivery(status: Record<string, unknown>) {
  return {
    object: 'whatsapp_business_account',
    entry: [
      {
        id: '102290129340398',
        changes: [
          {
            field: 'messages',
            value: {
              messaging_product: 'whatsapp',
              metadata: { display_phone_number: '15550783881', phone_number_id: PHONE_NUMBER_ID },
              statuses: [status],
            },
          },
        ],
      },
    ],
  };
}

describe('parseWebhookPayload', () => {
  it('reads a delivered status with the fields Meta adds around it', () => {
    // prepare
    const body = metaStatusDelivery({
      id: 'wamid.HBgLMTU1NTEyMzQ1NjcVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA',
      status: 'delivered',
      timestamp: '1750263773',
      recipient_id: RECIPIENT,
      conversation: { id: 'conv-1', origin: { type: 'utility' } },
      pricing: { billable: true, pricing_model: 'PMP', category: 'utility', type: 'regular' },
      biz_opaque_callback_data: 'anything',
    });

    // act
    const result = parseWebhookPayload(body);

    // assess
    expect(result).toEqual({
      ok: true,
      ...NOTHING_ELSE,
      inbound: [],
      statuses: [
        {
          wamid: 'wamid.HBgLMTU1NTEyMzQ1NjcVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA',
          status: 'delivered',
          timestamp: new Date(1750263773 * 1000),
          recipientId: RECIPIENT,
          phoneNumberId: PHONE_NUMBER_ID,
          callbackData: 'anything',
          errors: [],
        },
      ],
    });
  });

  it('keeps the error codes of a failed status', () => {
    const body = metaStatusDelivery({
      id: 'wamid.F1',
      status: 'failed',
      timestamp: '1750263773',
      recipient_id: RECIPIENT,
      errors: [
        {
          code: 131026,
          title: 'Message undeliverable',
          message: 'Message undeliverable',
          error_data: { details: 'Message Undeliverable.' },
          href: 'https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/',
        },
      ],
    });

    const result = parseWebhookPayload(body);

    expect(result.ok && result.statuses[0]?.errors).toEqual([
      { code: 131026, title: 'Message undeliverable', message: 'Message undeliverable' },
    ]);
  });

  it('reads an inbound text message and a quick-reply button tap', () => {
    const body = buildInboundTextWebhook({
      phoneNumberId: PHONE_NUMBER_ID,
      from: RECIPIENT,
      text: 'STOP',
      id: 'wamid.IN1',
      timestamp: new Date(1_750_000_000_000),
    });
    const value = body.entry[0]!.changes[0]!.value as Record<string, unknown>;
    (value.messages as unknown[]).push({
      from: RECIPIENT,
      id: 'wamid.IN2',
      timestamp: '1750000001',
      type: 'button',
      button: { payload: 'stop', text: 'Stop promotions' },
      context: { from: '15550783881', id: 'wamid.OUT' },
    });

    const result = parseWebhookPayload(body);

    expect(result).toEqual({
      ok: true,
      ...NOTHING_ELSE,
      statuses: [],
      inbound: [
        {
          from: RECIPIENT,
          id: 'wamid.IN1',
          timestamp: new Date(1_750_000_000_000),
          type: 'text',
          text: 'STOP',
          phoneNumberId: PHONE_NUMBER_ID,
        },
        {
          from: RECIPIENT,
          id: 'wamid.IN2',
          timestamp: new Date(1_750_000_001_000),
          type: 'button',
          text: 'Stop promotions',
          phoneNumberId: PHONE_NUMBER_ID,
        },
      ],
    });
  });

  it('flattens several entries and changes in order', () => {
    const first = buildStatusWebhook({
      phoneNumberId: PHONE_NUMBER_ID,
      wamid: 'wamid.A',
      status: 'sent',
      recipientId: RECIPIENT,
    });
    const second = buildStatusWebhook({
      phoneNumberId: PHONE_NUMBER_ID,
      wamid: 'wamid.A',
      status: 'read',
      recipientId: RECIPIENT,
    });
    const body = { ...first, entry: [...first.entry, ...second.entry] };

    const result = parseWebhookPayload(body);

    expect(result.ok && result.statuses.map((s) => s.status)).toEqual(['sent', 'read']);
  });

  it('skips statuses Meta may add later instead of rejecting the whole delivery', () => {
    const body = metaStatusDelivery({
      id: 'wamid.D',
      status: 'deleted',
      timestamp: '1750263773',
      recipient_id: RECIPIENT,
    });

    const result = parseWebhookPayload(body);

    expect(result).toEqual({
      ok: true,
      ...NOTHING_ELSE,
      statuses: [],
      inbound: [],
      skippedStatuses: 1,
    });
  });

  it('records a template status event, phone numbers left out, and counts unknown fields', () => {
    const body = {
      object: 'whatsapp_business_account',
      entry: [
        {
          id: '1',
          changes: [
            {
              field: 'message_template_status_update',
              value: { event: 'APPROVED', message_template_id: 1, message_template_name: 'x' },
            },
            {
              field: 'phone_number_quality_update',
              value: { display_phone_number: '15550783881', event: 'THROUGHPUT_UPGRADE' },
            },
            { field: 'some_future_field', value: { anything: true } },
          ],
        },
      ],
    };

    const result = parseWebhookPayload(body);

    expect(result).toEqual({
      ok: true,
      ...NOTHING_ELSE,
      statuses: [],
      inbound: [],
      events: [
        {
          field: 'message_template_status_update',
          event: 'APPROVED',
          wabaId: '1',
          payload: { event: 'APPROVED', message_template_id: 1, message_template_name: 'x' },
        },
        {
          field: 'phone_number_quality_update',
          event: 'THROUGHPUT_UPGRADE',
          wabaId: '1',
          payload: { event: 'THROUGHPUT_UPGRADE' },
        },
      ],
      unknownFields: ['some_future_field'],
    });
  });

  it('ignores a messages change for a phone number id that is not ours', () => {
    const body = metaStatusDelivery({
      id: 'wamid.O',
      status: 'sent',
      timestamp: '1750263773',
      recipient_id: RECIPIENT,
    });

    const ours = parseWebhookPayload(body, { phoneNumberIds: [PHONE_NUMBER_ID] });
    const other = parseWebhookPayload(body, { phoneNumberIds: ['999'] });

    expect(ours.ok && ours.statuses).toHaveLength(1);
    expect(other.ok && [other.statuses.length, other.foreignChanges]).toEqual([0, 1]);
  });

  it('rejects a body for another object type', () => {
    const body = { ...metaStatusDelivery({}), object: 'page' };

    const result = parseWebhookPayload(body);

    expect(result.ok).toBe(false);
  });

  it('sets aside a status without an id or with a malformed timestamp, naming the field', () => {
    const missing = metaStatusDelivery({ status: 'sent', timestamp: '1750263773' });
    const badTime = metaStatusDelivery({
      id: 'wamid.X',
      status: 'sent',
      timestamp: 'yesterday',
      recipient_id: RECIPIENT,
    });

    const a = parseWebhookPayload(missing);
    const b = parseWebhookPayload(badTime);

    expect(a.ok && a.rejects.map((r) => [r.kind, r.reason])).toEqual([
      ['status', expect.stringContaining('statuses.0.id')],
    ]);
    expect(b.ok && b.rejects[0]?.reason).toContain('statuses.0.timestamp');
  });

  it('reads a status without a recipient (a username user), to be matched by its wamid', () => {
    const missing = metaStatusDelivery({ id: 'wamid.X', status: 'sent', timestamp: '1750263773' });
    const empty = metaStatusDelivery({
      id: 'wamid.Y',
      status: 'delivered',
      timestamp: '1750263773',
      recipient_id: '',
      recipient_user_id: 'US.13491208655302741918',
    });

    const a = parseWebhookPayload(missing);
    const b = parseWebhookPayload(empty);

    expect(a.ok && a.statuses[0]).toMatchObject({ wamid: 'wamid.X', recipientId: undefined });
    expect(b.ok && b.statuses[0]).toMatchObject({
      wamid: 'wamid.Y',
      recipientId: undefined,
      recipientUserId: 'US.13491208655302741918',
    });
    expect(a.ok && b.ok && [...a.rejects, ...b.rejects]).toEqual([]);
  });

  it('sets aside an unknown status value but applies the valid status beside it', () => {
    const body = metaStatusDelivery({});
    const value = body.entry[0]!.changes[0]!.value as { statuses: unknown[] };
    value.statuses = [
      { id: 'wamid.Q', status: 'teleported', timestamp: '1750263773', recipient_id: RECIPIENT },
      { id: 'wamid.R', status: 'read', timestamp: '1750263773', recipient_id: RECIPIENT },
    ];

    const result = parseWebhookPayload(body);

    expect(result.ok && result.statuses.map((s) => s.wamid)).toEqual(['wamid.R']);
    expect(result.ok && result.rejects.map((r) => r.reason)).toEqual([
      expect.stringContaining('not a status we know'),
    ]);
  });

  it('rejects something that is not a webhook body at all', () => {
    expect(parseWebhookPayload(null).ok).toBe(false);
    expect(parseWebhookPayload('hello').ok).toBe(false);
    expect(parseWebhookPayload({ object: 'whatsapp_business_account' }).ok).toBe(false);
  });

  it('never repeats a phone number in the reason of a refused item', () => {
    const body = metaStatusDelivery({
      id: 'wamid.X',
      status: 'sent',
      timestamp: '1750263773',
      recipient_id: 573001234567,
    });

    const result = parseWebhookPayload(body);

    // The raw item keeps the number for the operator; the reason, which is logged, does not.
    expect(result.ok && result.rejects).toHaveLength(1);
    expect(result.ok && result.rejects[0]!.reason).not.toContain(RECIPIENT);
  });
});

describe('buildStatusWebhook', () => {
  it('builds a body the parser reads back, failed errors included', () => {
    const at = new Date(1_750_263_773_000);
    const body = buildStatusWebhook({
      phoneNumberId: PHONE_NUMBER_ID,
      wamid: 'wamid.B',
      status: 'failed',
      recipientId: `+${RECIPIENT}`,
      timestamp: at,
      errors: [{ code: 131026, title: 'Message undeliverable' }],
    });

    const result = parseWebhookPayload(JSON.parse(JSON.stringify(body)));

    expect(result).toEqual({
      ok: true,
      ...NOTHING_ELSE,
      inbound: [],
      statuses: [
        {
          wamid: 'wamid.B',
          status: 'failed',
          timestamp: at,
          recipientId: RECIPIENT,
          phoneNumberId: PHONE_NUMBER_ID,
          errors: [
            { code: 131026, title: 'Message undeliverable', message: 'Message undeliverable' },
          ],
        },
      ],
    });
  });
});

describe('parseWebhookPayload, consent fields item by item', () => {
  const BSUID = 'CO.13491208655302741918';
  const T = '1750263773';

  function userIdUpdateBody(items: unknown[]) {
    return {
      object: 'whatsapp_business_account',
      entry: [
        { id: '1', changes: [{ field: 'user_id_update', value: { user_id_update: items } }] },
      ],
    };
  }

  it('reads user_preferences items, refusing alone one that is malformed or names nobody', () => {
    const body = buildUserPreferencesWebhook({
      phoneNumberId: PHONE_NUMBER_ID,
      waId: RECIPIENT,
      value: 'stop',
      timestamp: new Date(Number(T) * 1000),
    });
    const value = body.entry[0]!.changes[0]!.value as unknown as { user_preferences: unknown[] };
    value.user_preferences.push(
      { value: 'stop', timestamp: Number(T) },
      { wa_id: RECIPIENT, value: 'pause', timestamp: Number(T) },
    );

    const result = parseWebhookPayload(body);

    expect(result.ok && result.preferences).toEqual([
      { waId: RECIPIENT, userId: undefined, value: 'stop', timestamp: new Date(Number(T) * 1000) },
    ]);
    expect(result.ok && result.rejects.map((r) => [r.field, r.kind])).toEqual([
      ['user_preferences', 'preference'],
      ['user_preferences', 'preference'],
    ]);
    expect(result.ok && result.rejects[0]!.reason).toContain('neither wa_id nor user_id');
    expect(result.ok && result.unknownFields).toEqual([]);
  });

  it('reads user_id_update items, refusing alone one whose previous BSUID is missing', () => {
    const body = userIdUpdateBody([
      { wa_id: RECIPIENT, user_id: { previous: BSUID, current: 'CO.NEW1' } },
      { wa_id: RECIPIENT, user_id: { current: 'CO.NEW2' } },
    ]);

    const result = parseWebhookPayload(body);

    expect(result.ok && result.userIdUpdates).toEqual([
      { waId: RECIPIENT, previous: BSUID, current: 'CO.NEW1' },
    ]);
    expect(result.ok && result.rejects.map((r) => [r.field, r.kind])).toEqual([
      ['user_id_update', 'user_id_update'],
    ]);
    expect(result.ok && result.unknownFields).toEqual([]);
  });

  it('refuses a consent change whose item list is missing, as a whole value', () => {
    const body = userIdUpdateBody([]);
    body.entry[0]!.changes[0]!.value = { something_else: [] } as never;

    const result = parseWebhookPayload(body);

    expect(result.ok && result.rejects.map((r) => [r.field, r.kind])).toEqual([
      ['user_id_update', 'value'],
    ]);
  });

  it('reads a message with `from: ""` from a username user under their BSUID', () => {
    const body = buildInboundTextWebhook({
      phoneNumberId: PHONE_NUMBER_ID,
      from: '',
      userId: BSUID,
      text: 'STOP',
      id: 'wamid.U1',
    });

    const result = parseWebhookPayload(body);

    expect(result.ok && result.rejects).toEqual([]);
    expect(result.ok && result.inbound).toMatchObject([
      { from: undefined, fromUserId: BSUID, id: 'wamid.U1', text: 'STOP' },
    ]);
  });

  it('takes the BSUID of the paired contact when the message has none', () => {
    const body = buildInboundTextWebhook({
      phoneNumberId: PHONE_NUMBER_ID,
      from: '',
      userId: BSUID,
      text: 'STOP',
    });
    const value = body.entry[0]!.changes[0]!.value as unknown as {
      messages: Record<string, unknown>[];
    };
    delete value.messages[0]!.from_user_id;

    const result = parseWebhookPayload(body);

    expect(result.ok && result.inbound.map((m) => m.fromUserId)).toEqual([BSUID]);
  });

  it('refuses a message naming neither a phone number nor a BSUID and keeps its neighbour', () => {
    const body = buildInboundTextWebhook({
      phoneNumberId: PHONE_NUMBER_ID,
      from: RECIPIENT,
      text: 'hola',
      id: 'wamid.OK',
    });
    const value = body.entry[0]!.changes[0]!.value as unknown as {
      contacts: unknown[];
      messages: unknown[];
    };
    value.contacts = [];
    value.messages.push({ from: '', id: 'wamid.NOBODY', timestamp: T, type: 'text' });

    const result = parseWebhookPayload(body);

    expect(result.ok && result.inbound.map((m) => m.id)).toEqual(['wamid.OK']);
    expect(result.ok && result.rejects.map((r) => [r.kind, r.reason])).toEqual([
      ['message', expect.stringContaining('messages.1.from: neither')],
    ]);
  });
});
