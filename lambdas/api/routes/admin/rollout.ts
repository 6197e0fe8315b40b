/** Rollout switches and sending limits: read them, or change some (audited in the same transaction). */
import * as z from 'zod';
import { getRollout, rolloutPatchSchema, updateRollout } from '#core/delivery/rollout.ts';
import { HttpError, jsonResponse } from '#core/platform/http.ts';
import { actorOf, defineRoute } from '../../route.ts';
import { iso } from '../shared.ts';

export const rolloutSchema = z
  .object({
    deliveryEnabled: z.boolean(),
    dryRun: z.boolean(),
    pilotPrefixes: z.array(z.string()),
    ratePerSecond: z.number().int(),
    perMinuteCap: z.number().int().nullable(),
    dailyCap: z.number().int().nullable(),
    recipientSpacingSeconds: z.number().int(),
    drainPerSecond: z.number().int(),
    updatedAt: iso,
    updatedBy: z.string(),
  })
  .meta({ id: 'Rollout' });

const rolloutPatchDocument = rolloutPatchSchema.meta({ id: 'RolloutPatch' });

export const rolloutRoutes = [
  defineRoute({
    method: 'GET',
    path: '/v1/admin/rollout',
    operationId: 'getRollout',
    summary: 'Rollout switches and sending limits',
    tag: 'admin',
    scope: 'admin',
    responses: { 200: { description: 'The switches', schema: rolloutSchema } },
    handle: async ({ deps }) => jsonResponse(200, await getRollout(deps.db)),
  }),
  defineRoute({
    method: 'PUT',
    path: '/v1/admin/rollout',
    operationId: 'updateRollout',
    summary: 'Change some rollout switches (audited); fields left out keep their value',
    tag: 'admin',
    scope: 'admin',
    request: { body: { schema: rolloutPatchSchema, document: rolloutPatchDocument } },
    responses: { 200: { description: 'The switches after the change', schema: rolloutSchema } },
    handle: async ({ ctx, deps, client, body }) => {
      if (Object.keys(body).length === 0) {
        throw new HttpError(400, 'validation_error', 'the body names no setting to change');
      }
      const rollout = await updateRollout(deps.db, body, actorOf(client), ctx.requestId);
      deps.logger.info('rollout updated', { fields: Object.keys(body) });
      return jsonResponse(200, rollout);
    },
  }),
];
