/** API keys: list them (prefixes, never keys), create, rotate and revoke (audited in the core). */
import * as z from 'zod';
import { DEFAULT_CLIENT_SCOPES, listApiKeys, parseKeyExpiry } from '#core/admin/api-keys.ts';
import { type AdminActor, createKey, revokeKey, rotateKey } from '#core/admin/keys.ts';
import type { ApiScope } from '#core/db/schema.ts';
import type { ClientLimits } from '#core/notifications/client-quota.ts';
import { HttpError, jsonResponse } from '#core/platform/http.ts';
import { maskPhonesIn } from '#core/platform/phone.ts';
import { actorOf, defineRoute, type RequestContext } from '../../route.ts';
import { iso, isoOrNull } from '../shared.ts';

const apiScopeSchema = z.enum([
  'notifications:write',
  'notifications:read',
  'admin',
]) satisfies z.ZodType<ApiScope>;

const expiresSchema = z.string().max(40).optional().meta({
  description:
    'When the key stops working (401 `api_key_expired`): a duration from now (`30m`, `2h`, `90d`) or an ISO date-time with its zone. None: never',
  example: '90d',
});

export const createKeyRequestSchema = z
  .object({
    name: z
      .string()
      .trim()
      .min(1)
      .max(100)
      .regex(/^[\w .:@/-]+$/, 'letters, digits, spaces and . _ : @ / -')
      .refine((name) => maskPhonesIn(name) === name, 'a key name must not hold a phone number')
      .meta({
        description: 'Who uses the key (a service or a person)',
        example: 'billing-service',
      }),
    scopes: z
      .array(apiScopeSchema)
      .min(1)
      .max(3)
      .default([...DEFAULT_CLIENT_SCOPES])
      .meta({ description: '`admin` implies both notification scopes' }),
    ratePerSecond: z.number().positive().max(10_000).optional().meta({
      description:
        'Notifications this client may have accepted per second (a burst of 10 s of it); over it: 429. None: no limit',
      example: 5,
    }),
    dailyQuota: z.number().int().min(0).max(10_000_000).optional().meta({
      description:
        'Notifications this client may have accepted per UTC day (a batch counts each item); over it: 429 until midnight UTC. None: no limit',
      example: 5000,
    }),
    maxPriority: z.enum(['high', 'bulk']).optional().meta({
      description: '`bulk`: a request for `high` is refused with 403 (not lowered). None: `high`',
    }),
    expires: expiresSchema,
  })
  .strict()
  .meta({ id: 'CreateKeyRequest' });

export const rotateKeyRequestSchema = z
  .object({
    graceSeconds: z
      .number()
      .int()
      .min(0)
      .max(30 * 86_400)
      .default(86_400)
      .meta({ description: 'How long the old key keeps working (default one day; 0 ends it now)' }),
    expires: expiresSchema.meta({
      description:
        'When the new key stops working; default: the old key’s lifetime again, or never if it had none',
    }),
  })
  .strict()
  .meta({ id: 'RotateKeyRequest' });

export const keyPrefixSchema = z.string().regex(/^[0-9a-f]{12}$/, 'a 12-character key prefix');
const prefixParams = z.object({ prefix: keyPrefixSchema });

export const limitsSchema = z
  .object({
    ratePerSecond: z.number().nullable(),
    dailyQuota: z.number().int().nullable(),
    maxPriority: z.enum(['high', 'bulk']).nullable(),
  })
  .meta({ id: 'ClientLimits', description: 'The client’s limits; null: none of that kind' });

