/**
 * What the webhook kept aside: Meta's template, number and account events, and the items it could
 * not read. Read-only; phone-like text is masked again on the way out and a refused item's raw
 * JSON (which may hold a phone number) never leaves the database.
 */
import * as z from 'zod';
import { jsonResponse } from '#core/platform/http.ts';
import { maskPhonesIn } from '#core/platform/phone.ts';
import { WEBHOOK_REJECT_RETENTION_DAYS } from '#core/whatsapp/webhook-records.ts';
import { defineRoute } from '../../route.ts';
import { iso } from '../shared.ts';

const pageQuery = z
  .object({
    limit: z.coerce.number().int().min(1).max(200).default(20),
    /** Only this webhook field, e.g. `account_update`. */
    field: z
      .string()
      .regex(/^[a-z_]{1,64}$/)
      .optional(),
  })
  .strict();

export const whatsappEventsSchema = z
  .object({
    events: z.array(
      z.object({
        id: z.string(),
        receivedAt: iso,
        field: z.string().meta({ example: 'message_template_status_update' }),
        event: z.string().meta({ example: 'REJECTED' }),
        wabaId: z.string().nullable(),
        payload: z
          .unknown()
          .meta({ description: 'The event value as Meta sent it, phone numbers removed' }),
      }),
    ),
  })
  .meta({ id: 'WhatsAppEvents' });

export const webhookRejectsSchema = z
  .object({
    retentionDays: z.number().int(),
    rejects: z.array(
      z.object({
        id: z.string(),
        receivedAt: iso,
        field: z.string().meta({ example: 'messages' }),
        kind: z.string().meta({ example: 'status' }),
        reason: z.string(),
      }),
    ),
  })
  .meta({ id: 'WebhookRejects' });

/** Masks phone-like text in stored values; ids (`*_id`, `wabaId`…) are left as they are. */
function maskDeep(value: unknown, key = ''): unknown {
  if (typeof value === 'string') return /(_id|Id)$/.test(key) ? value : maskPhonesIn(value);
  if (Array.isArray(value)) return value.map((item) => maskDeep(item));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, maskDeep(v, k)]));
  }
  return value;
}

export const webhookRecordRoutes = [
  defineRoute({
    method: 'GET',
    path: '/v1/admin/whatsapp/events',
    operationId: 'listWhatsAppEvents',
    summary: 'Template, number and account events Meta sent to the webhook, newest first',
    tag: 'admin',
    scope: 'admin',
    request: { query: pageQuery },
    responses: { 200: { description: 'Recent events', schema: whatsappEventsSchema } },
    handle: async ({ deps, query }) => {
      let select = deps.db
        .selectFrom('whatsapp_events')
        .select(['id', 'received_at', 'field', 'event', 'waba_id', 'payload'])
        .orderBy('id', 'desc')
        .limit(query.limit);
      if (query.field) select = select.where('field', '=', query.field);
      const rows = await select.execute();
      return jsonResponse(200, {
        events: rows.map((r) => ({
          id: String(r.id),
          receivedAt: r.received_at.toISOString(),
          field: r.field,
          event: maskPhonesIn(r.event),
          wabaId: r.waba_id,
          payload: maskDeep(r.payload),
        })),
      });
    },
  }),
  defineRoute({
    method: 'GET',
    path: '/v1/admin/whatsapp/rejects',
    operationId: 'listWebhookRejects',
    summary:
      'Webhook items that could not be read (kept 7 days; the raw item stays in the database)',
    tag: 'admin',
    scope: 'admin',
    request: { query: pageQuery },
    responses: { 200: { description: 'Recent refused items', schema: webhookRejectsSchema } },
    handle: async ({ deps, query }) => {
      let select = deps.db
        .selectFrom('webhook_rejects')
        .select(['id', 'received_at', 'field', 'kind', 'reason'])
        .orderBy('id', 'desc')
        .limit(query.limit);
      if (query.field) select = select.where('field', '=', query.field);
      const rows = await select.execute();
      return jsonResponse(200, {
        retentionDays: WEBHOOK_REJECT_RETENTION_DAYS,
        rejects: rows.map((r) => ({
          id: String(r.id),
          receivedAt: r.received_at.toISOString(),
          field: maskPhonesIn(r.field),
          kind: r.kind,
          reason: maskPhonesIn(r.reason),
        })),
      });
    },
  }),
];
