/**
 * The OpenAPI 3.1 document, generated from the route list: each route's own schemas and answers,
 * plus what every route can answer because of where it runs (API Gateway throttling, the scope
 * check, input parsing, the error handler), and the webhook route the webhook function serves.
 */
import {
  OpenAPIRegistry,
  OpenApiGeneratorV31,
  type ResponseConfig,
  type RouteConfig,
} from '@asteasolutions/zod-to-openapi';
import * as z from 'zod';
import type { ApiRoute, ResponseHeaderName, ResponseSpec } from './route.ts';
import { callbackEventSchema } from './routes/callbacks.ts';
import { errorSchema } from './routes/shared.ts';

/** The version of the API contract (not of the service): changes only with a breaking change. */
export const API_DOCUMENT_VERSION = '1.0.0';

/** Answers a route can give without declaring them, and when. */
const COMMON_ERRORS = {
  400: 'Bad input: `error.field` names what is wrong; nothing was written',
  401: 'No valid X-API-Key',
  403: 'The key lacks the scope',
  413: 'The request is larger than API Gateway accepts (10 MB); bodies over our own limit are a 400',
  415: 'The body is declared as something other than application/json',
  429: 'Throttled by API Gateway (stage rate and burst limits); retry with backoff',
  500: 'Something went wrong on our side; retry later',
} as const;

const HEADER_COMPONENTS: Record<ResponseHeaderName | 'X-Request-ID', string> = {
  'X-Request-ID': 'RequestId',
  Location: 'Location',
  'Idempotent-Replayed': 'IdempotentReplayed',
  'Cache-Control': 'CacheControl',
  'Retry-After': 'RetryAfter',
  RateLimit: 'RateLimit',
  'RateLimit-Policy': 'RateLimitPolicy',
};

function registerHeaders(registry: OpenAPIRegistry) {
  const header = (name: keyof typeof HEADER_COMPONENTS, description: string, example?: string) =>
    registry.registerComponent('headers', HEADER_COMPONENTS[name], {
      description,
      schema: { type: 'string', ...(example ? { example } : {}) },
    });
  header(
    'X-Request-ID',
    'The request id: the caller’s X-Request-ID when it is a sane token, else API Gateway’s',
  );
  header('Location', 'Where the accepted notification can be read', '/v1/notifications/{id}');
  header(
    'Idempotent-Replayed',
    'Present (`true`) when this is the stored answer to an earlier request with the same Idempotency-Key',
    'true',
  );
  header('Cache-Control', 'How long the answer may be kept', 'no-store');
  // Issue 16: the key's own limits, in the fields of draft-ietf-httpapi-ratelimit-headers-11.
  header(
    'Retry-After',
    'Seconds to wait before sending the refused notifications again: until the bucket refills for `rate_limited`, until 00:00 UTC for `daily_quota_exceeded`',
    '3',
  );
  header(
    'RateLimit-Policy',
    'The key’s limits (draft-ietf-httpapi-ratelimit-headers-11): `"rate"` with q = the burst and w = the seconds it takes to refill, `"daily"` with q = the daily quota and w = 86400. Only for a key with limits',
    '"rate";q=50;w=10, "daily";q=5000;w=86400',
  );
  header(
    'RateLimit',
    'What is left of each policy after this request: r = notifications left, t = seconds until the policy is whole again',
    '"rate";r=42;t=2, "daily";r=4870;t=30512',
  );
}

function headerRefs(names: readonly (ResponseHeaderName | 'X-Request-ID')[]) {
  return Object.fromEntries(
    names.map((name) => [name, { $ref: `#/components/headers/${HEADER_COMPONENTS[name]}` }]),
  );
}

const json = (schema: z.ZodType) => ({ 'application/json': { schema } });

function response(spec: ResponseSpec, status: number): ResponseConfig {
  const schema = spec.schema ?? (status >= 400 ? errorSchema : undefined);
  return {
    description: spec.description,
    headers: headerRefs(['X-Request-ID', ...(spec.headers ?? [])]),
    ...(schema ? { content: json(schema) } : {}),
  } as ResponseConfig;
}

/** The route's own answers, then the ones it can give because of the steps it goes through. */
function responses(route: ApiRoute): Record<number, ResponseConfig> {
  const request = route.request ?? {};
  const parses = Boolean(request.params || request.query || request.headers || request.body);
  const common: number[] = [
    ...(parses ? [400] : []),
    ...(route.scope === 'public' ? [] : [401, 403]),
    ...(request.body ? [413, 415] : []),
    429,
    500,
  ];
  const all: Record<number, ResponseSpec> = {};
  for (const status of common) {
    all[status] = { description: COMMON_ERRORS[status as keyof typeof COMMON_ERRORS] };
  }
  Object.assign(all, route.responses);
  return Object.fromEntries(
    Object.entries(all)
      .sort(([a], [b]) => Number(a) - Number(b))
      .map(([status, spec]) => [status, response(spec, Number(status))]),
  );
}

const requestIdHeader = z.object({
  'X-Request-ID': z
    .string()
    .max(128)
    .regex(/^[A-Za-z0-9._:-]{1,128}$/)
    .optional()
    .meta({
      description:
        'Kept when it is 1 to 128 of `A-Z a-z 0-9 . _ : -` (anything else, or longer, is replaced by API Gateway’s id); follows the notification to the worker',
    }),
});

