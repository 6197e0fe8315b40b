/**
 * A recipient's opt-outs (scope, source, time) under their phone number and linked BSUID; audited,
 * masked. And erasing one person (issue 16): every row that holds their number is redacted, their
 * opt-outs kept under a hash, the count answered, the action audited without the number.
 */
import * as z from 'zod';
import { writeAudit } from '#core/notifications/audit.ts';
import { ERASURE_STEPS, eraseRecipient } from '#core/notifications/erase-recipient.ts';
import { optOutsOf } from '#core/notifications/opt-outs.ts';
import { jsonResponse } from '#core/platform/http.ts';
import { maskPhone } from '#core/platform/phone.ts';
import { actorOf, defineRoute } from '../../route.ts';
import { iso } from '../shared.ts';

export const optOutQuerySchema = z
  .object({
    /** The recipient's number in E.164; its linked BSUID's opt-outs come with it. */
    to: z.string().regex(/^\+[1-9]\d{6,14}$/, 'must be E.164, e.g. +573001234567'),
  })
  .strict();

export const recipientOptOutsSchema = z
  .object({
    recipient: z.string().meta({ example: '+57******4567' }),
    optOuts: z.array(
      z.object({
        /** Which key it is recorded under: the number, the business-scoped user id, or (after an erasure) the number's hash. */
        key: z.enum(['phone', 'bsuid', 'erased']),
        /** `all`: nothing is sent (STOP keyword). `marketing`: marketing templates only. */
        scope: z.enum(['all', 'marketing']),
        source: z.enum(['keyword', 'meta_131050', 'user_preferences', 'operator']),
        /** Meta's time of the consent change. */
        changedAt: iso,
      }),
    ),
  })
  .meta({ id: 'RecipientOptOuts' });

export const eraseRequestSchema = z
  .object({
    /** The person's number in E.164: every row, opt-out, pending status and webhook record of it. */
    to: z
      .string()
      .regex(/^\+[1-9]\d{6,14}$/, 'must be E.164, e.g. +573001234567')
      .meta({ example: '+573001234567' }),
  })
  .strict()
  .meta({ id: 'RecipientErasureRequest' });

export const erasureSchema = z
  .object({
    recipient: z.string().meta({ example: '+57******4567' }),
    /** Rows touched per table; `unsentNotifications` were also skipped so nothing is sent. */
    erased: z.object(
      Object.fromEntries(Object.keys(ERASURE_STEPS).map((name) => [name, z.number().int()])),
    ),
    total: z.number().int().meta({ description: 'Rows redacted or deleted, all tables' }),
  })
  .meta({ id: 'RecipientErasure' });

export const recipientRoutes = [
  defineRoute({
    method: 'GET',
    path: '/v1/admin/recipients/opt-outs',
    operationId: 'getRecipientOptOuts',
    summary: 'A recipient’s opt-outs with scope, source and time (audited; number masked)',
    tag: 'admin',
    scope: 'admin',
    request: { query: optOutQuerySchema },
    responses: {
      200: { description: 'The opt-outs, oldest first', schema: recipientOptOutsSchema },
    },
    handle: async ({ ctx, deps, client, query }) => {
      const optOuts = await optOutsOf(deps.db, query.to);
      // Looking a person up is itself worth a trace; the detail names no one.
      await writeAudit(deps.db, {
        actor: actorOf(client),
        action: 'recipients.opt_outs_read',
        outcome: 'ok',
        requestId: ctx.requestId,
        sourceIp: ctx.sourceIp,
        detail: { found: optOuts.length },
      });
      return jsonResponse(200, {
        recipient: maskPhone(query.to),
        optOuts: optOuts.map((o) => ({
          key:
            o.recipient === query.to
              ? 'phone'
              : o.recipient.startsWith('sha256:')
                ? 'erased'
                : 'bsuid',
          scope: o.scope,
          source: o.source,
          changedAt: o.changedAt.toISOString(),
        })),
      });
    },
  }),
  defineRoute({
    method: 'POST',
    path: '/v1/admin/recipients/erase',
    operationId: 'eraseRecipient',
    summary:
      'Erase one person: redact every notification, webhook record and pending status with the number; opt-outs kept as a hash (audited without the number)',
    tag: 'admin',
    scope: 'admin',
    request: { body: { schema: eraseRequestSchema, maxBytes: 1_024 } },
    responses: {
      200: { description: 'What was erased, per table', schema: erasureSchema },
    },
    handle: async ({ ctx, deps, client, body }) => {
      const { counts, total } = await eraseRecipient(deps.db, body.to, deps.now());
      // The trace of the erasure names the operator and the counts, never the person.
      await writeAudit(deps.db, {
        actor: actorOf(client),
        action: 'recipients.erase',
        outcome: 'ok',
        requestId: ctx.requestId,
        sourceIp: ctx.sourceIp,
        detail: { erased: counts, total },
      });
      deps.logger.info('recipient erased', { erased: counts, total });
      return jsonResponse(200, { recipient: maskPhone(body.to), erased: counts, total });
    },
  }),
];
