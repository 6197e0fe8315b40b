/**
 * Callback endpoints: an admin manages any client's (`/v1/admin/clients/{clientId}/callbacks`),
 * a client its own (`/v1/callbacks`); an admin also reads a notification's deliveries and posts one
 * again. The signing secret is in the answer to a registration or rotation only.
 */
import * as z from 'zod';
import {
  type CallbackActor,
  CallbackInputError,
  createCallbackEndpoint,
  DEFAULT_ROTATION_GRACE_SECONDS,
  enableCallbackEndpoint,
  listCallbackDeliveries,
  listCallbackEndpoints,
  redeliverCallback,
  removeCallbackEndpoint,
  rotateCallbackSecret,
} from '#core/callbacks/endpoints.ts';
import { CALLBACK_EVENT_TYPES } from '#core/callbacks/event-body.ts';
import { HttpError, jsonResponse } from '#core/platform/http.ts';
import { isUuid } from '#core/platform/ids.ts';
import { actorOf, defineRoute, type RequestContext } from '../route.ts';
import { iso, isoOrNull, notificationSchema } from './shared.ts';

const eventTypeSchema = z.enum(CALLBACK_EVENT_TYPES as [string, ...string[]]);

export const createCallbackRequestSchema = z
  .object({
    url: z.string().max(2000).meta({
      description: 'Where to post: https, a public address (checked again at every post)',
      example: 'https://example.com/hooks/whatsapp',
    }),
    events: z
      .array(eventTypeSchema)
      .max(CALLBACK_EVENT_TYPES.length)
      .optional()
      .meta({ description: 'The event types to post; every type when left out' }),
  })
  .strict()
  .meta({ id: 'CreateCallbackRequest' });

export const rotateCallbackRequestSchema = z
  .object({
    graceSeconds: z
      .number()
      .int()
      .min(0)
      .max(7 * 86_400)
      .default(DEFAULT_ROTATION_GRACE_SECONDS)
      .meta({ description: 'How long the old secret keeps signing next to the new one' }),
  })
  .strict()
  .meta({ id: 'RotateCallbackSecretRequest' });

export const callbackEndpointSchema = z
  .object({
    id: z.string().meta({ format: 'uuid' }),
    clientId: z.string().meta({ format: 'uuid' }),
    url: z.string(),
    events: z.array(z.string()).nullable().meta({ description: 'null: every event type' }),
    createdAt: iso,
    consecutiveFailures: z.number().int(),
    disabledAt: isoOrNull.meta({ description: 'Set when the dispatcher gave up on it' }),
    disabledReason: z.string().nullable(),
    previousSecretExpiresAt: isoOrNull,
  })
  .meta({ id: 'CallbackEndpoint' });

export const callbackEndpointWithSecretSchema = callbackEndpointSchema
  .extend({
    secret: z.string().meta({ description: 'The signing secret: shown this once' }),
  })
  .meta({ id: 'CallbackEndpointWithSecret' });

const endpointListSchema = z
  .object({ callbacks: z.array(callbackEndpointSchema) })
  .meta({ id: 'CallbackEndpointList' });

export const callbackDeliverySchema = z
  .object({
    id: z.string(),
    eventId: z.string(),
    type: z.string(),
    sequence: z.number().int(),
    endpointId: z.string(),
    status: z.enum(['pending', 'delivered', 'failed']),
    attempts: z.array(
      z.object({
        at: iso,
        statusCode: z.number().int().nullable(),
        latencyMs: z.number().int(),
        error: z.string().nullable(),
      }),
    ),
    nextAttemptAt: isoOrNull,
    deliveredAt: isoOrNull,
  })
  .meta({ id: 'CallbackDelivery' });

/** What every post carries (also the `detail` of the EventBridge events). Documented, not served. */
export const callbackEventSchema = z
  .object({
    id: z.string().meta({ description: 'The event id, also sent as Webhook-Id' }),
    type: eventTypeSchema,
    createdAt: iso,
    sequence: z
      .number()
      .int()
      .meta({ description: 'Per notification, from 1, one step per event: order by it' }),
    data: z.object({
      notification: notificationSchema,
      previousStatus: z.string().nullable(),
      errorClass: z.string().optional(),
      errorCode: z.number().int().optional(),
      reason: z.string().optional(),
    }),
  })
  .meta({
    id: 'CallbackEvent',
    description:
      'Posted with Webhook-Id, Webhook-Timestamp and Webhook-Signature: t=<unix seconds>,' +
      'v1=<hex HMAC-SHA256 of "<t>.<raw body>">, one v1 per signing secret (two during a rotation).',
  });

