/**
 * The OpenAPI 3.1 document of the API, generated from the zod schemas that validate requests (and
 * zod descriptions of the answers, which the admin tests parse real answers with), and the
 * unauthenticated route that serves it at GET /v1/openapi.json.
 */
import { OpenAPIRegistry, OpenApiGeneratorV31 } from '@asteasolutions/zod-to-openapi';
import * as z from 'zod';
import { rolloutPatchSchema } from '#core/delivery/rollout.ts';
import { ERROR_CLASSES } from '#core/model/error-class.ts';
import { NOTIFICATION_STATUSES } from '#core/model/lifecycle.ts';
import {
  batchItemDocumentSchema,
  MAX_BATCH_SIZE,
  notificationRequestSchema,
} from '#core/model/notification-request.ts';
import type { Route } from '#core/platform/http.ts';
import {
  auditQuerySchema,
  createKeyRequestSchema,
  keyPrefixSchema,
  panicRequestSchema,
  rotateKeyRequestSchema,
} from './admin-routes.ts';
import type { RequestContext } from './app.ts';

/** The version of the API contract (not of the service): changes only with a breaking change. */
export const API_DOCUMENT_VERSION = '1.0.0';

const iso = z.string().meta({ format: 'date-time' });
const isoOrNull = iso.nullable();

// ------------------------------------------------------------------ answers

export const errorSchema = z
  .object({
    error: z.object({
      code: z.string().meta({ example: 'validation_error' }),
      message: z.string(),
      field: z.string().optional().meta({ description: 'The request field that is wrong' }),
      requestId: z.string(),
    }),
  })
  .meta({ id: 'Error' });

export const notificationSchema = z
  .object({
    id: z.string().meta({ format: 'uuid' }),
    status: z.enum(NOTIFICATION_STATUSES),
    statusReason: z.string().nullable(),
    to: z.string().meta({ description: 'The recipient, masked', example: '+57******4567' }),
    priority: z.enum(['high', 'bulk']),
    type: z.enum(['template', 'text']),
    template: z.string().nullable(),
    sendAt: isoOrNull,
    metadata: z.unknown(),
    attempts: z.number().int(),
    wamid: z.string().nullable(),
    error: z
      .object({
        class: z.enum(ERROR_CLASSES),
        code: z.number().int().nullable(),
        message: z.string().nullable(),
      })
      .nullable(),
    requestId: z.string(),
    createdAt: iso,
    updatedAt: iso,
    queuedAt: isoOrNull,
    sentAt: isoOrNull,
    deliveredAt: isoOrNull,
    readAt: isoOrNull,
    failedAt: isoOrNull,
  })
  .meta({ id: 'Notification' });

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

const panicStateSchema = z
  .object({
    senderId: z.string(),
    active: z.boolean(),
    openedAt: isoOrNull,
    openedBy: z.string().nullable(),
    reason: z.string().nullable(),
    consecutiveFailures: z.number().int(),
    goodProbes: z.number().int(),
    lastProbeAt: isoOrNull,
  })
  .meta({ id: 'PanicState' });

export const panicStatusSchema = z
  .object({ active: z.boolean(), senders: z.array(panicStateSchema) })
  .meta({ id: 'PanicStatus' });

export const panicChangeSchema = z
  .object({
    changed: z.boolean().meta({ description: 'false when the circuit already was in that state' }),
    sender: panicStateSchema,
  })
  .meta({ id: 'PanicChange' });

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
  })
  .meta({ id: 'AdminStatus' });

export const keyListSchema = z
  .object({
    keys: z.array(
      z.object({
        prefix: z.string(),
        clientId: z.string(),
        name: z.string(),
        scopes: z.array(z.string()),
        state: z.enum(['active', 'expiring', 'revoked']),
        createdAt: iso,
        revokedAt: isoOrNull,
        lastUsedAt: isoOrNull,
      }),
    ),
  })
  .meta({ id: 'ApiKeyList' });

export const createdKeySchema = z
  .object({
    key: z.string().meta({ description: 'The key: shown this once, stored only as a hash' }),
    prefix: z.string(),
    clientId: z.string(),
    name: z.string(),
    scopes: z.array(z.string()),
  })
  .meta({ id: 'CreatedApiKey' });

