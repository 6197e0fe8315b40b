/** What Meta says about this deployment: its message templates and its access token. */
import * as z from 'zod';
import { HttpError, jsonResponse } from '#core/platform/http.ts';
import type { GraphClient, GraphFailureResult } from '#core/whatsapp/graph-client.ts';
import { type ApiDeps, defineRoute, type ResponseSpec } from '../../route.ts';
import { iso, isoOrNull } from '../shared.ts';

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

const GRAPH_FAILURES: Record<number, ResponseSpec> = {
  502: { description: 'The Graph API failed; the message says how' },
  503: { description: 'No WhatsApp client is configured for the API function' },
};

async function graphClient(deps: ApiDeps): Promise<GraphClient> {
  if (!deps.whatsapp) {
    throw new HttpError(
      503,
      'whatsapp_not_configured',
      'this deployment has no WhatsApp client configured for the API function',
    );
  }
  try {
    return await deps.whatsapp();
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

export const whatsappRoutes = [
  defineRoute({
    method: 'GET',
    path: '/v1/admin/whatsapp/templates',
    operationId: 'listWhatsAppTemplates',
    summary: 'Message templates and their review status, from the Graph API',
    tag: 'admin',
    scope: 'admin',
    responses: {
      200: { description: 'The templates', schema: templatesSchema },
      ...GRAPH_FAILURES,
    },
    handle: async ({ deps }) => {
      const result = await (await graphClient(deps)).listTemplates();
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
  }),
  defineRoute({
    method: 'GET',
    path: '/v1/admin/whatsapp/token',
    operationId: 'getWhatsAppTokenStatus',
    summary: 'What Meta says about the access token (validity, expiry, scopes)',
    tag: 'admin',
    scope: 'admin',
    responses: {
      200: { description: 'The token status', schema: tokenStatusSchema },
      ...GRAPH_FAILURES,
    },
    handle: async ({ deps }) => {
      const result = await (await graphClient(deps)).tokenStatus();
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
        checkedAt: deps.now().toISOString(),
      });
    },
  }),
];
