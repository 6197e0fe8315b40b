/** GET /v1/admin/status: the last 24 h, queues and DLQs, panic mode, limiter, rollout, scheduler. */
import * as z from 'zod';
import { readAdminStatus } from '#core/admin/admin-status.ts';
import { jsonResponse } from '#core/platform/http.ts';
import { defineRoute } from '../../route.ts';
import { iso, isoOrNull } from '../shared.ts';
import { panicStatusSchema } from './panic.ts';
import { rolloutSchema } from './rollout.ts';

const queueStatusSchema = z
  .object({
    name: z.string().meta({ example: 'high-dlq' }),
    priority: z.enum(['high', 'bulk']),
    kind: z.enum(['delivery', 'dlq']),
    url: z.string(),
    visible: z.number().int().nullable(),
    inFlight: z.number().int().nullable(),
    delayed: z.number().int().nullable(),
    oldestAgeSeconds: z.number().int().nullable().meta({
      description:
        'Age of the oldest notification waiting on this queue, from the notifications table',
    }),
    waitingNotifications: z.number().int(),
    error: z.string().optional(),
  })
  .meta({ id: 'QueueStatus' });

export const adminStatusSchema = z
  .object({
    generatedAt: iso,
    last24h: z.object({
      since: iso,
      accepted: z.number().int(),
      sent: z.number().int(),
      delivered: z.number().int(),
      read: z.number().int(),
      failed: z.number().int(),
      failedByClass: z.record(z.string(), z.number().int()),
      topErrors: z.array(
        z.object({
          errorClass: z.string(),
          errorCode: z.number().int().nullable(),
          count: z.number().int(),
          example: z.string().nullable(),
        }),
      ),
      skipped: z.number().int(),
      deferred: z.number().int(),
      inProgress: z.number().int(),
      skippedDuplicate: z.number().int(),
      skippedRateLimit: z.number().int(),
      successRatePercent: z.number().nullable(),
      cancelled: z.number().int(),
      fallbacksRequired: z.number().int().meta({
        description: 'Fallbacks marked in the window (by when they were marked)',
      }),
      fallbacksByReason: z.record(z.string(), z.number().int()),
    }),
    queues: z.array(queueStatusSchema),
    sqs: z.object({ endpoint: z.string().nullable() }),
    panic: panicStatusSchema,
    rateLimiter: z.object({
      limits: z.object({
        ratePerSecond: z.number().int(),
        perMinuteCap: z.number().int().nullable(),
        dailyCap: z.number().int().nullable(),
        recipientSpacingSeconds: z.number().int(),
        drainPerSecond: z.number().int(),
      }),
      senders: z.array(
        z.object({
          senderId: z.string(),
          tokensAvailable: z.number().int(),
          minuteCount: z.number().int(),
          dayCount: z.number().int(),
        }),
      ),
    }),
    rollout: rolloutSchema,
    scheduler: z.object({
      lastRun: z
        .object({
          startedAt: iso,
          finishedAt: isoOrNull,
          outcome: z.string(),
          detail: z.unknown(),
        })
        .nullable(),
      lastSuccessfulRunAt: isoOrNull,
    }),
    keys: z.object({
      warningDays: z.number().int(),
      expiringSoon: z
        .array(z.object({ prefix: z.string(), name: z.string(), expiresAt: iso }))
        .meta({ description: 'Working keys whose expiry is within warningDays: replace them' }),
    }),
    templates: z.object({
      check: z.enum(['on', 'skipped', 'off', 'unknown']),
      reason: z.string().optional(),
      templates: z.number().int().optional(),
      refreshedAt: isoOrNull.optional(),
      lastError: z.string().nullable().optional(),
      notApproved: z.array(
        z.object({ name: z.string(), language: z.string(), status: z.string() }),
      ),
    }),
  })
  .meta({ id: 'AdminStatus' });

export const statusRoutes = [
  defineRoute({
    method: 'GET',
    path: '/v1/admin/status',
    operationId: 'getAdminStatus',
    summary: 'Last 24 h, queues and DLQs, panic mode, rate limiter, rollout, scheduler',
    tag: 'admin',
    scope: 'admin',
    responses: { 200: { description: 'The status', schema: adminStatusSchema } },
    handle: async ({ deps }) =>
      jsonResponse(
        200,
        await readAdminStatus({
          db: deps.db,
          sqs: deps.queue.sqs,
          queueUrls: deps.queue.queueUrls,
          deadLetterQueueUrls: deps.deadLetterQueueUrls ?? {},
          senderId: deps.senderId,
          sqsEndpoint: deps.sqsEndpoint,
          now: deps.now,
          wabaId: deps.wabaId,
        }),
      ),
  }),
];
