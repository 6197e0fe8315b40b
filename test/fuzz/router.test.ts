/**
 * Hostile paths and query strings against every route of the API: whatever the path, percent
 * encoding, method or query, the answer is a 4xx (or a 5xx the route itself declares, such as the
 * 503 of a Graph route with no client), never the 500 that feeds the 5xx alarm and pages on-call.
 * Anonymous callers are tried on every route; an admin key only on reads, so the fuzz cannot
 * switch panic mode or rotate keys under the other test files.
 */
import type { APIGatewayProxyResult } from 'aws-lambda';
import fc from 'fast-check';
import { sql } from 'kysely';
import { describe, expect } from 'vitest';
import { defineRoute } from '../../lambdas/api/route.ts';
import { apiRoutes } from '../../lambdas/api/routes/index.ts';
import { apiEvent, createTestClient, testApiApp } from '../support/api.ts';
import { apiTest } from '../support/fixtures.ts';
import { anyString, assessAnswer, hostileNumber } from './hostile.ts';

const it = apiTest.extend('adminKey', { scope: 'file' }, async ({ db }) => {
  const { key } = await createTestClient(db, ['admin']);
  return key;
});

/** Pieces of a path segment that break decoders: broken and overlong escapes, dots, slashes. */
const hostileSegment = fc.oneof(
  anyString,
  fc.constantFrom(
    '%',
    '%E0%A4%A',
    '%C0%AF',
    '%ZZ',
    '%00',
    '%2F..%2F',
    '..',
    '.',
    '%25',
    '%FF%FE',
    '%F0%9F%98',
    'a'.repeat(5_000),
  ),
  fc.stringMatching(/^(%[0-9A-Fa-f]{0,2}|[a-z0-9.~-]){1,12}$/),
);

/** A route's path with its parameters (or any segment) replaced by hostile text. */
const hostilePath = fc
  .tuple(
    fc.constantFrom(...apiRoutes.map((r) => r.path)),
    fc.array(hostileSegment, { minLength: 1, maxLength: 3 }),
    fc.constantFrom('exact', 'param', 'append', 'replace-last', 'double-slash'),
  )
  .map(([template, segments, how]) => {
    if (how === 'exact') return template.replace(/\{\w+\}/g, 'x');
    if (how === 'param' && template.includes('{')) {
      return template.replace(/\{\w+\}/g, () => segments[0] ?? '');
    }
    if (how === 'append') return `${template}/${segments.join('/')}`;
    if (how === 'double-slash') return template.replace('/v1/', `//v1/${segments[0]}/../`);
    return `${template.slice(0, template.lastIndexOf('/'))}/${segments.join('/')}`;
  });

/** Query parameters with hostile names and values, numbers far beyond any column's range included. */
const hostileQuery = fc.dictionary(
  fc.oneof(fc.constantFrom('limit', 'after', 'action', 'to', 'cursor', 'prefix'), anyString),
  fc.oneof(
    anyString,
    hostileNumber.map(String),
    fc.constantFrom(
      '9999999999999999999',
      '99999999999999999999999',
      '-1',
      '1e400',
      'NaN',
      '0x10',
      '',
      '%E0%A4%A',
    ),
    fc.bigInt({ min: 0n, max: 10n ** 30n }).map(String),
  ),
  { maxKeys: 4 },
);

/** The statuses a route declares for itself at or above 500 (a 503 when a dependency is absent). */
function declaredServerErrors(path: string): Set<number> {
  const declared = new Set<number>();
  for (const route of apiRoutes) {
    if (route.path !== path) continue;
    for (const status of Object.keys(route.responses).map(Number)) {
      if (status > 500) declared.add(status);
    }
  }
  return declared;
}

/**
 * What an answer must not be: a 500, or a 5xx the route does not declare, a stack trace, an error
 * without the error shape. A 200 shows stored data (key prefixes are 12 hex digits, often all
 * digits; the OpenAPI examples are numbers), so the number checks stay with the notification fuzz.
 */
function routerProblems(response: APIGatewayProxyResult, template: string): string[] {
  return assessAnswer(response).filter(
    (p) =>
      !(p.startsWith('status') && declaredServerErrors(template).has(response.statusCode)) &&
      !(response.statusCode === 200 && p.startsWith('phone-like')),
  );
}

const brief = (response: APIGatewayProxyResult) =>
  `${response.statusCode} ${response.body.slice(0, 300)}`;