export const rotatedKeySchema = z
  .object({
    key: z.string().meta({ description: 'The new key: shown this once' }),
    prefix: z.string(),
    clientId: z.string(),
    scopes: z.array(z.string()),
    previousPrefix: z.string(),
    previousKeyExpiresAt: iso,
  })
  .meta({ id: 'RotatedApiKey' });

export const revokedKeySchema = z
  .object({ prefix: z.string(), revokedAt: iso })
  .meta({ id: 'RevokedApiKey' });

export const templatesSchema = z
  .object({
    templates: z.array(
      z.object({
        name: z.string(),
        language: z.string(),
        status: z.string().meta({ example: 'APPROVED' }),
        category: z.string().nullable(),
        id: z.string().nullable(),
      }),
    ),
    truncated: z.boolean(),
  })
  .meta({ id: 'WhatsAppTemplates' });

export const tokenStatusSchema = z
  .object({
    valid: z.boolean(),
    type: z.string().nullable(),
    application: z.string().nullable(),
    expiresAt: isoOrNull.meta({ description: 'null: the token does not expire' }),
    dataAccessExpiresAt: isoOrNull,
    scopes: z.array(z.string()),
    checkedAt: iso,
  })
  .meta({ id: 'WhatsAppTokenStatus' });

export const adminNotificationSchema = notificationSchema
  .extend({
    clientId: z.string(),
    events: z.array(
      z.object({
        at: iso,
        from: z.string().nullable(),
        to: z.string(),
        errorClass: z.string().nullable(),
        errorCode: z.number().int().nullable(),
        attempt: z.number().int(),
      }),
    ),
  })
  .meta({ id: 'AdminNotification' });

export const auditPageSchema = z
  .object({
    entries: z.array(
      z.object({
        id: z.string(),
        at: iso,
        actor: z.string().meta({ example: 'key:3f9a0c1b2d4e' }),
        action: z.string().meta({ example: 'panic.enable' }),
        outcome: z.enum(['ok', 'denied']),
        requestId: z.string().nullable(),
        sourceIp: z.string().nullable(),
        detail: z.unknown(),
      }),
    ),
  })
  .meta({ id: 'AuditPage' });

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
  })
  .meta({ id: 'Readiness' });

// Named request bodies. `.meta({id})` registers a schema in zod's global registry, which refuses a
// second schema under the same id: made once here, not per document.
const requestBodies = {
  notification: notificationRequestSchema.meta({ id: 'NotificationRequest' }),
  batch: z
    .object({
      notifications: z.array(batchItemDocumentSchema).min(1).max(MAX_BATCH_SIZE),
    })
    .meta({ id: 'NotificationBatchRequest' }),
  panic: panicRequestSchema.meta({ id: 'PanicRequest' }),
  rollout: rolloutPatchSchema.meta({ id: 'RolloutPatch' }),
  createKey: createKeyRequestSchema.meta({ id: 'CreateKeyRequest' }),
  rotateKey: rotateKeyRequestSchema.meta({ id: 'RotateKeyRequest' }),
};

// ------------------------------------------------------------------ the document

const json = (schema: z.ZodType, description: string) => ({
  description,
  content: { 'application/json': { schema } },
});

const errors = {
  400: json(errorSchema, 'Bad input: `error.field` names what is wrong; nothing was written'),
  401: json(errorSchema, 'No valid X-API-Key'),
  403: json(errorSchema, 'The key lacks the scope'),
} as const;

const adminErrors = { 401: errors[401], 403: errors[403] } as const;

type Method = 'get' | 'post' | 'put';

