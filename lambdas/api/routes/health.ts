/** Liveness and readiness: public, so a load balancer or a person can ask without a key. */
import * as z from 'zod';
import { checkReadiness } from '#core/admin/health.ts';
import { jsonResponse } from '#core/platform/http.ts';
import { defineRoute } from '../route.ts';
import { iso, isoOrNull } from './shared.ts';

const checkSchema = z
  .object({
    status: z.enum(['up', 'down']),
    latencyMs: z.number(),
    error: z.string().optional(),
  })
  .catchall(z.unknown());

export const readinessSchema = z
  .object({
    status: z.enum(['healthy', 'degraded', 'unhealthy']),
    version: z.string(),
    timestamp: iso,
    checks: z.object({ database: checkSchema, queue: checkSchema, whatsapp: checkSchema }),
    templates: z
      .object({
        check: z.enum(['on', 'skipped', 'off', 'unknown']),
        reason: z.string().optional(),
        templates: z.number().int().optional(),
        refreshedAt: isoOrNull.optional(),
        lastError: z.string().nullable().optional(),
      })
      .meta({
        description:
          'Whether POST /v1/notifications checks templates against the registry; `skipped` until the registry is first filled. Never affects `status`.',
      }),
  })
  .meta({ id: 'Readiness' });

export const healthRoutes = [
  defineRoute({
    method: 'GET',
    path: '/health',
    operationId: 'getLiveness',
    summary: 'Liveness',
    tag: 'health',
    scope: 'public',
    responses: {
      200: {
        description: 'The function answers',
        schema: z.object({ status: z.literal('ok'), version: z.string(), timestamp: iso }),
      },
    },
    handle: async ({ deps }) =>
      jsonResponse(200, {
        status: 'ok',
        version: deps.version,
        timestamp: deps.now().toISOString(),
      }),
  }),
  defineRoute({
    method: 'GET',
    path: '/v1/health',
    operationId: 'getReadiness',
    summary: 'Readiness: database, queues, WhatsApp circuit',
    tag: 'health',
    scope: 'public',
    responses: {
      200: { description: 'healthy', schema: readinessSchema },
      503: {
        description: 'degraded or unhealthy; the failing check says why',
        schema: readinessSchema,
      },
    },
    handle: async ({ deps }) => {
      const report = await checkReadiness({ ...deps, queueUrls: deps.queue.queueUrls });
      return jsonResponse(report.status === 'healthy' ? 200 : 503, report);
    },
  }),
];
