/**
 * Liveness and readiness: public, so a load balancer or a person can ask without a key; the
 * details (queue depths, circuit, version) only for a caller with a valid key of any scope.
 */
import * as z from 'zod';
import { authenticateApiKey } from '#core/admin/api-keys.ts';
import { checkReadiness, readinessStatusCode, readinessSummary } from '#core/admin/health.ts';
import { header, jsonResponse } from '#core/platform/http.ts';
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
    timestamp: iso,
    version: z.string().optional().meta({ description: 'Only with a valid X-API-Key' }),
    checks: z
      .object({ database: checkSchema, queue: checkSchema, whatsapp: checkSchema })
      .optional()
      .meta({ description: 'Only with a valid X-API-Key: each part, queue depths, circuit' }),
    templates: z
      .object({
        check: z.enum(['on', 'skipped', 'off', 'unknown']),
        reason: z.string().optional(),
        templates: z.number().int().optional(),
        refreshedAt: isoOrNull.optional(),
        lastError: z.string().nullable().optional(),
      })
      .optional()
      .meta({
        description:
          'Only with a valid X-API-Key: whether POST /v1/notifications checks templates against the registry; `skipped` until the registry is first filled. Never affects `status`.',
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
        schema: z.object({ status: z.literal('ok'), timestamp: iso }),
      },
    },
    // No version here: which build runs is a detail for key holders (/v1/health with a key).
    handle: async ({ deps }) =>
      jsonResponse(200, { status: 'ok', timestamp: deps.now().toISOString() }),
  }),
  defineRoute({
    method: 'GET',
    path: '/v1/health',
    operationId: 'getReadiness',
    summary:
      'Readiness: status for anyone; database, queues, WhatsApp circuit and version with a valid X-API-Key',
    tag: 'health',
    scope: 'public',
    responses: {
      200: {
        description:
          'healthy, or degraded by an open circuit (panic mode) alone: the API itself takes notifications',
        schema: readinessSchema,
        headers: ['Cache-Control'],
      },
      503: {
        description:
          'the database or the queues are down; with a key, the failing check says which',
        schema: readinessSchema,
        headers: ['Cache-Control'],
      },
    },
    handle: async ({ deps, ctx }) => {
      const report = await checkReadiness({ ...deps, queueUrls: deps.queue.queueUrls });
      const status = readinessStatusCode(report);
      // Any valid key sees the details; a missing or bad one is simply anonymous here (not a 401,
      // and not audited: this route is public and polled).
      const auth = header(ctx.event, 'x-api-key')
        ? await authenticateApiKey(deps.db, header(ctx.event, 'x-api-key'), deps.now()).catch(
            () => ({ ok: false as const }),
          )
        : { ok: false as const };
      return jsonResponse(status, auth.ok ? report : readinessSummary(report), {
        'cache-control': 'no-store',
      });
    },
  }),
];
