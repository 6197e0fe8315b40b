/** A recipient's opt-outs (scope, source, time) under their phone number and linked BSUID; audited, masked. */
import * as z from 'zod';
import { writeAudit } from '#core/notifications/audit.ts';
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
        /** Which key it is recorded under: the number, or the business-scoped user id. */
        key: z.enum(['phone', 'bsuid']),
        /** `all`: nothing is sent (STOP keyword). `marketing`: marketing templates only. */
        scope: z.enum(['all', 'marketing']),
        source: z.enum(['keyword', 'meta_131050', 'user_preferences', 'operator']),
        /** Meta's time of the consent change. */
        changedAt: iso,
      }),
    ),
  })
  .meta({ id: 'RecipientOptOuts' });

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
          key: o.recipient === query.to ? 'phone' : 'bsuid',
          scope: o.scope,
          source: o.source,
          changedAt: o.changedAt.toISOString(),
        })),
      });
    },
  }),
];
