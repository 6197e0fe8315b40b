/**
 * Templates checked at acceptance against the registry, on the real database with the registry
 * filled from the sandbox's template list over HTTP: a misspelt name, a missing language, a
 * template not APPROVED and wrong parameters are each a 422 naming the field, and nothing is
 * written; a registry never filled skips the check and says so in a metric and in /v1/health.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Metric } from '#core/platform/metric-names.ts';
import type { SandboxHandle } from '../../../bin/sandbox/server.ts';
import { apiEvent, createTestClient, testApiApp, uniqueRecipient } from '../../support/api.ts';
import { testDatabase } from '../../support/database.ts';
import { startTestSandbox } from '../../support/delivery.ts';
import { recordingMetrics } from '../../support/observability.ts';
import { fillRegistry, uniqueWabaId } from '../../support/templates.ts';

const db = testDatabase();
let sandbox: SandboxHandle;
const wabaId = uniqueWabaId();
const metrics = recordingMetrics();
const app = testApiApp(db, { wabaId, metrics: metrics.metrics });
let key: string;
let clientId: string;

beforeAll(async () => {
  sandbox = await startTestSandbox();
  await fillRegistry(db, sandbox, wabaId);
  ({ key, clientId } = await createTestClient(db));
});
afterAll(async () => {
  await sandbox.stop();
  await db.destroy();
});

const text = (value: string) => ({ type: 'text', text: value });

async function post(path: string, body: unknown, apiKey = key) {
  const response = await app(
    apiEvent({ method: 'POST', path, headers: { 'X-API-Key': apiKey }, body }),
  );
  return { status: response.statusCode, body: JSON.parse(response.body) };
}

async function rowCount(client = clientId): Promise<number> {
  const row = await db
    .selectFrom('notifications')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .where('client_id', '=', client)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

describe('POST /v1/notifications checks the template against the registry', () => {
  it.each([
    [
      'a misspelt name',
      { name: 'helo_world', language: 'en_US' },
      'template_not_found',
      'template.name',
    ],
    [
      'a language the template does not have',
      { name: 'appointment_reminder', language: 'pt_BR', components: [] },
      'template_not_found',
      'template.language',
    ],
    [
      'a REJECTED template',
      { name: 'spring_sale', language: 'en_US' },
      'template_not_approved',
      'template.name',
    ],
    [
      'a PAUSED template',
      { name: 'order_shipped', language: 'en_US' },
      'template_not_approved',
      'template.name',
    ],
    [
      'a missing body parameter',
      { name: 'appointment_reminder', language: 'es' },
      'template_parameters_mismatch',
      'template.components',
    ],
    [
      'one body parameter too many',
      {
        name: 'appointment_reminder',
        language: 'es',
        components: [{ type: 'body', parameters: [text('Ana'), text('mañana')] }],
      },
      'template_parameters_mismatch',
      'template.components.0',
    ],
    [
      'a header and button template without its URL button parameter',
      {
        name: 'delivery_update',
        language: 'en_US',
        components: [
          { type: 'header', parameters: [text('A-1')] },
          { type: 'body', parameters: [text('A-1'), text('Monday')] },
        ],
      },
      'template_parameters_mismatch',
      'template.components',
    ],
    [
      'a named-parameter template given positional parameters',
      {
        name: 'account_notice',
        language: 'en_US',
        components: [{ type: 'body', parameters: [text('Ana'), text('Pro')] }],
      },
      'template_parameters_mismatch',
      'template.components.0',
    ],
  ])('refuses %s with 422 and writes nothing', async (_case, template, code, field) => {
    // prepare
    const before = await rowCount();

    // act
    const answer = await post('/v1/notifications', { to: uniqueRecipient(), template });

    // assess
    expect(answer.status).toBe(422);
    expect(answer.body.error).toMatchObject({ code, field });
    expect(await rowCount()).toBe(before);
  });

  it('accepts templates whose parameters match, and records the category', async () => {
    // act
    const answers = await Promise.all(
      [
        { name: 'hello_world', language: 'en_US' },
        {
          name: 'appointment_reminder',
          language: 'es',
          components: [{ type: 'body', parameters: [text('Ana')] }],
        },
        {
          name: 'delivery_update',
          language: 'en_US',
          components: [
            { type: 'header', parameters: [text('A-1')] },
            { type: 'body', parameters: [text('A-1'), text('Monday')] },
            { type: 'button', sub_type: 'url', index: 0, parameters: [text('A-1')] },
            {
              type: 'button',
              sub_type: 'quick_reply',
              index: '1',
              parameters: [{ type: 'payload', payload: 'stop' }],
            },
          ],
        },
        {
          name: 'account_notice',
          language: 'en_US',
          components: [
            {
              type: 'body',
              parameters: [
                { ...text('Ana'), parameter_name: 'first_name' },
                { ...text('Pro'), parameter_name: 'plan' },
              ],
            },
          ],
        },
        {
          name: 'weekly_offers',
          language: 'en_US',
          components: [{ type: 'body', parameters: [text('Ana')] }],
        },
      ].map((template) => post('/v1/notifications', { to: uniqueRecipient(), template })),
    );

    // assess
    expect(answers.map((a) => a.status)).toEqual([202, 202, 202, 202, 202]);
    expect(answers.map((a) => a.body.templateCategory)).toEqual([
      'UTILITY',
      'UTILITY',
      'UTILITY',
      'UTILITY',
      'MARKETING',
    ]);
  });

  it('replays the first answer of an idempotent request whose template changed since', async () => {
    // prepare: accepted while APPROVED, then the registry says PAUSED
    const body = { to: uniqueRecipient(), template: { name: 'hello_world', language: 'es' } };
    await db
      .insertInto('message_templates')
      .values({
        waba_id: wabaId,
        name: 'hello_world',
        language: 'es',
        status: 'APPROVED',
        source: 'test',
      })
      .execute();
    const headers = { 'X-API-Key': key, 'Idempotency-Key': `tpl-${Date.now()}` };
    const first = await app(apiEvent({ method: 'POST', path: '/v1/notifications', headers, body }));
    await db
      .updateTable('message_templates')
      .set({ status: 'PAUSED' })
      .where('waba_id', '=', wabaId)
      .where('name', '=', 'hello_world')
      .where('language', '=', 'es')
      .execute();

    // act
    const again = await app(apiEvent({ method: 'POST', path: '/v1/notifications', headers, body }));
    const fresh = await post('/v1/notifications', body);

    // assess
    expect(first.statusCode).toBe(202);
    expect(again.statusCode).toBe(202);
    expect(again.headers?.['idempotent-replayed']).toBe('true');
    expect(fresh).toMatchObject({
      status: 422,
      body: { error: { code: 'template_not_approved' } },
    });
  });
});

describe('POST /v1/notifications/batch checks each item', () => {
  it('refuses the items the registry refuses with 422 and their field, and stores only the others', async () => {
    // prepare
    const { key: batchKey, clientId: batchClient } = await createTestClient(db);
    const good = { name: 'hello_world', language: 'en_US' };

    // act
    const answer = await post(
      '/v1/notifications/batch',
      {
        notifications: [
          { to: uniqueRecipient(), template: good },
          { to: uniqueRecipient(), template: { name: 'helo_world', language: 'en_US' } },
          { to: uniqueRecipient(), template: { name: 'appointment_reminder', language: 'es' } },
          { to: uniqueRecipient(), template: { name: 'spring_sale', language: 'en_US' } },
          { to: uniqueRecipient(), text: { body: 'free text is not a template' } },
        ],
      },
      batchKey,
    );

    // assess
    expect(answer.status).toBe(207);
    expect(answer.body).toMatchObject({ accepted: 2, rejected: 3 });
    expect(answer.body.results.map((r: { status: number }) => r.status)).toEqual([
      202, 422, 422, 422, 202,
    ]);
    expect(answer.body.results.slice(1, 4).map((r: { error: unknown }) => r.error)).toEqual([
      expect.objectContaining({
        code: 'template_not_found',
        field: 'notifications.1.template.name',
      }),
      expect.objectContaining({
        code: 'template_parameters_mismatch',
        field: 'notifications.2.template.components',
      }),
      expect.objectContaining({
        code: 'template_not_approved',
        field: 'notifications.3.template.name',
      }),
    ]);
    expect(await rowCount(batchClient)).toBe(2);
  });

  it('writes nothing when every item is refused', async () => {
    // prepare
    const { key: batchKey, clientId: batchClient } = await createTestClient(db);

    // act
    const answer = await post(
      '/v1/notifications/batch',
      {
        notifications: [
          { to: uniqueRecipient(), template: { name: 'legacy_notice', language: 'en_US' } },
          { to: uniqueRecipient(), template: { name: 'password_reset', language: 'en_US' } },
        ],
      },
      batchKey,
    );

    // assess
    expect(answer).toMatchObject({ status: 207, body: { accepted: 0, rejected: 2 } });
    expect(await rowCount(batchClient)).toBe(0);
  });
});

describe('a registry never filled', () => {
  it('accepts templates unchecked, counts them in a metric and says so in /v1/health', async () => {
    // prepare: a WABA whose list was never read (first start, or the Graph API down)
    const recorded = recordingMetrics();
    const unfilled = testApiApp(db, { wabaId: uniqueWabaId(), metrics: recorded.metrics });

    // act
    const accepted = await unfilled(
      apiEvent({
        method: 'POST',
        path: '/v1/notifications',
        headers: { 'X-API-Key': key },
        body: { to: uniqueRecipient(), template: { name: 'helo_world', language: 'en_US' } },
      }),
    );
    // The health details (templates among them) are for callers with a key.
    const healthEvent = () =>
      apiEvent({ method: 'GET', path: '/v1/health', headers: { 'X-API-Key': key } });
    const health = JSON.parse((await unfilled(healthEvent())).body);
    const filledHealth = JSON.parse((await app(healthEvent())).body);

    // assess
    expect(accepted.statusCode).toBe(202);
    expect(recorded.values).toContainEqual({ name: Metric.TemplateCheckSkipped, value: 1 });
    expect(health.templates).toMatchObject({ check: 'skipped', templates: 0 });
    expect(health.templates.reason).toContain('never been filled');
    expect(filledHealth.templates).toMatchObject({ check: 'on' });
    expect(filledHealth.templates.templates).toBeGreaterThanOrEqual(10);
    // Whether templates are checked never makes the service unready.
    expect(health.status).toBe(filledHealth.status);
  });

  it('counts nothing skipped once the registry is filled', async () => {
    // act
    metrics.values.length = 0;
    await post('/v1/notifications', {
      to: uniqueRecipient(),
      template: { name: 'hello_world', language: 'en_US' },
    });

    // assess
    expect(metrics.values.map((v) => v.name)).not.toContain(Metric.TemplateCheckSkipped);
  });
});

describe('GET /v1/admin/status', () => {
  it('shows whether templates are checked and which would be refused', async () => {
    // prepare
    const admin = await createTestClient(db, ['admin']);

    // act
    const response = await app(
      apiEvent({ method: 'GET', path: '/v1/admin/status', headers: { 'X-API-Key': admin.key } }),
    );

    // assess
    expect(response.statusCode).toBe(200);
    const { templates } = JSON.parse(response.body);
    expect(templates).toMatchObject({ check: 'on' });
    expect(templates.notApproved).toEqual(
      expect.arrayContaining([
        { name: 'spring_sale', language: 'en_US', status: 'REJECTED' },
        { name: 'order_shipped', language: 'en_US', status: 'PAUSED' },
      ]),
    );
  });
});
