/** A client's default fallback delay: set or clear it (audited in the core). */
import * as z from 'zod';
import { setClientFallback } from '#core/admin/client-fallback.ts';
import { FALLBACK_MAX_SECONDS, FALLBACK_MIN_SECONDS } from '#core/model/notification-request.ts';
import { HttpError, jsonResponse } from '#core/platform/http.ts';
import { isUuid } from '#core/platform/ids.ts';
import { actorOf, defineRoute } from '../../route.ts';

export const clientFallbackRequestSchema = z
  .object({
    afterSeconds: z
      .number()
      .int()
      .min(FALLBACK_MIN_SECONDS)
      .max(FALLBACK_MAX_SECONDS)
      .nullable()
      .meta({
        description: `The fallback delay (${FALLBACK_MIN_SECONDS} to ${FALLBACK_MAX_SECONDS} seconds) a notification of this client gets when it names none; null clears it. Applies to notifications accepted from now on.`,
        example: 900,
      }),
  })
  .strict()
  .meta({ id: 'ClientFallbackRequest' });

const clientFallbackSchema = z
  .object({
    clientId: z.string().meta({ format: 'uuid' }),
    name: z.string(),
    fallbackAfterSeconds: z.number().int().nullable(),
  })
  .meta({ id: 'ClientFallback' });

const clientParams = z.object({ clientId: z.string().meta({ format: 'uuid' }) });

export const clientFallbackRoutes = [
  defineRoute({
    method: 'PUT',
    path: '/v1/admin/clients/{clientId}/fallback',
    operationId: 'setClientFallback',
    summary: "Set or clear a client's default fallback delay (audited)",
    tag: 'admin',
    scope: 'admin',
    request: { params: clientParams, body: { schema: clientFallbackRequestSchema } },
    responses: {
      200: { description: 'The client and its default', schema: clientFallbackSchema },
      404: { description: 'No such client' },
    },
    handle: async ({ ctx, deps, client, params, body }) => {
      const updated = isUuid(params.clientId)
        ? await setClientFallback(
            deps.db,
            { actor: actorOf(client), requestId: ctx.requestId, sourceIp: ctx.sourceIp },
            { clientId: params.clientId, afterSeconds: body.afterSeconds },
          )
        : undefined;
      if (!updated) throw new HttpError(404, 'not_found', 'no such client');
      return jsonResponse(200, updated);
    },
  }),
];