describe('the router under hostile paths and query strings', () => {
  it('answers any path, method and query without a 500, with or without a key', async ({
    app,
    adminKey,
  }) => {
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(
        hostilePath,
        fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'),
        hostileQuery,
        fc.boolean(),
        async (path, method, query, withKey) => {
          // Writes only anonymously: an admin key on a POST could switch panic mode for the suite.
          const headers: Record<string, string> =
            withKey && method === 'GET' ? { 'X-API-Key': adminKey } : {};
          const event = apiEvent({ method, path, headers });
          event.queryStringParameters = query;
          const response = await app(event);
          statuses.set(response.statusCode, (statuses.get(response.statusCode) ?? 0) + 1);
          const problems = routerProblems(response, path);
          expect(
            problems,
            `${method} ${path} ${JSON.stringify(query)}: ${brief(response)}`,
          ).toEqual([]);
          expect(response.statusCode).not.toBe(500);
        },
      ),
      { numRuns: 300 },
    );
    // The property must reach the scope check and the parsers, not only the router's 404s.
    expect([...statuses.keys()].filter((s) => s !== 404 && s !== 405).length).toBeGreaterThan(0);
  });

  it('answers hostile query strings on every read route with a 200 or a 4xx', async ({
    app,
    adminKey,
  }) => {
    // The OpenAPI document is static text whose examples are shaped like numbers.
    const reads = apiRoutes
      .filter((r) => r.method === 'GET' && r.path !== '/v1/openapi.json')
      .map((r) => r.path);
    const statuses = new Set<number>();
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...reads), hostileQuery, async (template, query) => {
        const path = template.replace(/\{\w+\}/g, '0190f5c2-7a1e-7c1d-8f00-000000000000');
        const event = apiEvent({ method: 'GET', path, headers: { 'X-API-Key': adminKey } });
        event.queryStringParameters = query;
        const response = await app(event);
        statuses.add(response.statusCode);
        const problems = routerProblems(response, template);
        expect(problems, `GET ${path} ${JSON.stringify(query)}: ${brief(response)}`).toEqual([]);
      }),
      { numRuns: 400 },
    );
    expect(statuses).toContain(200);
    expect(statuses).toContain(400);
  });

  it.for([
    ['/v1/admin/audit', { after: '9999999999999999999' }],
    ['/v1/admin/audit', { after: '9223372036854775808' }],
    ['/v1/admin/audit', { limit: '1e400' }],
    ['/v1/admin/whatsapp/events', { limit: '99999999999999999999' }],
    ['/v1/admin/recipients/opt-outs', { to: '%E0%A4%A' }],
  ] as const)(
    'answers GET %s with %j as a 400 naming the parameter',
    async ([path, query], { app, adminKey }) => {
      const event = apiEvent({ method: 'GET', path, headers: { 'X-API-Key': adminKey } });
      event.queryStringParameters = query;
      const response = await app(event);
      expect(response.statusCode, response.body).toBe(400);
      expect(JSON.parse(response.body).error.field).toBe(Object.keys(query)[0]);
    },
  );

  it('still pages the audit log after the largest id there can be', async ({ app, adminKey }) => {
    const event = apiEvent({
      method: 'GET',
      path: '/v1/admin/audit',
      headers: { 'X-API-Key': adminKey },
    });
    event.queryStringParameters = { after: '9223372036854775807' };
    const response = await app(event);
    expect(response.statusCode, response.body).toBe(200);
    expect(JSON.parse(response.body).entries).toEqual([]);
  });
});

describe('the adapter', () => {
  const probe = (handle: () => Promise<never>) =>
    defineRoute({
      method: 'GET',
      path: '/v1/probe',
      operationId: 'probe',
      summary: 'a route of this test',
      tag: 'health',
      scope: 'public',
      responses: {},
      handle,
    });

  it.for([
    ['a value PostgreSQL refuses as out of range', 'bigint'],
    ['text that is not valid percent-encoding', 'uri'],
  ] as const)(
    'answers %s that slipped past a schema with a 400, not a 500',
    async ([, kind], { db }) => {
      const app = testApiApp(db, {}, [
        probe(async () => {
          if (kind === 'uri') decodeURIComponent('%E0%A4%A');
          await sql`select ${'99999999999999999999'}::bigint`.execute(db);
          throw new Error('unreachable');
        }),
      ]);
      const response = await app(apiEvent({ method: 'GET', path: '/v1/probe' }));
      expect(response.statusCode, response.body).toBe(400);
      expect(JSON.parse(response.body).error.code).toBe('validation_error');
    },
  );

  it('still answers a failure of ours with a 500', async ({ db }) => {
    const app = testApiApp(db, {}, [
      probe(async () => {
        throw new Error('a bug of ours');
      }),
    ]);
    const response = await app(apiEvent({ method: 'GET', path: '/v1/probe' }));
    expect(response.statusCode).toBe(500);
  });
});
