/**
 * The API function's routes: authentication and scopes, request parsing, and the mapping of core
 * outcomes to HTTP answers. Rules live in the core; this file only translates.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import type { Kysely } from 'kysely';
import type * as z from 'zod';
import { authenticateApiKey } from '#core/admin/api-keys.ts';
import { checkReadiness } from '#core/admin/health.ts';
import type { ApiScope, Database } from '#core/db/schema.ts';
import {
  batchRequestSchema,
  IDEMPOTENCY_KEY,
  MAX_BATCH_BODY_BYTES,
  MAX_BODY_BYTES,
  notificationRequestSchema,
  type Priority,
} from '#core/model/notification-request.ts';
import {
  type AcceptDeps,
  type AcceptOutcome,
  acceptNotification,
  acceptNotificationBatch,
  type BatchItem,
  findNotification,
} from '#core/notifications/accept-notification.ts';
import { writeAudit } from '#core/notifications/audit.ts';
import type { QueueTargets } from '#core/notifications/enqueue.ts';
import type { NotificationView } from '#core/notifications/notification-view.ts';
import {
  errorFields,
  errorResponse,
  HttpError,
  header,
  jsonResponse,
  type Route,
  Router,
  rawBody,
} from '#core/platform/http.ts';
import { isUuid, pickRequestId } from '#core/platform/ids.ts';
import { findUnstorableJson } from '#core/platform/json-input.ts';
import { Metric } from '#core/platform/metric-names.ts';
import { reportError } from '#core/platform/sentry.ts';
import type { GraphClient } from '#core/whatsapp/graph-client.ts';

export interface ApiDeps {
  db: Kysely<Database>;
  sqs: SQSClient;
  queue: QueueTargets;
  now: () => Date;
  version: string;
  logger: Logger;
  metrics: Metrics;
  /** The DLQs, for the depths in /v1/admin/status. */
  deadLetterQueueUrls?: Partial<Record<Priority, string>>;
  /** The configured sender phone number id (WHATSAPP_PHONE_NUMBER_ID): panic mode's default sender. */
  senderId?: string;
  /** Locally only: the SQS emulator, reported to the ops CLI for DLQ redrives. */
  sqsEndpoint?: string;
  /** The Graph API client for the admin template and token routes, built on first use. */
  whatsapp?: () => Promise<GraphClient>;
}

export interface RequestContext {
  event: APIGatewayProxyEvent;
  requestId: string;
  sourceIp: string | null;
  deps: ApiDeps;
  /** Set once the X-API-Key passed; routes that need a scope call `requireScope` first. */
  client?: { clientId: string; prefix: string; scopes: ApiScope[] };
}

/** The first issue of a failed parse as a field and a message; an unknown field is named, not echoed as a value. */
export function describeIssue(error: z.ZodError, prefix: readonly string[] = []) {
  const issue = error.issues[0]!;
  const path = [...prefix, ...issue.path.map(String)];
  if (issue.code === 'unrecognized_keys') path.push(issue.keys[0] ?? '');
  const field = path.join('.') || undefined;
  const message =
    issue.code === 'unrecognized_keys' ? `unknown field ${path.join('.')}` : issue.message;
  return { field, message };
}

/** Parses a JSON body against a schema; any failure is a 400 naming the field, and nothing is written. */
export function parseJsonBody<T extends z.ZodType>(
  event: APIGatewayProxyEvent,
  schema: T,
  maxBytes: number = MAX_BODY_BYTES,
): z.infer<T> {
  const raw = rawBody(event);
  if (raw.length > maxBytes) {
    throw new HttpError(400, 'body_too_large', `the body is larger than ${maxBytes} bytes`);
  }
  let json: unknown;
  try {
    json = JSON.parse(raw.toString('utf8'));
  } catch {
    throw new HttpError(400, 'invalid_json', 'the body is not valid JSON');
  }
  const unstorable = findUnstorableJson(json);
  if (unstorable) {
    const where = unstorable.field ?? 'the body';
    throw new HttpError(
      400,
      'validation_error',
      `${where} ${unstorable.message}`,
      unstorable.field,
    );
  }
  const result = schema.safeParse(json);
  if (!result.success) {
    const { field, message } = describeIssue(result.error);
    throw new HttpError(400, 'validation_error', message, field);
  }
  return result.data;
}

