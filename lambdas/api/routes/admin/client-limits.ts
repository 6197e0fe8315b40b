/** A client's limits changed after its first key: each given one set or removed (audited in the core). */
import * as z from 'zod';
import { setClientLimits } from '#core/admin/client-limits.ts';
import { HttpError, jsonResponse } from '#core/platform/http.ts';
import { isUuid } from '#core/platform/ids.ts';
import { actorOf, defineRoute } from '../../route.ts';
import { createKeyRequestSchema, limitsSchema } from './keys.ts';

// The bounds are those of a new key's limits, so a limit set here could also have been set there.
const createShape = createKeyRequestSchema.shape;

export const clientLimitsRequestSchema = z
  .object({
    ratePerSecond: createShape.ratePerSecond.unwrap().nullable().optional().meta({
      description:
        'Notifications accepted per second (a burst of 10 s of it); null removes the limit; left out: kept',
      example: 5,
    }),
    dailyQuota: createShape.dailyQuota.unwrap().nullable().optional().meta({
      description:
        'Notifications accepted per UTC day (today’s count so far still counts); null removes the limit; left out: kept',
      example: 5000,
    }),
    maxPriority: createShape.maxPriority.unwrap().nullable().optional().meta({
      description:
        '`bulk`: a request for `high` is refused with 403; null removes the limit; left out: kept',
    }),
  })
  .strict()
  .refine(
    (body) => Object.values(body).some((v) => v !== undefined),
    'give at least one of ratePerSecond, dailyQuota, maxPriority',
  )
  .meta({ id: 'ClientLimitsRequest' });

const clientLimitsSchema = z
  .object({
    clientId: z.string().meta({ format: 'uuid' }),
    name: z.string(),
    limits: limitsSchema,
    // The limits before this change (a $ref to the same schema, so no description of its own).
    previousLimits: limitsSchema,
  })
  .meta({ id: 'ClientLimitsChanged' });

const clientParams = z.object({ clientId: z.string().meta({ format: 'uuid' }) });

export const clientLimitsRoutes = [
  defineRoute({
    method: 'PUT',
    path: '/v1/admin/clients/{clientId}/limits',
    operationId: 'setClientLimits',
    summary: "Change a client's rate, daily quota or highest priority (audited)",
    tag: 'admin',
    scope: 'admin',
    request: { params: clientParams, body: { schema: clientLimitsRequestSchema } },
    responses: {
      200: { description: 'The client’s limits now, and before', schema: clientLimitsSchema },
      404: { description: 'No such client' },
    },
    handle: async ({ ctx, deps, client, params, body }) => {
      const changed = isUuid(params.clientId)
        ? await setClientLimits(
            deps.db,
            { actor: actorOf(client), requestId: ctx.requestId, sourceIp: ctx.sourceIp },
            { clientId: params.clientId, change: body },
          )
        : undefined;
      if (!changed) throw new HttpError(404, 'not_found', 'no such client');
      return jsonResponse(200, {
        clientId: changed.clientId,
        name: changed.name,
        limits: changed.to,
        previousLimits: changed.from,
      });
    },
  }),
];
