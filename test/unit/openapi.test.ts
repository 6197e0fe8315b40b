/**
 * The OpenAPI document is generated from the same route list the API serves, tells the truth about
 * what each operation can answer, passes Redocly's recommended rules, and is committed in step.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { apiDocument, apiRoutes, renderApiDocument } from '../../lambdas/api/routes/index.ts';
import { WEBHOOK_ROUTES } from '../../lib/api.ts';

const committed = join(import.meta.dirname, '..', '..', 'docs', 'openapi.json');
const document = apiDocument();
type Operation = {
  operationId?: string;
  security?: unknown[];
  responses: Record<string, { headers?: Record<string, unknown> }>;
  requestBody?: { required?: boolean };
};
const operations = Object.entries(document.paths ?? {}).flatMap(([path, item]) =>
  (['get', 'post', 'put', 'delete'] as const).flatMap((method) => {
    const operation = (item as Record<string, Operation | undefined>)[method];
    return operation ? [{ method: method.toUpperCase(), path, operation }] : [];
  }),
);
const operation = (method: string, path: string) =>
  operations.find((o) => o.method === method && o.path === path)!.operation;

describe('the OpenAPI document', () => {
  it('is committed in step with the code (npm run openapi rewrites it)', async () => {
    const onDisk = await readFile(committed, 'utf8');
    expect(onDisk, 'docs/openapi.json is stale: run npm run openapi').toBe(renderApiDocument());
  });

  it('documents each served route once, under its own operationId, and the webhook beside them', () => {
    const served = apiRoutes.map((r) => `${r.method} ${r.path}`);
    expect(new Set(served).size).toBe(served.length);
    const documented = operations.map((o) => `${o.method} ${o.path}`);
    const webhook = Object.entries(WEBHOOK_ROUTES).flatMap(([path, methods]) =>
      methods.map((method) => `${method} ${path}`),
    );
    expect(webhook.length).toBeGreaterThan(0);
    expect(documented.sort()).toEqual([...served, ...webhook].sort());
    const ids = operations.map((o) => o.operation.operationId);
    expect(ids.every((id) => typeof id === 'string' && id.length > 0)).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('takes the request bodies from the validating schemas', () => {
    const schemas = document.components?.schemas ?? {};
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

  it('refuses unknown fields in the batch envelope and in each item, as validation does', () => {
    const batch = document.components?.schemas?.NotificationBatchRequest as {
      additionalProperties: unknown;
      properties: {
        notifications: { items: { additionalProperties: unknown; properties: object } };
      };
    };
    expect(batch.additionalProperties).toBe(false);
    expect(batch.properties.notifications.items.additionalProperties).toBe(false);
    expect(Object.keys(batch.properties.notifications.items.properties)).toContain(
      'idempotencyKey',
    );
  });

  it('asks for X-API-Key on scoped routes and declares public ones with an empty security list', () => {
    expect(document.components?.securitySchemes?.ApiKey).toMatchObject({
      in: 'header',
      name: 'X-API-Key',
    });
    for (const route of apiRoutes) {
      const expected = route.scope === 'public' ? [] : [{ ApiKey: [] }];
      expect(operation(route.method, route.path).security, route.path).toEqual(expected);
    }
    expect(operation('POST', '/webhook/whatsapp').security).toEqual([]);
    expect(document.servers?.length).toBeGreaterThan(0);
  });

  it('declares the errors each route can answer because of the steps it goes through', () => {
    for (const route of apiRoutes) {
      const { responses, requestBody } = operation(route.method, route.path);
      const statuses = Object.keys(responses);
      const where = `${route.method} ${route.path}`;
      expect(statuses, where).toEqual(expect.arrayContaining(['429', '500']));
      if (route.scope !== 'public') {
        expect(statuses, where).toEqual(expect.arrayContaining(['401', '403']));
      }
      if (route.request?.body) {
        expect(statuses, where).toEqual(expect.arrayContaining(['400', '415']));
        expect(requestBody?.required, where).toBe(!route.request.body.optional);
      }
      for (const [status, answer] of Object.entries(responses)) {
        expect(Object.keys(answer.headers ?? {}), `${where} ${status}`).toContain('X-Request-ID');
      }
    }
  });

  it('names the headers the answers carry', () => {
    const accepted = operation('POST', '/v1/notifications').responses['202']!;
    expect(Object.keys(accepted.headers ?? {})).toEqual(
      expect.arrayContaining(['Location', 'Idempotent-Replayed']),
    );
    const created = operation('POST', '/v1/admin/keys').responses['201']!;
    expect(Object.keys(created.headers ?? {})).toContain('Cache-Control');
  });

  it('passes the Redocly CLI with its recommended rules and no error', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'openapi-lint-'));
    try {
      const file = join(dir, 'openapi.json');
      await writeFile(file, renderApiDocument());
      const cli = createRequire(import.meta.url).resolve('@redocly/cli/bin/cli.js');
      // Run in the temp folder so no stray redocly.yaml changes the rules; no telemetry, no update check.
      const { stdout } = await promisify(execFile)(
        process.execPath,
        [cli, 'lint', '--extends', 'recommended', '--format', 'json', file],
        {
          cwd: dir,
          env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' },
        },
      ).catch((error: { stdout?: string }) => ({ stdout: error.stdout ?? '' }));
      const report = JSON.parse(stdout) as {
        totals: { errors: number };
        problems: { ruleId: string; severity: string; message: string }[];
      };
      const errors = report.problems.filter((p) => p.severity === 'error');
      expect(errors, JSON.stringify(errors, null, 2)).toEqual([]);
      expect(report.totals.errors).toBe(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
