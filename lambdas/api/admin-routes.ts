/**
 * The admin routes (scope `admin`) behind the ops CLI: status, panic mode, rollout switches, API
 * keys, WhatsApp template and token status, notification lookup and the audit log. Every change is
 * audited with the calling key's prefix as the actor; the request schemas also feed the OpenAPI
 * document.
 */
import type { APIGatewayProxyEvent } from 'aws-lambda';
import * as z from 'zod';
import { readAdminStatus, readPanicStatus } from '#core/admin/admin-status.ts';
import {
  createApiClient,
  DEFAULT_CLIENT_SCOPES,
  listApiKeys,
  revokeApiKey,
  rotateApiKey,
} from '#core/admin/api-keys.ts';
import type { ApiScope } from '#core/db/schema.ts';
import { closeCircuit, openCircuit } from '#core/delivery/panic-mode.ts';
import { getRollout, rolloutPatchSchema, updateRollout } from '#core/delivery/rollout.ts';
import { writeAudit } from '#core/notifications/audit.ts';
import { toNotificationView } from '#core/notifications/notification-view.ts';
import { HttpError, jsonResponse, type Route, rawBody } from '#core/platform/http.ts';
import { isUuid } from '#core/platform/ids.ts';
import { maskPhonesIn } from '#core/platform/phone.ts';
import type { GraphClient, GraphFailureResult } from '#core/whatsapp/graph-client.ts';
import { parseJsonBody, type RequestContext, requireScope } from './app.ts';

// ------------------------------------------------------------------ request schemas

export const panicRequestSchema = z
  .object({
    enabled: z
      .boolean()
      .meta({ description: 'true opens the circuit (panic on), false closes it' }),
    reason: z
      .string()
      .trim()
      .min(3)
      .max(500)
      .meta({ description: 'Why; kept in the audit log and shown by panic status' }),
    senderId: z
      .string()
      .regex(/^\d{1,32}$/, 'a WhatsApp phone number id (digits)')
      .optional()
      .meta({ description: 'Sender phone number id; default: the configured sender' }),
  })
  .strict();

const apiScopeSchema = z.enum([
  'notifications:write',
  'notifications:read',
  'admin',
]) satisfies z.ZodType<ApiScope>;

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
  })
  .strict();

export const rotateKeyRequestSchema = z
  .object({
    graceSeconds: z
      .number()
      .int()
      .min(0)
      .max(30 * 86_400)
      .default(86_400)
      .meta({ description: 'How long the old key keeps working (default one day; 0 ends it now)' }),
  })
  .strict();

export const auditQuerySchema = z
  .object({
    limit: z.coerce.number().int().min(1).max(500).default(50),
    /** Entries whose action starts with this, e.g. `panic.` or `auth.`. */
    action: z
      .string()
      .regex(/^[a-z_.]{1,64}$/)
      .optional(),
    /** Only entries newer than this id (what `ops audit tail --follow` passes). */
    after: z
      .string()
      .regex(/^\d{1,19}$/)
      .optional(),
  })
  .strict();

export const keyPrefixSchema = z.string().regex(/^[0-9a-f]{12}$/, 'a 12-character key prefix');

// ------------------------------------------------------------------ helpers

/** An optional JSON body: none at all reads as `{}`. */
function parseOptionalBody<T extends z.ZodType>(
  event: APIGatewayProxyEvent,
  schema: T,
): z.infer<T> {
  if (rawBody(event).length === 0) return parseJsonBody({ ...event, body: '{}' }, schema);
  return parseJsonBody(event, schema);
}

function parseQuery<T extends z.ZodType>(event: APIGatewayProxyEvent, schema: T): z.infer<T> {
  const result = schema.safeParse(event.queryStringParameters ?? {});
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const field =
      issue.code === 'unrecognized_keys' ? issue.keys[0] : issue.path.map(String).join('.');
    const message =
      issue.code === 'unrecognized_keys' ? `unknown parameter ${field}` : issue.message;
    throw new HttpError(400, 'validation_error', message, field || undefined);
  }
  return result.data;
}

function keyPrefixParam(params: Record<string, string>): string {
  const result = keyPrefixSchema.safeParse(params.prefix ?? '');
  if (!result.success) {
    throw new HttpError(400, 'validation_error', result.error.issues[0]!.message, 'prefix');
  }
  return result.data;
}

