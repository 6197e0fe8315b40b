/**
 * The client routes: accept one notification or a batch, read one back. Outcomes of the core's
 * acceptance map to HTTP here, once, for the single route and for each batch item alike.
 */
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import * as z from 'zod';
import {
  batchItemDocumentSchema,
  batchRequestSchema,
  MAX_BATCH_BODY_BYTES,
  MAX_BATCH_SIZE,
  notificationRequestSchema,
} from '#core/model/notification-request.ts';
import {
  type AcceptDeps,
  type AcceptOutcome,
  acceptNotification,
  acceptNotificationBatch,
  type BatchItem,
  findNotification,
} from '#core/notifications/accept-notification.ts';
import type { NotificationView } from '#core/notifications/notification-view.ts';
import { errorFields, HttpError, jsonResponse } from '#core/platform/http.ts';
import { isUuid } from '#core/platform/ids.ts';
import { Metric } from '#core/platform/metric-names.ts';
import { type ApiDeps, defineRoute, describeIssue, idempotencyKeySchema } from '../route.ts';
import { errorSchema, notificationIdParams, notificationSchema } from './shared.ts';

export const batchAnswerSchema = z
  .object({
    accepted: z.number().int(),
    rejected: z.number().int(),
    results: z.array(
      z.object({
        index: z.number().int().meta({ description: 'Position of the item in the request' }),
        status: z.number().int().meta({ example: 202 }),
        notification: notificationSchema.optional(),
        replayed: z.boolean().optional(),
        error: errorSchema.shape.error.omit({ requestId: true }).optional(),
      }),
    ),
  })
  .meta({ id: 'NotificationBatchAnswer' });

// `.meta({id})` registers a schema in zod's global registry, which refuses a second schema under
// the same id: named once here.
const notificationRequestDocument = notificationRequestSchema.meta({ id: 'NotificationRequest' });
const batchRequestDocument = z
  .object({ notifications: z.array(batchItemDocumentSchema).min(1).max(MAX_BATCH_SIZE) })
  .strict()
  .meta({ id: 'NotificationBatchRequest' });

type ErrorFields = { code: string; message: string; field?: string | undefined };

/**
 * A refused acceptance as an error, worded for where the key came from: the Idempotency-Key
 * header of a single request, or the idempotencyKey field of a batch item (`at` prefixes fields).
 */
function refusal(
  outcome: Exclude<AcceptOutcome, { kind: 'accepted' }>,
  keyName: string,
  at: (field: string) => string,
): { status: number; error: ErrorFields } {
  switch (outcome.kind) {
    case 'invalid':
      return {
        status: 400,
        error: { code: 'validation_error', message: outcome.message, field: at(outcome.field) },
      };
    case 'template_refused':
      // The template as the registry knows it would not be sent by Meta: refused before a row exists.
      return {
        status: 422,
        error: {
          code: outcome.code,
          message: outcome.message,
          field: at(`template.${outcome.field}`),
        },
      };
    case 'idempotency_mismatch':
      return {
        status: 422,
        error: {
          code: 'idempotency_key_reused',
          message: `this ${keyName} was used with a different body`,
          field: at(keyName),
        },
      };
    case 'idempotency_in_flight':
      return {
        status: 409,
        error: {
          code: 'idempotency_key_in_flight',
          message: `a request with this ${keyName} is still being processed; retry shortly`,
          field: at(keyName),
        },
      };
  }
}

function acceptDeps(deps: ApiDeps): AcceptDeps {
  return {
    db: deps.db,
    queue: deps.queue,
    now: deps.now,
    onEnqueueFailure: (id, reason) =>
      deps.logger.error('enqueue failed; the outbox sweep will retry', {
        notificationId: id,
        error: reason,
      }),
    ...(deps.wabaId
      ? {
          templates: {
            wabaId: deps.wabaId,
            onTemplateCheckSkipped: (templates: number) =>
              deps.metrics.addMetric(Metric.TemplateCheckSkipped, MetricUnit.Count, templates),
          },
        }
      : {}),
  };
}

/** The dashboard graphs accepted notifications by priority (low cardinality: two values). */
function countAccepted(deps: ApiDeps, accepted: readonly NotificationView[]) {
  for (const priority of ['high', 'bulk'] as const) {
    const count = accepted.filter((n) => n.priority === priority).length;
    if (count === 0) continue;
    const metric = deps.metrics.singleMetric();
    metric.addDimension('Priority', priority);
    metric.addMetric(Metric.NotificationsAccepted, MetricUnit.Count, count);
  }
  for (const notification of accepted) {
    deps.logger.info('notification accepted', {
      notificationId: notification.id,
      priority: notification.priority,
      status: notification.status,
    });
  }
}

interface BatchResult {
  status: number;
  notification?: NotificationView;
  replayed?: boolean;
  error?: ErrorFields;
}

const batchKeySchema = idempotencyKeySchema('idempotencyKey');

/** One batch item: an optional idempotencyKey split off, the rest a notification request. */
function parseBatchItem(raw: unknown, index: number): { item: BatchItem } | { error: ErrorFields } {
  const prefix = ['notifications', String(index)];
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return {
      error: { code: 'validation_error', message: 'must be an object', field: prefix.join('.') },
    };
  }
  const { idempotencyKey, ...request } = raw as Record<string, unknown>;
  const key = batchKeySchema.safeParse(idempotencyKey);
  if (!key.success) {
    return {
      error: {
        code: 'validation_error',
        ...describeIssue(key.error, [...prefix, 'idempotencyKey']),
      },
    };
  }
  const parsed = notificationRequestSchema.safeParse(request);
  if (!parsed.success) {
    return { error: { code: 'validation_error', ...describeIssue(parsed.error, prefix) } };
  }
  return { item: { request: parsed.data, idempotencyKey: key.data } };
}

