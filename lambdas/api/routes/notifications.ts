/**
 * The client routes: accept one notification or a batch, read one back, cancel one. Outcomes of the core's
 * acceptance map to HTTP here, once, for the single route and for each batch item alike.
 */
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import * as z from 'zod';
import {
  batchItemDocumentSchema,
  batchRequestSchema,
  MAX_BATCH_BODY_BYTES,
  MAX_BATCH_SIZE,
  MAX_BODY_BYTES,
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
import { cancelNotification } from '#core/notifications/cancel-notification.ts';
import {
  hasCountedLimits,
  priorityAllowed,
  type QuotaAnswer,
  quotaAnswer,
  returnClientQuota,
  takeClientQuota,
} from '#core/notifications/client-quota.ts';
import type { NotificationView } from '#core/notifications/notification-view.ts';
import { errorFields, errorResponse, HttpError, jsonResponse } from '#core/platform/http.ts';
import { isUuid } from '#core/platform/ids.ts';
import { Metric } from '#core/platform/metric-names.ts';
import {
  type ApiCaller,
  type ApiDeps,
  actorOf,
  defineRoute,
  describeIssue,
  idempotencyKeySchema,
} from '../route.ts';
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
const notificationRequestDocument = notificationRequestSchema.meta({
  id: 'NotificationRequest',
  description: `At most ${MAX_BODY_BYTES} bytes as JSON, alone or as a batch item; template parameters of the types Meta documents, media by https link or media id`,
});
const batchRequestDocument = z
  .object({ notifications: z.array(batchItemDocumentSchema).min(1).max(MAX_BATCH_SIZE) })
  .strict()
  .meta({ id: 'NotificationBatchRequest' });

const cancelConflictSchema = z
  .object({ error: errorSchema.shape.error, notification: notificationSchema })
  .meta({ id: 'CancelConflict' });

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

// ------------------------------------------------------------------ the client's own limits

const LIMIT_HEADERS = ['RateLimit-Policy', 'RateLimit'] as const;
const REFUSED_HEADERS = ['Retry-After', ...LIMIT_HEADERS] as const;

const priorityRefusal = (field: string): ErrorFields => ({
  code: 'priority_not_allowed',
  message: 'this key may only send bulk notifications',
  field,
});

/** The error a notification refused by the client's rate or quota gets. */
function quotaRefusal(answer: QuotaAnswer, client: ApiCaller): ErrorFields {
  return answer.refusedBy === 'daily'
    ? {
        code: 'daily_quota_exceeded',
        message: `this key's daily quota of ${client.limits.dailyQuota} notifications is used up; it resets at 00:00 UTC`,
      }
    : {
        code: 'rate_limited',
        message: `over this key's rate of ${client.limits.ratePerSecond} notifications per second; retry after ${answer.retryAfterSeconds} s`,
      };
}

/**
 * Takes `wanted` acceptances from the client's rate and daily quota; undefined (and no database
 * round trip) for a client without either.
 */
async function takeQuota(deps: ApiDeps, client: ApiCaller, wanted: number) {
  if (!hasCountedLimits(client.limits) || wanted === 0) return undefined;
  const now = deps.now();
  const take = await takeClientQuota(deps.db, client.clientId, wanted, now);
  const answer = quotaAnswer(take.limits, take, now);
  if (answer.refusedBy) {
    deps.logger.warn('client limit reached', {
      refusedBy: answer.refusedBy,
      refused: take.wanted - take.granted,
      retryAfterSeconds: answer.retryAfterSeconds,
    });
  }
  return { take, answer };
}

/** Items that stored nothing new (a replay, a refusal) give back what they took. */
async function returnUnused(deps: ApiDeps, client: ApiCaller, outcomes: AcceptOutcome[]) {
  const unused = outcomes.filter((o) => o.kind !== 'accepted' || o.replayed).length;
  await returnClientQuota(deps.db, client.clientId, unused, deps.now());
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
        headers: ['Location', 'Idempotent-Replayed', ...LIMIT_HEADERS],
      },
      403: { description: 'The key lacks the scope, or may not ask for this priority' },
      409: { description: 'A request with this Idempotency-Key is still running' },
      422: {
        description:
          'This Idempotency-Key was used with a different body (idempotency_key_reused), or the template registry says Meta would refuse the template: template_not_found (name or language), template_not_approved, template_parameters_mismatch; `field` names the part. Nothing is stored.',
      },
      429: {
        description:
          'Over this key’s rate (`rate_limited`) or daily quota (`daily_quota_exceeded`, until 00:00 UTC), or throttled by API Gateway; wait `Retry-After` seconds',
        headers: REFUSED_HEADERS,
      },
    },
    handle: async ({ ctx, deps, client, headers, body }) => {
      if (!priorityAllowed(client.limits, body.priority)) {
        const refused = priorityRefusal('priority');
        throw new HttpError(403, refused.code, refused.message, refused.field);
      }
      const quota = await takeQuota(deps, client, 1);
      if (quota?.answer.refusedBy) {
        const refused = quotaRefusal(quota.answer, client);
        const answer = errorResponse(
          new HttpError(429, refused.code, refused.message),
          ctx.requestId,
        );
        return { ...answer, headers: { ...answer.headers, ...quota.answer.headers } };
      }
      const outcome = await acceptNotification(acceptDeps(deps), {
        clientId: client.clientId,
        requestId: ctx.requestId,
        request: body,
        idempotencyKey: headers['Idempotency-Key'],
      });
      if (quota && (outcome.kind !== 'accepted' || outcome.replayed)) {
        // Nothing new was stored: the acceptance it took is given back.
        await returnClientQuota(deps.db, client.clientId, 1, deps.now());
      }
      if (outcome.kind !== 'accepted') {
        const { status, error } = refusal(outcome, 'Idempotency-Key', (name) => name);
        throw new HttpError(status, error.code, error.message, error.field);
      }
      if (!outcome.replayed) countAccepted(deps, [outcome.notification]);
      return jsonResponse(202, outcome.notification, {
        location: `/v1/notifications/${outcome.notification.id}`,
        ...(outcome.replayed ? { 'idempotent-replayed': 'true' } : {}),
        ...quota?.answer.headers,
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
      202: {
        description: 'Every item accepted',
        schema: batchAnswerSchema,
        headers: LIMIT_HEADERS,
      },
      207: {
        description:
          'Some items refused: each result has its own status (202, 400, 403, 409, 422, 429) and error; a template the registry refuses is a 422 with the codes of POST /v1/notifications. Each item counts toward the key’s rate and daily quota; the items over them get 429, and `Retry-After` says when to send them again',
        schema: batchAnswerSchema,
        headers: REFUSED_HEADERS,
      },
      429: {
        description:
          'Every item was over this key’s rate (`rate_limited`) or daily quota (`daily_quota_exceeded`, until 00:00 UTC): the batch answer, each item 429; wait `Retry-After` seconds. (API Gateway’s own throttling answers 429 too, without these headers)',
        schema: batchAnswerSchema,
        headers: REFUSED_HEADERS,
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
        } else if (!priorityAllowed(client.limits, parsed.item.request.priority)) {
          results[index] = {
            status: 403,
            error: priorityRefusal(`notifications.${index}.priority`),
          };
        } else {
          if (parsed.item.idempotencyKey) keys.add(parsed.item.idempotencyKey);
          items.push({ index, item: parsed.item });
        }
      }
      // Each item counts; the first ones granted are accepted, the rest answered 429.
      const quota = await takeQuota(deps, client, items.length);
      const granted = quota ? quota.take.granted : items.length;
      for (const { index } of items.slice(granted)) {
        results[index] = { status: 429, error: quotaRefusal(quota!.answer, client) };
      }
      const admitted = items.slice(0, granted);
      const outcomes = await acceptNotificationBatch(acceptDeps(deps), {
        clientId: client.clientId,
        requestId: ctx.requestId,
        items: admitted.map((i) => i.item),
      });
      if (quota) await returnUnused(deps, client, outcomes);
      for (const [n, outcome] of outcomes.entries()) {
        results[admitted[n]!.index] = batchResult(outcome, admitted[n]!.index);
      }
      countAccepted(
        deps,
        outcomes.flatMap((o) => (o.kind === 'accepted' && !o.replayed ? [o.notification] : [])),
      );
      const accepted = results.filter((r) => r.status === 202).length;
      const allThrottled = results.every((r) => r.status === 429);
      return jsonResponse(
        allThrottled ? 429 : accepted === results.length ? 202 : 207,
        {
          accepted,
          rejected: results.length - accepted,
          results: results.map((r, index) => ({
            index,
            ...r,
            ...(r.error ? { error: errorFields(r.error) } : {}),
          })),
        },
        quota?.answer.headers ?? {},
      );
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
  defineRoute({
    method: 'POST',
    path: '/v1/notifications/{id}/cancel',
    operationId: 'cancelNotification',
    summary:
      'Cancel a notification not yet sending: scheduled, accepted, queued or deferred (scope notifications:write; audited)',
    tag: 'notifications',
    scope: 'notifications:write',
    request: { params: notificationIdParams },
    responses: {
      200: { description: 'Cancelled: it will never be sent', schema: notificationSchema },
      404: { description: 'No such notification (or another client’s)' },
      409: {
        description:
          'Sending or past it; `notification.status` is where it stands (cancelling twice is a 409 too)',
        schema: cancelConflictSchema,
      },
    },
    handle: async ({ ctx, deps, client, params }) => {
      const outcome = isUuid(params.id)
        ? await cancelNotification(deps.db, {
            clientId: client.clientId,
            id: params.id,
            actor: actorOf(client),
            requestId: ctx.requestId,
            sourceIp: ctx.sourceIp,
          })
        : ({ kind: 'not_found' } as const);
      if (outcome.kind === 'not_found') {
        throw new HttpError(404, 'not_found', 'no such notification');
      }
      if (outcome.kind === 'not_cancellable') {
        const status = outcome.notification.status;
        return jsonResponse(409, {
          error: {
            code: 'not_cancellable',
            message: `the notification is ${status}; only scheduled, accepted, queued or deferred notifications can be cancelled`,
            requestId: ctx.requestId,
          },
          notification: outcome.notification,
        });
      }
      deps.logger.info('notification cancelled', {
        notificationId: outcome.notification.id,
        previousStatus: outcome.previousStatus,
      });
      return jsonResponse(200, outcome.notification);
    },
  }),
];