const actorOf = (client: { prefix: string }) => `key:${client.prefix}`;

/** Keys and secrets never travel through caches or proxies that keep answers. */
const NO_STORE = { 'cache-control': 'no-store' };

async function graphClient(ctx: RequestContext): Promise<GraphClient> {
  if (!ctx.deps.whatsapp) {
    throw new HttpError(
      503,
      'whatsapp_not_configured',
      'this deployment has no WhatsApp client configured for the API function',
    );
  }
  try {
    return await ctx.deps.whatsapp();
  } catch (error) {
    // ConfigError messages name the missing variable, never a value.
    throw new HttpError(
      503,
      'whatsapp_not_configured',
      error instanceof Error ? error.message : 'the WhatsApp client could not be built',
    );
  }
}

function graphError(failure: GraphFailureResult): HttpError {
  const code = failure.code !== undefined ? ` (Meta code ${failure.code})` : '';
  return new HttpError(
    502,
    'whatsapp_error',
    `the Graph API answered ${failure.errorClass}${code}: ${failure.message}`,
  );
}

function keyState(key: { revokedAt: Date | null }, now: Date): 'active' | 'expiring' | 'revoked' {
  if (!key.revokedAt) return 'active';
  return key.revokedAt.getTime() > now.getTime() ? 'expiring' : 'revoked';
}

// ------------------------------------------------------------------ routes

