/** GET /v1/admin/status/outcomes: outcomes over the last N hours, against yesterday, per client. */
import * as z from 'zod';
import { MAX_WINDOW_HOURS, readOutcomeWindows } from '#core/admin/outcome-window.ts';
import { jsonResponse } from '#core/platform/http.ts';
import { defineRoute } from '../../route.ts';
import { iso } from '../shared.ts';
import { adminStatusSchema } from './status.ts';

export const outcomeQuerySchema = z
  .object({
    hours: z.coerce.number().int().min(1).max(MAX_WINDOW_HOURS).default(24),
    /** `yesterday`: the same hours 24 hours earlier, side by side. */
    compare: z.enum(['yesterday']).optional(),
    /** `true`: accepted, sent and failed per client in the window. */
    byClient: z.enum(['true', 'false']).optional(),
  })
  .strict();

const outcomeWindowSchema = adminStatusSchema.shape.last24h
  .extend({ until: iso, hours: z.number().int() })
  .meta({ id: 'OutcomeWindow' });

export const outcomeWindowsSchema = z
  .object({
    current: outcomeWindowSchema,
    previous: outcomeWindowSchema.nullable(),
    byClient: z
      .array(
        z.object({
          clientId: z.string(),
          clientName: z.string().nullable(),
          accepted: z.number().int(),
          sent: z.number().int(),
          failed: z.number().int(),
          successRatePercent: z.number().nullable(),
        }),
      )
      .nullable(),
  })
  .meta({ id: 'OutcomeWindows' });

export const outcomeRoutes = [
  defineRoute({
    method: 'GET',
    path: '/v1/admin/status/outcomes',
    operationId: 'getOutcomeWindows',
    summary: 'Outcomes of the last N hours, optionally against yesterday and per client',
    tag: 'admin',
    scope: 'admin',
    request: { query: outcomeQuerySchema },
    responses: { 200: { description: 'The windows', schema: outcomeWindowsSchema } },
    handle: async ({ deps, query }) =>
      jsonResponse(
        200,
        await readOutcomeWindows(
          deps.db,
          { hours: query.hours, compare: query.compare, byClient: query.byClient === 'true' },
          deps.now(),
        ),
      ),
  }),
];
