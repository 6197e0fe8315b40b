/** The audit log, newest first, with phone-like text masked again on the way out. */
import * as z from 'zod';
import { jsonResponse } from '#core/platform/http.ts';
import { maskPhonesIn } from '#core/platform/phone.ts';
import { defineRoute } from '../../route.ts';
import { iso } from '../shared.ts';

/** The largest PostgreSQL bigint, the type of audit_log.id. */
const MAX_BIGINT = 9_223_372_036_854_775_807n;

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
      .regex(/^\d{1,19}$/, 'after must be an audit entry id (digits)')
      // Ids are PostgreSQL bigints: a larger value is the client's mistake, not a database error.
      .refine(
        (v) => !/^\d+$/.test(v) || BigInt(v) <= MAX_BIGINT,
        'after is larger than any audit entry id',
      )
      .optional(),
  })
  .strict();

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

export const auditRoutes = [
  defineRoute({
    method: 'GET',
    path: '/v1/admin/audit',
    operationId: 'listAuditEntries',
    summary: 'The audit log, newest first',
    tag: 'admin',
    scope: 'admin',
    request: { query: auditQuerySchema },
    responses: { 200: { description: 'Audit entries', schema: auditPageSchema } },
    handle: async ({ deps, query }) => {
      let select = deps.db
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
  }),
];