const clientParams = z.object({ clientId: z.string().meta({ format: 'uuid' }) });
const endpointParams = clientParams.extend({ callbackId: z.string().meta({ format: 'uuid' }) });
const NO_STORE = { 'cache-control': 'no-store' };
const NOT_FOUND = { description: 'No such callback endpoint' };

function actor(ctx: RequestContext, client: { prefix: string }): CallbackActor {
  return { actor: actorOf(client), requestId: ctx.requestId, sourceIp: ctx.sourceIp };
}

function uuidOr404(...values: string[]): void {
  if (!values.every(isUuid)) throw new HttpError(404, 'not_found', 'no such callback endpoint');
}

async function register(
  ctx: RequestContext,
  by: CallbackActor,
  clientId: string,
  body: { url: string; events?: string[] | undefined },
) {
  try {
    const created = await createCallbackEndpoint(
      ctx.deps.db,
      by,
      { clientId, url: body.url, ...(body.events ? { events: body.events } : {}) },
      ctx.deps.callbackTargets ?? { strict: true },
    );
    return jsonResponse(201, created, NO_STORE);
  } catch (error) {
    if (error instanceof CallbackInputError) {
      if (error.message === 'no such client') throw new HttpError(404, 'not_found', error.message);
      throw new HttpError(400, 'validation_error', error.message, 'url');
    }
    throw error;
  }
}