export const keyListSchema = z
  .object({
    keys: z.array(
      z.object({
        prefix: z.string(),
        clientId: z.string(),
        name: z.string(),
        scopes: z.array(z.string()),
        state: z.enum(['active', 'expiring', 'revoked', 'expired']),
        createdAt: iso,
        revokedAt: isoOrNull,
        expiresAt: isoOrNull.meta({ description: 'Set when the key was created with an expiry' }),
        lastUsedAt: isoOrNull,
        limits: limitsSchema,
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
    expiresAt: isoOrNull,
    limits: limitsSchema,
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
    expiresAt: isoOrNull,
  })
  .meta({ id: 'RotatedApiKey' });

export const revokedKeySchema = z
  .object({ prefix: z.string(), revokedAt: iso })
  .meta({ id: 'RevokedApiKey' });

/** Keys and secrets never travel through caches or proxies that keep answers. */
const NO_STORE = { 'cache-control': 'no-store' };

const NO_LIVE_KEY = { description: 'No live key has this prefix' };

function keyState(
  key: { revokedAt: Date | null; expiresAt: Date | null },
  now: Date,
): 'active' | 'expiring' | 'revoked' | 'expired' {
  if (key.revokedAt && key.revokedAt.getTime() <= now.getTime()) return 'revoked';
  if (key.expiresAt && key.expiresAt.getTime() <= now.getTime()) return 'expired';
  return key.revokedAt ? 'expiring' : 'active';
}

/** The `expires` field as a time, or a 400 naming it. */
function expiryOf(raw: string | undefined, now: Date): Date | undefined {
  if (raw === undefined) return undefined;
  const parsed = parseKeyExpiry(raw, now);
  if (!parsed.ok) throw new HttpError(400, 'validation_error', parsed.message, 'expires');
  return parsed.expiresAt;
}

function auditedBy(ctx: RequestContext, client: { prefix: string }): AdminActor {
  return { actor: actorOf(client), requestId: ctx.requestId, sourceIp: ctx.sourceIp };
}

export const keyRoutes = [
  defineRoute({
    method: 'GET',
    path: '/v1/admin/keys',
    operationId: 'listApiKeys',
    summary: 'API keys (prefixes, never the keys)',
    tag: 'admin',
    scope: 'admin',
    responses: { 200: { description: 'Every key', schema: keyListSchema } },
    handle: async ({ deps }) => {
      const now = deps.now();
      const keys = await listApiKeys(deps.db);
      return jsonResponse(200, {
        keys: keys.map((k) => ({
          prefix: k.prefix,
          clientId: k.clientId,
          name: k.clientName,
          scopes: k.scopes,
          state: keyState(k, now),
          createdAt: k.createdAt.toISOString(),
          revokedAt: k.revokedAt?.toISOString() ?? null,
          expiresAt: k.expiresAt?.toISOString() ?? null,
          lastUsedAt: k.lastUsedAt?.toISOString() ?? null,
          limits: k.limits,
        })),
      });
    },
  }),
  defineRoute({
    method: 'POST',
    path: '/v1/admin/keys',
    operationId: 'createApiKey',
    summary: 'Create an API client and its key (audited); the key is shown once',
    tag: 'admin',
    scope: 'admin',
    request: { body: { schema: createKeyRequestSchema } },
    responses: {
      201: { description: 'The new key', schema: createdKeySchema, headers: ['Cache-Control'] },
    },
    handle: async ({ ctx, deps, client, body }) => {
      const limits: ClientLimits = {
        ratePerSecond: body.ratePerSecond ?? null,
        dailyQuota: body.dailyQuota ?? null,
        maxPriority: body.maxPriority ?? null,
      };
      const created = await createKey(deps.db, auditedBy(ctx, client), {
        name: body.name,
        scopes: body.scopes,
        limits,
        expiresAt: expiryOf(body.expires, deps.now()) ?? null,
      });
      deps.logger.info('api key created', {
        newKeyPrefix: created.prefix,
        scopes: created.scopes,
      });
      return jsonResponse(
        201,
        {
          key: created.key,
          prefix: created.prefix,
          clientId: created.clientId,
          name: body.name,
          scopes: created.scopes,
          expiresAt: created.expiresAt?.toISOString() ?? null,
          limits,
        },
        NO_STORE,
      );
    },
  }),
  defineRoute({
    method: 'POST',
    path: '/v1/admin/keys/{prefix}/rotate',
    operationId: 'rotateApiKey',
    summary: 'Issue a new key for the same client; the old one works for graceSeconds (audited)',
    tag: 'admin',
    scope: 'admin',
    request: { params: prefixParams, body: { schema: rotateKeyRequestSchema, optional: true } },
    responses: {
      201: { description: 'The new key', schema: rotatedKeySchema, headers: ['Cache-Control'] },
      404: NO_LIVE_KEY,
      409: {
        description:
          'The key is already being retired (a rotation’s grace period): rotate its successor instead (`key_expiring`)',
      },
    },
    handle: async ({ ctx, deps, client, params, body }) => {
      const now = deps.now();
      const rotated = await rotateKey(deps.db, auditedBy(ctx, client), {
        prefix: params.prefix,
        graceSeconds: body.graceSeconds,
        now,
        ...(body.expires === undefined ? {} : { expiresAt: expiryOf(body.expires, now) ?? null }),
      });
      if (rotated.kind === 'not_found') {
        throw new HttpError(404, 'not_found', 'no live key has this prefix');
      }
      if (rotated.kind === 'expiring') {
        throw new HttpError(
          409,
          'key_expiring',
          `this key is already being retired (it ends ${rotated.endsAt.toISOString()}); rotate the key that replaced it`,
        );
      }
      deps.logger.info('api key rotated', {
        rotatedKeyPrefix: params.prefix,
        newKeyPrefix: rotated.prefix,
      });
      return jsonResponse(
        201,
        {
          key: rotated.key,
          prefix: rotated.prefix,
          clientId: rotated.clientId,
          scopes: rotated.scopes,
          previousPrefix: params.prefix,
          previousKeyExpiresAt: rotated.oldKeyExpiresAt.toISOString(),
          expiresAt: rotated.expiresAt?.toISOString() ?? null,
        },
        NO_STORE,
      );
    },
  }),
  defineRoute({
    method: 'POST',
    path: '/v1/admin/keys/{prefix}/revoke',
    operationId: 'revokeApiKey',
    summary: 'Revoke a key now (audited)',
    tag: 'admin',
    scope: 'admin',
    request: { params: prefixParams },
    responses: { 200: { description: 'Revoked', schema: revokedKeySchema }, 404: NO_LIVE_KEY },
    handle: async ({ ctx, deps, client, params }) => {
      const now = deps.now();
      const revoked = await revokeKey(deps.db, auditedBy(ctx, client), {
        prefix: params.prefix,
        now,
      });
      if (!revoked) throw new HttpError(404, 'not_found', 'no live key has this prefix');
      deps.logger.info('api key revoked', { revokedKeyPrefix: params.prefix });
      return jsonResponse(200, { prefix: params.prefix, revokedAt: now.toISOString() });
    },
  }),
];