export const adminRoutes: Route<RequestContext>[] = [
  {
    method: 'GET',
    path: '/v1/admin/status',
    handle: async (ctx) => {
      await requireScope(ctx, 'admin');
      const { deps } = ctx;
      const status = await readAdminStatus({
        db: deps.db,
        sqs: deps.queue.sqs,
        queueUrls: deps.queue.queueUrls,
        deadLetterQueueUrls: deps.deadLetterQueueUrls ?? {},
        senderId: deps.senderId,
        sqsEndpoint: deps.sqsEndpoint,
        now: deps.now,
      });
      return jsonResponse(200, status);
    },
  },
  {
    method: 'GET',
    path: '/v1/admin/panic',
    handle: async (ctx) => {
      await requireScope(ctx, 'admin');
      return jsonResponse(200, await readPanicStatus(ctx.deps.db, ctx.deps.senderId));
    },
  },
  {
    method: 'POST',
    path: '/v1/admin/panic',
    handle: async (ctx) => {
      const client = await requireScope(ctx, 'admin');
      const request = parseJsonBody(ctx.event, panicRequestSchema);
      const { deps } = ctx;
      let senderId = request.senderId ?? deps.senderId;
      if (!senderId) {
        const known = await readPanicStatus(deps.db, undefined);
        if (known.senders.length !== 1) {
          throw new HttpError(
            400,
            'validation_error',
            'no sender is configured; name one with senderId',
            'senderId',
          );
        }
        senderId = known.senders[0]!.senderId;
      }
      const input = {
        senderId,
        actor: actorOf(client),
        // An operator may quote a customer's number in a reason; the audit log must not keep it.
        reason: maskPhonesIn(request.reason),
        requestId: ctx.requestId,
        metrics: deps.metrics,
      };
      const changed = request.enabled
        ? await openCircuit(deps.db, input)
        : await closeCircuit(deps.db, input);
      // The sender id stays out of the line: its 15 digits look like a number to the log masking.
      // The audit log has it.
      deps.logger.info(
        request.enabled ? 'panic mode enable requested' : 'panic mode disable requested',
        { changed },
      );
      const panic = await readPanicStatus(deps.db, senderId);
      const sender = panic.senders.find((s) => s.senderId === senderId)!;
      return jsonResponse(200, { changed, sender });
    },
  },
  {
    method: 'GET',
    path: '/v1/admin/rollout',
    handle: async (ctx) => {
      await requireScope(ctx, 'admin');
      return jsonResponse(200, await getRollout(ctx.deps.db));
    },
  },
  {
    method: 'PUT',
    path: '/v1/admin/rollout',
    handle: async (ctx) => {
      const client = await requireScope(ctx, 'admin');
      const patch = parseJsonBody(ctx.event, rolloutPatchSchema);
      if (Object.keys(patch).length === 0) {
        throw new HttpError(400, 'validation_error', 'the body names no setting to change');
      }
      const rollout = await updateRollout(ctx.deps.db, patch, actorOf(client), ctx.requestId);
      ctx.deps.logger.info('rollout updated', { fields: Object.keys(patch) });
      return jsonResponse(200, rollout);
    },
  },
  {
    method: 'GET',
    path: '/v1/admin/keys',
    handle: async (ctx) => {
      await requireScope(ctx, 'admin');
      const now = ctx.deps.now();
      const keys = await listApiKeys(ctx.deps.db);
      return jsonResponse(200, {
        keys: keys.map((k) => ({
          prefix: k.prefix,
          clientId: k.clientId,
          name: k.clientName,
          scopes: k.scopes,
          state: keyState(k, now),
          createdAt: k.createdAt.toISOString(),
          revokedAt: k.revokedAt?.toISOString() ?? null,
          lastUsedAt: k.lastUsedAt?.toISOString() ?? null,
        })),
      });
    },
  },
  {
    method: 'POST',
    path: '/v1/admin/keys',
    handle: async (ctx) => {
      const client = await requireScope(ctx, 'admin');
      const request = parseJsonBody(ctx.event, createKeyRequestSchema);
      const scopes = [...new Set(request.scopes)];
      const created = await createApiClient(ctx.deps.db, { name: request.name, scopes });
      await writeAudit(ctx.deps.db, {
        actor: actorOf(client),
        action: 'key.create',
        outcome: 'ok',
        requestId: ctx.requestId,
        sourceIp: ctx.sourceIp,
        detail: { prefix: created.prefix, clientId: created.clientId, name: request.name, scopes },
      });
      ctx.deps.logger.info('api key created', { newKeyPrefix: created.prefix, scopes });
      return jsonResponse(
        201,
        {
          key: created.key,
          prefix: created.prefix,
          clientId: created.clientId,
          name: request.name,
          scopes,
        },
        NO_STORE,
      );
    },
  },
  {
    method: 'POST',
    path: '/v1/admin/keys/{prefix}/rotate',
    handle: async (ctx, params) => {
      const client = await requireScope(ctx, 'admin');
      const prefix = keyPrefixParam(params);
      const request = parseOptionalBody(ctx.event, rotateKeyRequestSchema);
      const rotated = await rotateApiKey(ctx.deps.db, prefix, request.graceSeconds, ctx.deps.now());
      if (!rotated) throw new HttpError(404, 'not_found', 'no live key has this prefix');
      await writeAudit(ctx.deps.db, {
        actor: actorOf(client),
        action: 'key.rotate',
        outcome: 'ok',
        requestId: ctx.requestId,
        sourceIp: ctx.sourceIp,
        detail: {
          prefix,
          newPrefix: rotated.prefix,
          clientId: rotated.clientId,
          graceSeconds: request.graceSeconds,
        },
      });
      ctx.deps.logger.info('api key rotated', {
        rotatedKeyPrefix: prefix,
        newKeyPrefix: rotated.prefix,
      });
      return jsonResponse(
        201,
        {
          key: rotated.key,
          prefix: rotated.prefix,
          clientId: rotated.clientId,
          scopes: rotated.scopes,
          previousPrefix: prefix,
          previousKeyExpiresAt: rotated.oldKeyExpiresAt.toISOString(),
        },
        NO_STORE,
      );
    },
  },
  {
    method: 'POST',
    path: '/v1/admin/keys/{prefix}/revoke',
    handle: async (ctx, params) => {
      const client = await requireScope(ctx, 'admin');
      const prefix = keyPrefixParam(params);
      const now = ctx.deps.now();
      const revoked = await revokeApiKey(ctx.deps.db, prefix, now);
      if (!revoked) throw new HttpError(404, 'not_found', 'no live key has this prefix');
      await writeAudit(ctx.deps.db, {
        actor: actorOf(client),
        action: 'key.revoke',
        outcome: 'ok',
        requestId: ctx.requestId,
        sourceIp: ctx.sourceIp,
        detail: { prefix },
      });
      ctx.deps.logger.info('api key revoked', { revokedKeyPrefix: prefix });
      return jsonResponse(200, { prefix, revokedAt: now.toISOString() });
    },
  },
  {
    method: 'GET',
    path: '/v1/admin/whatsapp/templates',
    handle: async (ctx) => {
      await requireScope(ctx, 'admin');
      const result = await (await graphClient(ctx)).listTemplates();
      if (!result.ok) throw graphError(result);
      return jsonResponse(200, {
        templates: result.templates.map((t) => ({
          name: t.name,
          language: t.language,
          status: t.status,
          category: t.category ?? null,
          id: t.id ?? null,
        })),
        truncated: result.truncated,
      });
    },
  },
  {
    method: 'GET',
    path: '/v1/admin/whatsapp/token',
    handle: async (ctx) => {
      await requireScope(ctx, 'admin');
      const result = await (await graphClient(ctx)).tokenStatus();
      if (!result.ok) throw graphError(result);
      const data = result.data;
      const text = (key: string) => (typeof data[key] === 'string' ? (data[key] as string) : null);
      const epoch = (key: string) =>
        typeof data[key] === 'number' && data[key] > 0
          ? new Date((data[key] as number) * 1000).toISOString()
          : null;
      // The token itself never leaves the deployment; only what Meta says about it.
      return jsonResponse(200, {
        valid: result.valid,
        type: text('type'),
        application: text('application'),
        expiresAt: result.expiresAt?.toISOString() ?? null,
        dataAccessExpiresAt: epoch('data_access_expires_at'),
        scopes: result.scopes,
        checkedAt: ctx.deps.now().toISOString(),
      });
    },
  },
  {
    method: 'GET',
    path: '/v1/admin/notifications/{id}',
    handle: async (ctx, params) => {
      await requireScope(ctx, 'admin');
      const id = params.id ?? '';
      const row = isUuid(id)
        ? await ctx.deps.db
            .selectFrom('notifications')
            .selectAll()
            .where('id', '=', id)
            .executeTakeFirst()
        : undefined;
      if (!row) throw new HttpError(404, 'not_found', 'no such notification');
      const events = await ctx.deps.db
        .selectFrom('notification_events')
        .select(['at', 'from_status', 'to_status', 'error_class', 'error_code', 'attempt'])
        .where('notification_id', '=', id)
        .orderBy('id')
        .execute();
      return jsonResponse(200, {
        ...toNotificationView(row),
        clientId: row.client_id,
        events: events.map((e) => ({
          at: e.at.toISOString(),
          from: e.from_status,
          to: e.to_status,
          errorClass: e.error_class,
          errorCode: e.error_code,
          attempt: e.attempt,
        })),
      });
    },
  },
  {
    method: 'GET',
    path: '/v1/admin/audit',
    handle: async (ctx) => {
      await requireScope(ctx, 'admin');
      const query = parseQuery(ctx.event, auditQuerySchema);
      let select = ctx.deps.db
        .selectFrom('audit_log')
        .select(['id', 'at', 'actor', 'action', 'outcome', 'request_id', 'source_ip', 'detail'])
        .orderBy('id', 'desc')
        .limit(query.limit);
      if (query.action) {
        // `_` is a LIKE wildcard; the prefix means itself.
        select = select.where('action', 'like', `${query.action.replaceAll('_', '\\_')}%`);
      }
      if (query.after) select = select.where('id', '>', query.after);
      const rows = await select.execute();
      return jsonResponse(200, {
        entries: rows.map((r) => ({
          id: String(r.id),
          at: r.at.toISOString(),
          actor: r.actor,
          action: r.action,
          outcome: r.outcome,
          requestId: r.request_id,
          sourceIp: r.source_ip,
          // Written without numbers; masked again because this leaves the service.
          detail: maskDeep(r.detail ?? null),
        })),
      });
    },
  },
];

/**
 * Masks phone-like text in an audit detail. Identifiers (`senderId`, `clientId`…) are left alone:
 * a sender's phone number id is 15 digits that the masking rule would take for a number.
 */
function maskDeep(value: unknown, key = ''): unknown {
  if (typeof value === 'string') return /Id$/.test(key) ? value : maskPhonesIn(value);
  if (Array.isArray(value)) return value.map((item) => maskDeep(item));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, maskDeep(v, k)]));
  }
  return value;
}