export const callbackRoutes = [
  defineRoute({
    method: 'GET',
    path: '/v1/admin/clients/{clientId}/callbacks',
    operationId: 'listClientCallbacks',
    summary: 'A client’s callback endpoints (never the secrets)',
    tag: 'admin',
    scope: 'admin',
    request: { params: clientParams },
    responses: { 200: { description: 'Its endpoints', schema: endpointListSchema } },
    handle: async ({ deps, params }) => {
      const callbacks = isUuid(params.clientId)
        ? await listCallbackEndpoints(deps.db, { clientId: params.clientId })
        : [];
      return jsonResponse(200, { callbacks });
    },
  }),
  defineRoute({
    method: 'POST',
    path: '/v1/admin/clients/{clientId}/callbacks',
    operationId: 'createClientCallback',
    summary: 'Register a callback endpoint for a client (audited); the secret is shown once',
    tag: 'admin',
    scope: 'admin',
    request: { params: clientParams, body: { schema: createCallbackRequestSchema } },
    responses: {
      201: {
        description: 'The endpoint and its secret',
        schema: callbackEndpointWithSecretSchema,
        headers: ['Cache-Control'],
      },
      404: { description: 'No such client' },
    },
    handle: async ({ ctx, client, params, body }) => {
      if (!isUuid(params.clientId)) throw new HttpError(404, 'not_found', 'no such client');
      return register(ctx, actor(ctx, client), params.clientId, body);
    },
  }),
  defineRoute({
    method: 'DELETE',
    path: '/v1/admin/clients/{clientId}/callbacks/{callbackId}',
    operationId: 'deleteClientCallback',
    summary: 'Remove a callback endpoint and what it still had to deliver (audited)',
    tag: 'admin',
    scope: 'admin',
    request: { params: endpointParams },
    responses: {
      200: {
        description: 'Removed',
        schema: z.object({ id: z.string(), removed: z.literal(true) }),
      },
      404: NOT_FOUND,
    },
    handle: async ({ ctx, deps, client, params }) => {
      uuidOr404(params.clientId, params.callbackId);
      const removed = await removeCallbackEndpoint(deps.db, actor(ctx, client), {
        endpointId: params.callbackId,
        clientId: params.clientId,
      });
      if (!removed) throw new HttpError(404, 'not_found', 'no such callback endpoint');
      return jsonResponse(200, { id: params.callbackId, removed: true });
    },
  }),
  defineRoute({
    method: 'POST',
    path: '/v1/admin/clients/{clientId}/callbacks/{callbackId}/rotate-secret',
    operationId: 'rotateClientCallbackSecret',
    summary: 'A new signing secret; the old one also signs for graceSeconds (audited)',
    tag: 'admin',
    scope: 'admin',
    request: {
      params: endpointParams,
      body: { schema: rotateCallbackRequestSchema, optional: true },
    },
    responses: {
      201: {
        description: 'The endpoint and its new secret',
        schema: callbackEndpointWithSecretSchema,
        headers: ['Cache-Control'],
      },
      404: NOT_FOUND,
    },
    handle: async ({ ctx, deps, client, params, body }) => {
      uuidOr404(params.clientId, params.callbackId);
      const rotated = await rotateCallbackSecret(deps.db, actor(ctx, client), {
        endpointId: params.callbackId,
        clientId: params.clientId,
        graceSeconds: body.graceSeconds,
        now: deps.now(),
      });
      if (!rotated) throw new HttpError(404, 'not_found', 'no such callback endpoint');
      return jsonResponse(201, rotated, NO_STORE);
    },
  }),
  defineRoute({
    method: 'POST',
    path: '/v1/admin/clients/{clientId}/callbacks/{callbackId}/enable',
    operationId: 'enableClientCallback',
    summary: 'Turn a disabled endpoint back on; what waited is posted at once (audited)',
    tag: 'admin',
    scope: 'admin',
    request: { params: endpointParams },
    responses: {
      200: {
        description: 'Enabled',
        schema: z.object({ id: z.string(), enabled: z.literal(true) }),
      },
      404: NOT_FOUND,
    },
    handle: async ({ ctx, deps, client, params }) => {
      uuidOr404(params.clientId, params.callbackId);
      const enabled = await enableCallbackEndpoint(deps.db, actor(ctx, client), {
        endpointId: params.callbackId,
      });
      if (!enabled) throw new HttpError(404, 'not_found', 'no such callback endpoint');
      return jsonResponse(200, { id: params.callbackId, enabled: true });
    },
  }),
  defineRoute({
    method: 'GET',
    path: '/v1/admin/callbacks',
    operationId: 'listAllCallbacks',
    summary: 'Every callback endpoint, with failures and whether it was disabled',
    tag: 'admin',
    scope: 'admin',
    responses: { 200: { description: 'Every endpoint', schema: endpointListSchema } },
    handle: async ({ deps }) =>
      jsonResponse(200, { callbacks: await listCallbackEndpoints(deps.db, {}) }),
  }),
  defineRoute({
    method: 'GET',
    path: '/v1/admin/notifications/{id}/callbacks',
    operationId: 'listNotificationCallbackDeliveries',
    summary: 'A notification’s callback deliveries, each with every attempt',
    tag: 'admin',
    scope: 'admin',
    request: { params: z.object({ id: z.string().meta({ format: 'uuid' }) }) },
    responses: {
      200: {
        description: 'Deliveries in sequence order',
        schema: z
          .object({ deliveries: z.array(callbackDeliverySchema) })
          .meta({ id: 'CallbackDeliveryList' }),
      },
    },
    handle: async ({ deps, params }) => {
      const deliveries = isUuid(params.id)
        ? await listCallbackDeliveries(deps.db, { notificationId: params.id })
        : [];
      return jsonResponse(200, { deliveries });
    },
  }),
  defineRoute({
    method: 'POST',
    path: '/v1/admin/callbacks/deliveries/{deliveryId}/redeliver',
    operationId: 'redeliverCallback',
    summary: 'Post a delivery again, with the same event id (audited)',
    tag: 'admin',
    scope: 'admin',
    request: { params: z.object({ deliveryId: z.string().meta({ format: 'uuid' }) }) },
    responses: {
      202: {
        description: 'Due again now',
        schema: z.object({ id: z.string(), status: z.literal('pending') }),
      },
      404: { description: 'No such delivery' },
    },
    handle: async ({ ctx, deps, client, params }) => {
      const done =
        isUuid(params.deliveryId) &&
        (await redeliverCallback(deps.db, actor(ctx, client), { deliveryId: params.deliveryId }));
      if (!done) throw new HttpError(404, 'not_found', 'no such delivery');
      return jsonResponse(202, { id: params.deliveryId, status: 'pending' });
    },
  }),
  defineRoute({
    method: 'GET',
    path: '/v1/callbacks',
    operationId: 'listCallbacks',
    summary: 'The calling client’s callback endpoints',
    tag: 'notifications',
    scope: 'notifications:read',
    responses: { 200: { description: 'Its endpoints', schema: endpointListSchema } },
    handle: async ({ deps, client }) =>
      jsonResponse(200, {
        callbacks: await listCallbackEndpoints(deps.db, { clientId: client.clientId }),
      }),
  }),
  defineRoute({
    method: 'POST',
    path: '/v1/callbacks',
    operationId: 'createCallback',
    summary: 'Register a callback endpoint for the calling client; the secret is shown once',
    tag: 'notifications',
    scope: 'notifications:write',
    request: { body: { schema: createCallbackRequestSchema } },
    responses: {
      201: {
        description: 'The endpoint and its secret',
        schema: callbackEndpointWithSecretSchema,
        headers: ['Cache-Control'],
      },
    },
    handle: async ({ ctx, client, body }) =>
      register(ctx, actor(ctx, client), client.clientId, body),
  }),
];
