/** docs/openapi.json is what the code generates from its request schemas, and documents every route. */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { adminRoutes } from '../../lambdas/api/admin-routes.ts';
import { notificationRoutes } from '../../lambdas/api/app.ts';
import { buildOpenApiDocument, renderOpenApiDocument } from '../../lambdas/api/openapi.ts';

const committed = join(import.meta.dirname, '..', '..', 'docs', 'openapi.json');

describe('the OpenAPI document', () => {
  it('is committed in step with the code (npm run openapi rewrites it)', async () => {
    const onDisk = await readFile(committed, 'utf8');
    expect(onDisk, 'docs/openapi.json is stale: run npm run openapi').toBe(renderOpenApiDocument());
  });

  it('documents every admin route and the public ones, with the method', () => {
    const paths = buildOpenApiDocument().paths ?? {};
    const routes = [
      ...adminRoutes.map((r) => [r.method, r.path] as const),
      ...notificationRoutes.map((r) => [r.method, r.path] as const),
      ['GET', '/v1/openapi.json'],
    ] as const;
    for (const [method, path] of routes) {
      expect(paths[path]?.[method.toLowerCase() as 'get'], `${method} ${path}`).toBeDefined();
    }
  });

  it('takes the request bodies from the validating schemas', () => {
    const schemas = buildOpenApiDocument().components?.schemas ?? {};
    expect(schemas.NotificationRequest).toMatchObject({
      required: ['to'],
      additionalProperties: false,
      properties: { priority: { enum: ['high', 'bulk'], default: 'high' } },
    });
    expect(schemas.PanicRequest).toMatchObject({
      required: ['enabled', 'reason'],
      properties: { reason: { minLength: 3, maxLength: 500 } },
    });
    expect(schemas.RolloutPatch).toMatchObject({
      properties: { ratePerSecond: { minimum: 1, maximum: 1000 } },
    });
  });

  it('asks for X-API-Key everywhere but health and the document itself', () => {
    const doc = buildOpenApiDocument();
    expect(doc.components?.securitySchemes?.ApiKey).toMatchObject({
      in: 'header',
      name: 'X-API-Key',
    });
    expect(doc.paths?.['/v1/admin/status']?.get?.security).toEqual([{ ApiKey: [] }]);
    expect(doc.paths?.['/health']?.get?.security).toBeUndefined();
  });
});
