/** GET /v1/openapi.json: the OpenAPI document, generated once per execution environment and cached. */
import { defineRoute } from '../route.ts';

export function documentRoute(render: () => string) {
  let rendered: string | undefined;
  return defineRoute({
    method: 'GET',
    path: '/v1/openapi.json',
    operationId: 'getOpenApiDocument',
    summary: 'This document',
    tag: 'health',
    scope: 'public',
    responses: { 200: { description: 'The OpenAPI document', headers: ['Cache-Control'] } },
    handle: async () => {
      rendered ??= render();
      return {
        statusCode: 200,
        headers: { 'content-type': 'application/json', 'cache-control': 'public, max-age=300' },
        body: rendered,
      };
    },
  });
}