/**
 * Authenticates the X-API-Key and checks its scope; every denial is audited. `admin` implies the
 * notification scopes: an admin key can create a key with them anyway, and `ops send-test` sends
 * with the operator's admin key.
 */
export async function requireScope(
  ctx: RequestContext,
  scope: ApiScope,
): Promise<RequestContext['client'] & {}> {
  const { deps, event } = ctx;
  const auth = await authenticateApiKey(deps.db, header(event, 'x-api-key'), deps.now());
  if (!auth.ok) {
    await writeAudit(deps.db, {
      actor: auth.prefix ? `key:${auth.prefix}` : 'anonymous',
      action: 'auth.denied',
      outcome: 'denied',
      requestId: ctx.requestId,
      sourceIp: ctx.sourceIp,
      detail: { reason: auth.reason, method: event.httpMethod, path: event.path },
    });
    deps.logger.warn('api key rejected', { reason: auth.reason, keyPrefix: auth.prefix });
    throw new HttpError(401, 'unauthorized', 'a valid X-API-Key header is required');
  }
  if (!auth.scopes.includes(scope) && !auth.scopes.includes('admin')) {
    await writeAudit(deps.db, {
      actor: `key:${auth.prefix}`,
      action: 'auth.forbidden',
      outcome: 'denied',
      requestId: ctx.requestId,
      sourceIp: ctx.sourceIp,
      detail: { required: scope, method: event.httpMethod, path: event.path },
    });
    deps.logger.warn('api key lacks scope', { keyPrefix: auth.prefix, required: scope });
    throw new HttpError(403, 'forbidden', `this key does not have the ${scope} scope`);
  }
  ctx.client = { clientId: auth.clientId, prefix: auth.prefix, scopes: auth.scopes };
  deps.logger.appendKeys({ keyPrefix: auth.prefix });
  return ctx.client;
}

export const notificationRoutes: Route<RequestContext>[] = [
  {
    method: 'GET',
    path: '/health',
    handle: async ({ deps }) =>
      jsonResponse(200, {
        status: 'ok',
        version: deps.version,
        timestamp: deps.now().toISOString(),
      }),
  },
  {
    method: 'GET',
    path: '/v1/health',
    handle: async ({ deps }) => {
      const report = await checkReadiness({ ...deps, queueUrls: deps.queue.queueUrls });
      return jsonResponse(report.status === 'healthy' ? 200 : 503, report);
    },
  },
  {
    method: 'POST',
    path: '/v1/notifications',
    handle: async (ctx) => {
      const client = await requireScope(ctx, 'notifications:write');
      const idempotencyKey = header(ctx.event, 'idempotency-key');
      if (idempotencyKey !== undefined && !IDEMPOTENCY_KEY.test(idempotencyKey)) {
        throw new HttpError(
          400,
          'validation_error',
          'Idempotency-Key must be 1 to 255 visible ASCII characters',
          'Idempotency-Key',
        );
      }
      const request = parseJsonBody(ctx.event, notificationRequestSchema);
      const { deps } = ctx;
      const outcome = await acceptNotification(acceptDeps(deps), {
        clientId: client.clientId,
        requestId: ctx.requestId,
        request,
        idempotencyKey,
      });
      switch (outcome.kind) {
        case 'invalid':
          throw new HttpError(400, 'validation_error', outcome.message, outcome.field);
        case 'idempotency_mismatch':
          throw new HttpError(
            422,
            'idempotency_key_reused',
            'this Idempotency-Key was used with a different body',
            'Idempotency-Key',
          );
        case 'idempotency_in_flight':
          throw new HttpError(
            409,
            'idempotency_key_in_flight',
            'a request with this Idempotency-Key is still being processed; retry shortly',
            'Idempotency-Key',
          );
        case 'accepted': {
          if (!outcome.replayed) countAccepted(deps, [outcome.notification]);
          return jsonResponse(202, outcome.notification, {
            location: `/v1/notifications/${outcome.notification.id}`,
            ...(outcome.replayed ? { 'idempotent-replayed': 'true' } : {}),
          });
        }
      }
    },
  },
  {
    method: 'POST',
    path: '/v1/notifications/batch',
    handle: async (ctx) => {
      const client = await requireScope(ctx, 'notifications:write');
      const { notifications } = parseJsonBody(ctx.event, batchRequestSchema, MAX_BATCH_BODY_BYTES);
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
      const outcomes = await acceptNotificationBatch(acceptDeps(ctx.deps), {
        clientId: client.clientId,
        requestId: ctx.requestId,
        items: items.map((i) => i.item),
      });
      for (const [n, outcome] of outcomes.entries()) {
        results[items[n]!.index] = batchResult(outcome, items[n]!.index);
      }
      countAccepted(
        ctx.deps,
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
  },
  {
    method: 'GET',
    path: '/v1/notifications/{id}',
    handle: async (ctx, params) => {
      const client = await requireScope(ctx, 'notifications:read');
      const id = params.id ?? '';
      // Another client's notification and a missing one look the same: 404.
      const found = isUuid(id)
        ? await findNotification(ctx.deps.db, client.clientId, id)
        : undefined;
      if (!found) throw new HttpError(404, 'not_found', 'no such notification');
      return jsonResponse(200, found);
    },
  },
];

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
  error?: { code: string; message: string; field?: string | undefined };
}

/** One batch item: an optional idempotencyKey split off, the rest a notification request. */
function parseBatchItem(
  raw: unknown,
  index: number,
): { item: BatchItem } | { error: NonNullable<BatchResult['error']> } {
  const prefix = ['notifications', String(index)];
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return {
      error: { code: 'validation_error', message: 'must be an object', field: prefix.join('.') },
    };
  }
  const { idempotencyKey, ...request } = raw as Record<string, unknown>;
  if (
    idempotencyKey !== undefined &&
    (typeof idempotencyKey !== 'string' || !IDEMPOTENCY_KEY.test(idempotencyKey))
  ) {
    return {
      error: {
        code: 'validation_error',
        message: 'idempotencyKey must be 1 to 255 visible ASCII characters',
        field: [...prefix, 'idempotencyKey'].join('.'),
      },
    };
  }
  const parsed = notificationRequestSchema.safeParse(request);
  if (!parsed.success) {
    return { error: { code: 'validation_error', ...describeIssue(parsed.error, prefix) } };
  }
  return { item: { request: parsed.data, idempotencyKey } };
}