function registerRoute(registry: OpenAPIRegistry, route: ApiRoute) {
  const request = route.request ?? {};
  const body = request.body;
  registry.registerPath({
    method: route.method.toLowerCase() as RouteConfig['method'],
    path: route.path,
    operationId: route.operationId,
    summary: route.summary,
    tags: [route.tag],
    security: route.scope === 'public' ? [] : [{ ApiKey: [] }],
    request: {
      headers: request.headers ? requestIdHeader.extend(request.headers.shape) : requestIdHeader,
      ...(request.params ? { params: request.params as z.ZodObject } : {}),
      ...(request.query ? { query: request.query as z.ZodObject } : {}),
      ...(body
        ? {
            body: {
              required: !body.optional,
              content: json(body.document ?? body.schema),
            },
          }
        : {}),
    },
    responses: responses(route),
  });
}

/** Meta's webhook, served by the webhook function on the same API: documented, not in the route list. */
function registerWebhook(registry: OpenAPIRegistry) {
  const text = (description: string) => ({
    description,
    content: { 'text/plain': { schema: z.string() } },
  });
  const error = (description: string) => ({
    description,
    headers: headerRefs(['X-Request-ID']),
    content: json(errorSchema),
  });
  registry.registerPath({
    method: 'get',
    path: '/webhook/whatsapp',
    operationId: 'verifyWhatsAppWebhook',
    summary: 'Meta’s subscription check: echoes hub.challenge when the verify token matches',
    tags: ['webhook'],
    security: [],
    request: {
      query: z.object({
        'hub.mode': z.literal('subscribe'),
        'hub.verify_token': z.string().meta({ description: 'The configured verify token' }),
        'hub.challenge': z.string().meta({ description: 'Echoed back on success' }),
      }),
    },
    responses: {
      200: text('The challenge, as sent'),
      403: text('The token or mode does not match (body: `forbidden`)'),
      429: error(COMMON_ERRORS[429]),
      500: error(COMMON_ERRORS[500]),
    },
  });
  registry.registerPath({
    method: 'post',
    path: '/webhook/whatsapp',
    operationId: 'receiveWhatsAppWebhook',
    summary: 'Status updates and inbound messages from Meta, signed with the app secret',
    tags: ['webhook'],
    security: [],
    request: {
      headers: z.object({
        'X-Hub-Signature-256': z.string().meta({
          description: '`sha256=` and the HMAC-SHA256 of the raw body with the app secret',
        }),
      }),
      body: {
        required: true,
        content: json(
          z.object({ object: z.string(), entry: z.array(z.unknown()) }).catchall(z.unknown()),
        ),
      },
    },
    responses: {
      200: {
        description:
          'Received; a signed payload of a shape this service does not read is acknowledged with zero counts, so Meta does not retry it',
        content: json(
          z.object({
            received: z.literal(true),
            statuses: z.number().int(),
            messages: z.number().int(),
          }),
        ),
      },
      400: error('The body is not valid JSON'),
      401: error('X-Hub-Signature-256 is missing or does not match (audited)'),
      413: error(COMMON_ERRORS[413]),
      429: error(COMMON_ERRORS[429]),
      500: error('Processing failed; Meta retries'),
    },
  });
}

/** What the service posts to a client's callback endpoints (OpenAPI 3.1 `webhooks`). */
function registerClientCallbacks(registry: OpenAPIRegistry) {
  registry.registerWebhook({
    method: 'post',
    path: 'notificationEvent',
    operationId: 'notificationEvent',
    summary: 'A notification event, posted to each endpoint that asked for its type',
    description:
      'At least once; deduplicate on Webhook-Id and order by `sequence`. Any 2xx within 10 s ' +
      'counts as received; anything else is retried with backoff for 24 h.',
    tags: ['callbacks'],
    request: {
      headers: z.object({
        'Webhook-Id': z.string().meta({ description: 'The event id' }),
        'Webhook-Timestamp': z.string().meta({ description: 'Unix seconds of this post' }),
        'Webhook-Signature': z.string().meta({
          description:
            '`t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`, one v1 per secret',
        }),
      }),
      body: { required: true, content: json(callbackEventSchema) },
    },
    responses: {
      200: { description: 'Any 2xx: received' },
    },
  });
}

export function buildOpenApiDocument(routes: readonly ApiRoute[]) {
  const registry = new OpenAPIRegistry();
  registry.registerComponent('securitySchemes', 'ApiKey', {
    type: 'apiKey',
    in: 'header',
    name: 'X-API-Key',
    description: 'A key from `npm run ops -- keys create`; admin routes need the `admin` scope',
  });
  registerHeaders(registry);
  for (const route of routes) registerRoute(registry, route);
  registerWebhook(registry);
  registerClientCallbacks(registry);

  return new OpenApiGeneratorV31(registry.definitions).generateDocument({
    openapi: '3.1.0',
    info: {
      title: 'whatsapp-notif',
      version: API_DOCUMENT_VERSION,
      description:
        'WhatsApp notification delivery: accept notifications, read their status, and operate the service (admin scope).',
    },
    servers: [
      {
        url: 'https://{apiId}.execute-api.{region}.amazonaws.com/{stage}',
        description: 'A deployed stage (the stack prints its URL)',
        variables: {
          apiId: { default: 'abc123defg', description: 'The REST API id' },
          region: { default: 'us-east-1' },
          stage: { default: 'prod', enum: ['dev', 'prod'] },
        },
      },
      { url: 'http://localhost:3000', description: 'The local stack (`npm start`)' },
    ],
    security: [{ ApiKey: [] }],
    tags: [
      { name: 'health', description: 'Liveness, readiness and this document; no key needed' },
      { name: 'notifications', description: 'Send notifications and read their status' },
      { name: 'admin', description: 'Operate the service (scope `admin`); changes are audited' },
      {
        name: 'webhook',
        description: 'Meta’s calls to the service, served by the webhook function',
      },
      {
        name: 'callbacks',
        description: 'What the service posts to the endpoints clients register (signed events)',
      },
    ],
  });
}
