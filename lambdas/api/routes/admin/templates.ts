/**
 * The template registry for operators: every template with its status, category, quality,
 * parameter counts and rejection reason, and a dry check of one send (would it be accepted?).
 */
import * as z from 'zod';
import { templateCheck } from '#core/admin/health.ts';
import { templateSchema } from '#core/model/notification-request.ts';
import {
  checkTemplate,
  listRegistry,
  templatesNamed,
} from '#core/notifications/template-registry.ts';
import { HttpError, jsonResponse } from '#core/platform/http.ts';
import { type ApiDeps, defineRoute } from '../../route.ts';
import { isoOrNull } from '../shared.ts';

const registryCheckSchema = z.object({
  check: z.enum(['on', 'skipped', 'off', 'unknown']),
  reason: z.string().optional(),
  templates: z.number().int().optional(),
  refreshedAt: isoOrNull.optional(),
  lastError: z.string().nullable().optional(),
});

const registryTemplateSchema = z.object({
  name: z.string(),
  language: z.string(),
  status: z.string().meta({ example: 'APPROVED' }),
  category: z.string().nullable(),
  quality: z.string().nullable(),
  rejectedReason: z.string().nullable(),
  parameters: z
    .object({ header: z.number().int(), body: z.number().int(), buttons: z.number().int() })
    .nullable()
    .meta({ description: 'Parameters each component needs; null until the list has shown them' }),
  namedParameters: z.array(z.string()),
  source: z.string().meta({ description: '`refresh`, or the webhook field of the last change' }),
  lastSeenAt: isoOrNull,
  updatedAt: isoOrNull,
});

export const templateRegistrySchema = z
  .object({ registry: registryCheckSchema, templates: z.array(registryTemplateSchema) })
  .meta({ id: 'TemplateRegistry' });

export const templateCheckAnswerSchema = z
  .object({
    accepted: z.boolean().meta({ description: 'Whether POST /v1/notifications would take it' }),
    registry: registryCheckSchema,
    error: z.object({ code: z.string(), field: z.string(), message: z.string() }).optional(),
    template: registryTemplateSchema.optional(),
  })
  .meta({ id: 'TemplateCheck' });

const checkRequestSchema = templateSchema.meta({ id: 'TemplateCheckRequest' });

function wabaOf(deps: ApiDeps): string {
  if (!deps.wabaId) {
    throw new HttpError(
      503,
      'whatsapp_not_configured',
      'no WHATSAPP_WABA_ID: this deployment keeps no template registry',
    );
  }
  return deps.wabaId;
}

type Row = Awaited<ReturnType<typeof listRegistry>>[number];

function view(row: Row) {
  const p = row.parameters;
  return {
    name: row.name,
    language: row.language,
    status: row.status,
    category: row.category,
    quality: row.quality,
    rejectedReason: row.rejected_reason,
    parameters:
      row.header_params === null
        ? null
        : {
            header: row.header_params,
            body: row.body_params ?? 0,
            buttons: row.button_params ?? 0,
          },
    namedParameters: p ? [...p.header.names, ...p.body.names] : [],
    source: row.source,
    lastSeenAt: row.last_seen_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
  };
}

export const templateRoutes = [
  defineRoute({
    method: 'GET',
    path: '/v1/admin/templates',
    operationId: 'listRegisteredTemplates',
    summary: 'The template registry: status, category, quality, parameters, rejection reason',
    tag: 'admin',
    scope: 'admin',
    responses: {
      200: { description: 'The registry', schema: templateRegistrySchema },
      503: { description: 'No WABA configured' },
    },
    handle: async ({ deps }) => {
      const wabaId = wabaOf(deps);
      const [registry, rows] = await Promise.all([
        templateCheck({ db: deps.db, wabaId }),
        listRegistry(deps.db, wabaId),
      ]);
      return jsonResponse(200, { registry, templates: rows.map(view) });
    },
  }),
  defineRoute({
    method: 'POST',
    path: '/v1/admin/templates/check',
    operationId: 'checkRegisteredTemplate',
    summary: 'Would a notification with this template be accepted? Nothing is sent or stored',
    tag: 'admin',
    scope: 'admin',
    request: { body: { schema: checkRequestSchema } },
    responses: {
      200: { description: 'The verdict', schema: templateCheckAnswerSchema },
      503: { description: 'No WABA configured' },
    },
    handle: async ({ deps, body }) => {
      const wabaId = wabaOf(deps);
      const registry = await templateCheck({ db: deps.db, wabaId });
      const rows = await templatesNamed(deps.db, wabaId, [body.name]);
      const row = rows.find((r) => r.language === body.language);
      const refusal = checkTemplate(body, rows);
      // Acceptance relies on the registry only once it is filled; the verdict is given either way.
      return jsonResponse(200, {
        accepted: registry.check !== 'on' || !refusal,
        registry,
        ...(refusal
          ? {
              error: {
                code: refusal.code,
                field: `template.${refusal.field}`,
                message: refusal.message,
              },
            }
          : {}),
        ...(row ? { template: view(row) } : {}),
      });
    },
  }),
];