export function buildOpenApiDocument() {
  const registry = new OpenAPIRegistry();
  registry.registerComponent('securitySchemes', 'ApiKey', {
    type: 'apiKey',
    in: 'header',
    name: 'X-API-Key',
    description: 'A key from `npm run ops -- keys create`; admin routes need the `admin` scope',
  });
  const requestIdHeader = z.object({
    'X-Request-ID': z.string().optional().meta({
      description: 'Kept when it is a sane token; follows the notification to the worker',
    }),
  });
  const path = (
    method: Method,
    route: string,
    spec: {
      summary: string;
      tags: string[];
      auth?: boolean;
      request?: Record<string, unknown>;
      responses: Record<number, unknown>;
    },
  ) =>
    registry.registerPath({
      method,
      path: route,
      summary: spec.summary,
      tags: spec.tags,
      ...(spec.auth === false ? {} : { security: [{ ApiKey: [] }] }),
      ...(spec.request ? { request: spec.request } : {}),
      responses: spec.responses,
    } as Parameters<typeof registry.registerPath>[0]);

  path('get', '/health', {
    summary: 'Liveness',
    tags: ['health'],
    auth: false,
    responses: {
      200: json(
        z.object({ status: z.literal('ok'), version: z.string(), timestamp: iso }),
        'The function answers',
      ),
    },
  });
  path('get', '/v1/health', {
    summary: 'Readiness: database, queues, WhatsApp circuit',
    tags: ['health'],
    auth: false,
    responses: {
      200: json(readinessSchema, 'healthy'),
      503: json(readinessSchema, 'degraded or unhealthy; the failing check says why'),
    },
  });
  path('get', '/v1/openapi.json', {
    summary: 'This document',
    tags: ['health'],
    auth: false,
    responses: { 200: { description: 'The OpenAPI document' } },
  });

  path('post', '/v1/notifications', {
    summary: 'Accept a notification (scope notifications:write)',
    tags: ['notifications'],
    request: {
      headers: requestIdHeader.extend({
        'Idempotency-Key': z.string().min(1).max(255).optional().meta({
          description:
            'Same key and body: the first answer again; different body: 422; still running: 409',
        }),
      }),
      body: { content: { 'application/json': { schema: requestBodies.notification } } },
    },
    responses: {
      202: json(notificationSchema, 'Accepted; `Location` points at the notification'),
      ...errors,
      409: json(errorSchema, 'A request with this Idempotency-Key is still running'),
      422: json(errorSchema, 'This Idempotency-Key was used with a different body'),
    },
  });
  path('post', '/v1/notifications/batch', {
    summary: `Accept up to ${MAX_BATCH_SIZE} notifications, each answered on its own (scope notifications:write)`,
    tags: ['notifications'],
    request: {
      headers: requestIdHeader,
      body: { content: { 'application/json': { schema: requestBodies.batch } } },
    },
    responses: {
      202: json(batchAnswerSchema, 'Every item accepted'),
      207: json(
        batchAnswerSchema,
        'Some items refused: each result has its own status (202, 400, 409, 422) and error',
      ),
      ...errors,
    },
  });
  path('get', '/v1/notifications/{id}', {
    summary: 'Read a notification (scope notifications:read); only your own',
    tags: ['notifications'],
    request: { params: z.object({ id: z.string().meta({ format: 'uuid' }) }) },
    responses: {
      200: json(notificationSchema, 'The notification'),
      ...adminErrors,
      404: json(errorSchema, 'No such notification (or another client’s)'),
    },
  });

  const admin = ['admin'];
  path('get', '/v1/admin/status', {
    summary: 'Last 24 h, queues and DLQs, panic mode, rate limiter, rollout, scheduler',
    tags: admin,
    responses: { 200: json(adminStatusSchema, 'The status'), ...adminErrors },
  });
  path('get', '/v1/admin/panic', {
    summary: 'Panic mode (the circuit) per sender',
    tags: admin,
    responses: { 200: json(panicStatusSchema, 'Panic mode per sender'), ...adminErrors },
  });
  path('post', '/v1/admin/panic', {
    summary: 'Turn panic mode on or off for a sender, with a reason (audited)',
    tags: admin,
    request: {
      body: { content: { 'application/json': { schema: requestBodies.panic } } },
    },
    responses: { 200: json(panicChangeSchema, 'The sender after the change'), ...errors },
  });
  path('get', '/v1/admin/rollout', {
    summary: 'Rollout switches and sending limits',
    tags: admin,
    responses: { 200: json(rolloutSchema, 'The switches'), ...adminErrors },
  });
  path('put', '/v1/admin/rollout', {
    summary: 'Change some rollout switches (audited); fields left out keep their value',
    tags: admin,
    request: {
      body: { content: { 'application/json': { schema: requestBodies.rollout } } },
    },
    responses: { 200: json(rolloutSchema, 'The switches after the change'), ...errors },
  });
  path('get', '/v1/admin/keys', {
    summary: 'API keys (prefixes, never the keys)',
    tags: admin,
    responses: { 200: json(keyListSchema, 'Every key'), ...adminErrors },
  });
  path('post', '/v1/admin/keys', {
    summary: 'Create an API client and its key (audited); the key is shown once',
    tags: admin,
    request: {
      body: { content: { 'application/json': { schema: requestBodies.createKey } } },
    },
    responses: { 201: json(createdKeySchema, 'The new key'), ...errors },
  });
  const prefixParams = z.object({ prefix: keyPrefixSchema });
  path('post', '/v1/admin/keys/{prefix}/rotate', {
    summary: 'Issue a new key for the same client; the old one works for graceSeconds (audited)',
    tags: admin,
    request: {
      params: prefixParams,
      body: {
        required: false,
        content: { 'application/json': { schema: requestBodies.rotateKey } },
      },
    },
    responses: {
      201: json(rotatedKeySchema, 'The new key'),
      ...errors,
      404: json(errorSchema, 'No live key has this prefix'),
    },
  });
  path('post', '/v1/admin/keys/{prefix}/revoke', {
    summary: 'Revoke a key now (audited)',
    tags: admin,
    request: { params: prefixParams },
    responses: {
      200: json(revokedKeySchema, 'Revoked'),
      ...errors,
      404: json(errorSchema, 'No live key has this prefix'),
    },
  });
  path('get', '/v1/admin/whatsapp/templates', {
    summary: 'Message templates and their review status, from the Graph API',
    tags: admin,
    responses: {
      200: json(templatesSchema, 'The templates'),
      ...adminErrors,
      502: json(errorSchema, 'The Graph API failed; the message says how'),
      503: json(errorSchema, 'No WhatsApp client is configured for the API function'),
    },
  });
  path('get', '/v1/admin/whatsapp/token', {
    summary: 'What Meta says about the access token (validity, expiry, scopes)',
    tags: admin,
    responses: {
      200: json(tokenStatusSchema, 'The token status'),
      ...adminErrors,
      502: json(errorSchema, 'The Graph API failed; the message says how'),
      503: json(errorSchema, 'No WhatsApp client is configured for the API function'),
    },
  });
  path('get', '/v1/admin/notifications/{id}', {
    summary: 'Any client’s notification with its transitions (for DLQ triage)',
    tags: admin,
    request: { params: z.object({ id: z.string().meta({ format: 'uuid' }) }) },
    responses: {
      200: json(adminNotificationSchema, 'The notification and its events'),
      ...adminErrors,
      404: json(errorSchema, 'No such notification'),
    },
  });
  path('get', '/v1/admin/audit', {
    summary: 'The audit log, newest first',
    tags: admin,
    request: { query: auditQuerySchema },
    responses: { 200: json(auditPageSchema, 'Audit entries'), ...errors },
  });

  return new OpenApiGeneratorV31(registry.definitions).generateDocument({
    openapi: '3.1.0',
    info: {
      title: 'whatsapp-notif',
      version: API_DOCUMENT_VERSION,
      description:
        'WhatsApp notification delivery: accept notifications, read their status, and operate the service (admin scope).',
    },
    security: [{ ApiKey: [] }],
  });
}

/** The document as committed in docs/openapi.json: two-space JSON and a final newline. */
export function renderOpenApiDocument(): string {
  return `${JSON.stringify(buildOpenApiDocument(), null, 2)}\n`;
}

let rendered: string | undefined;

export const openApiRoute: Route<RequestContext> = {
  method: 'GET',
  path: '/v1/openapi.json',
  handle: async () => {
    rendered ??= JSON.stringify(buildOpenApiDocument());
    return {
      statusCode: 200,
      headers: { 'content-type': 'application/json', 'cache-control': 'public, max-age=300' },
      body: rendered,
    };
  },
};