function batchResult(outcome: AcceptOutcome, index: number): BatchResult {
  const field = (name: string) => `notifications.${index}.${name}`;
  switch (outcome.kind) {
    case 'accepted':
      return {
        status: 202,
        notification: outcome.notification,
        ...(outcome.replayed ? { replayed: true } : {}),
      };
    case 'invalid':
      return {
        status: 400,
        error: { code: 'validation_error', message: outcome.message, field: field(outcome.field) },
      };
    case 'idempotency_mismatch':
      return {
        status: 422,
        error: {
          code: 'idempotency_key_reused',
          message: 'this idempotencyKey was used with a different body',
          field: field('idempotencyKey'),
        },
      };
    case 'idempotency_in_flight':
      return {
        status: 409,
        error: {
          code: 'idempotency_key_in_flight',
          message: 'a request with this idempotencyKey is still being processed; retry shortly',
          field: field('idempotencyKey'),
        },
      };
  }
}

export function createApiApp(
  deps: ApiDeps,
  extraRoutes: Route<RequestContext>[] = [],
): (event: APIGatewayProxyEvent) => Promise<APIGatewayProxyResult> {
  const router = new Router<RequestContext>([...notificationRoutes, ...extraRoutes]);
  return async (event) => {
    const requestId = pickRequestId(header(event, 'x-request-id'), event.requestContext.requestId);
    deps.logger.appendKeys({ requestId });
    const ctx: RequestContext = {
      event,
      requestId,
      sourceIp: event.requestContext.identity?.sourceIp ?? null,
      deps,
    };
    try {
      const matched = router.match(event.httpMethod, event.path);
      if (matched instanceof HttpError) throw matched;
      const response = await matched.handle(ctx, matched.params);
      response.headers = { ...response.headers, 'x-request-id': requestId };
      return response;
    } catch (error) {
      if (error instanceof HttpError) return errorResponse(error, requestId);
      deps.logger.error('request failed', {
        error: error instanceof Error ? error : String(error),
      });
      reportError(error, { requestId, method: event.httpMethod, path: event.path });
      return errorResponse(
        new HttpError(500, 'internal_error', 'something went wrong on our side; retry later'),
        requestId,
      );
    } finally {
      deps.logger.removeKeys(['requestId', 'keyPrefix']);
    }
  };
}