function batchResult(outcome: AcceptOutcome, index: number): BatchResult {
  if (outcome.kind === 'accepted') {
    return {
      status: 202,
      notification: outcome.notification,
      ...(outcome.replayed ? { replayed: true } : {}),
    };
  }
  return refusal(outcome, 'idempotencyKey', (name) => `notifications.${index}.${name}`);
}

export const notificationRoutes = [
  defineRoute({
    method: 'POST',
    path: '/v1/notifications',
    operationId: 'createNotification',
    summary: 'Accept a notification (scope notifications:write)',
    tag: 'notifications',
    scope: 'notifications:write',
    request: {
      headers: z.object({
        'Idempotency-Key': idempotencyKeySchema('Idempotency-Key').meta({
          description:
            'Same key and body: the first answer again; different body: 422; still running: 409',
        }),
      }),
      body: { schema: notificationRequestSchema, document: notificationRequestDocument },
    },
    responses: {
      202: {
        description: 'Accepted; `Location` points at the notification',
        schema: notificationSchema,
        headers: ['Location', 'Idempotent-Replayed'],
      },
      409: { description: 'A request with this Idempotency-Key is still running' },
      422: {
        description:
          'This Idempotency-Key was used with a different body (idempotency_key_reused), or the template registry says Meta would refuse the template: template_not_found (name or language), template_not_approved, template_parameters_mismatch; `field` names the part. Nothing is stored.',
      },
    },
    handle: async ({ ctx, deps, client, headers, body }) => {
      const outcome = await acceptNotification(acceptDeps(deps), {
        clientId: client.clientId,
        requestId: ctx.requestId,
        request: body,
        idempotencyKey: headers['Idempotency-Key'],
      });
      if (outcome.kind !== 'accepted') {
        const { status, error } = refusal(outcome, 'Idempotency-Key', (name) => name);
        throw new HttpError(status, error.code, error.message, error.field);
      }
      if (!outcome.replayed) countAccepted(deps, [outcome.notification]);
      return jsonResponse(202, outcome.notification, {
        location: `/v1/notifications/${outcome.notification.id}`,
        ...(outcome.replayed ? { 'idempotent-replayed': 'true' } : {}),
      });
    },
  }),
  defineRoute({
    method: 'POST',
    path: '/v1/notifications/batch',
    operationId: 'createNotificationBatch',
    summary: `Accept up to ${MAX_BATCH_SIZE} notifications, each answered on its own (scope notifications:write)`,
    tag: 'notifications',
    scope: 'notifications:write',
    request: {
      body: {
        schema: batchRequestSchema,
        document: batchRequestDocument,
        maxBytes: MAX_BATCH_BODY_BYTES,
      },
    },
    responses: {
      202: { description: 'Every item accepted', schema: batchAnswerSchema },
      207: {
        description:
          'Some items refused: each result has its own status (202, 400, 409, 422) and error; a template the registry refuses is a 422 with the codes of POST /v1/notifications',
        schema: batchAnswerSchema,
      },
    },
    handle: async ({ ctx, deps, client, body }) => {
      const { notifications } = body;
      const results: BatchResult[] = notifications.map(() => ({ status: 0 }));
      const items: { index: number; item: BatchItem }[] = [];
      const keys = new Set<string>();
      for (const [index, raw] of notifications.entries()) {
        const parsed = parseBatchItem(raw, index);
        if ('error' in parsed) {
          results[index] = { status: 400, error: parsed.error };
        } else if (parsed.item.idempotencyKey && keys.has(parsed.item.idempotencyKey)) {
          results[index] = {
            status: 400,
            error: {
              code: 'validation_error',
              message: 'this idempotencyKey appears twice in the batch',
              field: `notifications.${index}.idempotencyKey`,
            },
          };
        } else {
          if (parsed.item.idempotencyKey) keys.add(parsed.item.idempotencyKey);
          items.push({ index, item: parsed.item });
        }
      }
      const outcomes = await acceptNotificationBatch(acceptDeps(deps), {
        clientId: client.clientId,
        requestId: ctx.requestId,
        items: items.map((i) => i.item),
      });
      for (const [n, outcome] of outcomes.entries()) {
        results[items[n]!.index] = batchResult(outcome, items[n]!.index);
      }
      countAccepted(
        deps,
        outcomes.flatMap((o) => (o.kind === 'accepted' && !o.replayed ? [o.notification] : [])),
      );
      const accepted = results.filter((r) => r.status === 202).length;
      return jsonResponse(accepted === results.length ? 202 : 207, {
        accepted,
        rejected: results.length - accepted,
        results: results.map((r, index) => ({
          index,
          ...r,
          ...(r.error ? { error: errorFields(r.error) } : {}),
        })),
      });
    },
  }),
  defineRoute({
    method: 'GET',
    path: '/v1/notifications/{id}',
    operationId: 'getNotification',
    summary: 'Read a notification (scope notifications:read); only your own',
    tag: 'notifications',
    scope: 'notifications:read',
    request: { params: notificationIdParams },
    responses: {
      200: { description: 'The notification', schema: notificationSchema },
      404: { description: 'No such notification (or another client’s)' },
    },
    handle: async ({ deps, client, params }) => {
      // Another client's notification and a missing one look the same: 404.
      const found = isUuid(params.id)
        ? await findNotification(deps.db, client.clientId, params.id)
        : undefined;
      if (!found) throw new HttpError(404, 'not_found', 'no such notification');
      return jsonResponse(200, found);
    },
  }),
];
