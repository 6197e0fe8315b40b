/**
 * The admin API over HTTP against the real local stack (its own database and SQS emulator, the
 * sandbox as Meta): every route's answer, scope checks on each, the audit trail with the caller's
 * key prefix, and the request id travelling from the API into the SQS message.
 */
import { ReceiveMessageCommand, SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiClient } from '#core/admin/api-keys.ts';
import { createDatabase } from '#core/db/connect.ts';
import type { Database } from '#core/db/schema.ts';
import { addTallies } from '#core/notifications/tallies.ts';
import type { LocalStack } from '../../../bin/local/stack.ts';
import { auditPageSchema } from '../../../lambdas/api/routes/admin/audit.ts';
import {
  createdKeySchema,
  keyListSchema,
  revokedKeySchema,
  rotatedKeySchema,
} from '../../../lambdas/api/routes/admin/keys.ts';
import { adminNotificationSchema } from '../../../lambdas/api/routes/admin/notifications.ts';
import { panicChangeSchema, panicStatusSchema } from '../../../lambdas/api/routes/admin/panic.ts';
import { rolloutSchema } from '../../../lambdas/api/routes/admin/rollout.ts';
import { adminStatusSchema } from '../../../lambdas/api/routes/admin/status.ts';
import {
  webhookRejectsSchema,
  whatsappEventsSchema,
} from '../../../lambdas/api/routes/admin/webhook-records.ts';
import { templatesSchema, tokenStatusSchema } from '../../../lambdas/api/routes/admin/whatsapp.ts';
import { errorSchema } from '../../../lambdas/api/routes/shared.ts';
import { testSqsClient, uniqueRecipient } from '../../support/api.ts';
import { type OwnStack, startOwnStack } from '../../support/ops-stack.ts';

let own: OwnStack;
let stack: LocalStack;
let db: Kysely<Database>;
let sqs: SQSClient;
let adminKey: string;
let adminPrefix: string;
let clientKey: string;

const SENDER = '100000000000001';

beforeAll(async () => {
  own = await startOwnStack();
  stack = own.stack;
  db = createDatabase({ DATABASE_URL: stack.databaseUrl, DB_POOL_MAX: 2 } as never);
  sqs = testSqsClient(stack.sqsEndpoint);
  adminKey = stack.apiKey;
  adminPrefix = stack.apiKeyPrefix;
  clientKey = (
    await createApiClient(db, {
      name: 'notifications-only',
      scopes: ['notifications:write', 'notifications:read'],
    })
  ).key;
});

afterAll(async () => {
  sqs?.destroy();
  await db?.destroy();
  await own?.stop();
});

interface Answer {
  status: number;
  body: unknown;
  headers: Headers;
}

async function call(
  method: string,
  path: string,
  options: { key?: string | null; body?: unknown; headers?: Record<string, string> } = {},
): Promise<Answer> {
  const key = options.key === undefined ? adminKey : options.key;
  const response = await fetch(`${stack.baseUrl}${path}`, {
    method,
    headers: {
      ...(key ? { 'x-api-key': key } : {}),
      ...(options.body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...options.headers,
    },
    ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
  });
  const text = await response.text();
  return {
    status: response.status,
    body: text ? JSON.parse(text) : null,
    headers: response.headers,
  };
}

async function notify(to = uniqueRecipient(), headers: Record<string, string> = {}) {
  const answer = await call('POST', '/v1/notifications', {
    key: clientKey,
    body: { to, template: { name: 'hello_world', language: 'en_US' } },
    headers,
  });
  expect(answer.status).toBe(202);
  return answer.body as { id: string; requestId: string };
}

const ADMIN_ROUTES: { method: string; path: string; body?: unknown }[] = [
  { method: 'GET', path: '/v1/admin/status' },
  { method: 'GET', path: '/v1/admin/panic' },
  { method: 'POST', path: '/v1/admin/panic', body: { enabled: true, reason: 'scope test' } },
  { method: 'GET', path: '/v1/admin/rollout' },
  { method: 'PUT', path: '/v1/admin/rollout', body: { dryRun: true } },
  { method: 'GET', path: '/v1/admin/keys' },
  { method: 'POST', path: '/v1/admin/keys', body: { name: 'scope-test' } },
  { method: 'POST', path: '/v1/admin/keys/0123456789ab/rotate' },
  { method: 'POST', path: '/v1/admin/keys/0123456789ab/revoke' },
  { method: 'GET', path: '/v1/admin/whatsapp/templates' },
  { method: 'GET', path: '/v1/admin/whatsapp/token' },
  { method: 'GET', path: '/v1/admin/notifications/01a20000-0000-7000-8000-000000000000' },
  { method: 'GET', path: '/v1/admin/audit' },
];

describe('admin scope', () => {
  it.each(ADMIN_ROUTES)(
    '$method $path answers 401 without a key and 403 for a notifications key',
    async (route) => {
      const anonymous = await call(route.method, route.path, { key: null, body: route.body });
      expect(anonymous.status).toBe(401);
      errorSchema.parse(anonymous.body);
      const client = await call(route.method, route.path, {
        key: clientKey,
        body: route.body,
        headers: { 'x-request-id': `scope-${route.method}-${route.path.length}` },
      });
      expect(client.status).toBe(403);
      expect((client.body as { error: { code: string } }).error.code).toBe('forbidden');
    },
  );

  it('changes nothing when the key lacks the scope, and audits the refusal', async () => {
    const before = await call('GET', '/v1/admin/rollout');
    await call('PUT', '/v1/admin/rollout', {
      key: clientKey,
      body: { deliveryEnabled: false },
      headers: { 'x-request-id': 'forbidden-rollout-1' },
    });
    const after = await call('GET', '/v1/admin/rollout');
    expect(after.body).toEqual(before.body);
    const audit = await db
      .selectFrom('audit_log')
      .selectAll()
      .where('request_id', '=', 'forbidden-rollout-1')
      .execute();
    expect(audit).toMatchObject([{ action: 'auth.forbidden', outcome: 'denied' }]);
  });

  it('lets an admin key send and read notifications (admin implies the notification scopes)', async () => {
    const sent = await call('POST', '/v1/notifications', {
      body: { to: uniqueRecipient(), template: { name: 'hello_world', language: 'en_US' } },
    });
    expect(sent.status).toBe(202);
    const read = await call('GET', `/v1/notifications/${(sent.body as { id: string }).id}`);
    expect(read.status).toBe(200);
  });
});

describe('GET /v1/admin/status', () => {
  it('reports the last 24 h, exact queue and DLQ depths, panic mode, limits, rollout and the scheduler', async () => {
    const first = await notify();
    const exhausted = await notify();
    const retrying = await notify();
    // One row used every receive and its last retry time has passed (its message is in the DLQ);
    // another used them too but waits for a retry after a redrive (its message is on the queue).
    await db
      .updateTable('notifications')
      .set({ attempts: 5, next_attempt_at: new Date(Date.now() - 60_000) })
      .where('id', '=', exhausted.id)
      .execute();
    await db
      .updateTable('notifications')
      .set({ attempts: 6, next_attempt_at: new Date(Date.now() + 60_000) })
      .where('id', '=', retrying.id)
      .execute();
    await db
      .updateTable('notifications')
      .set({
        status: 'failed',
        error_class: 'template',
        error_code: 132001,
        error_message: 'Template name does not exist',
      })
      .where('id', '=', first.id)
      .execute();
    await addTallies(db, { skipped_duplicate: 2, skipped_rate_limit: 1 }, new Date());
    await sqs.send(
      new SendMessageCommand({ QueueUrl: stack.queueUrls.highDlq, MessageBody: first.id }),
    );

    const answer = await call('GET', '/v1/admin/status');
    expect(answer.status).toBe(200);
    const status = adminStatusSchema.parse(answer.body);
    expect(status.last24h).toMatchObject({
      failed: 1,
      failedByClass: { template: 1 },
      skippedDuplicate: 2,
      skippedRateLimit: 1,
    });
    expect(status.last24h.accepted).toBeGreaterThanOrEqual(3);
    expect(status.last24h.topErrors[0]).toMatchObject({
      errorClass: 'template',
      errorCode: 132001,
      count: 1,
    });
    const byName = Object.fromEntries(status.queues.map((q) => [q.name, q]));
    // The worker is off: every accepted notification's message is on the high queue; the table
    // says one of them no longer waits (moved to failed above) and one waits in the DLQ.
    const accepted = status.last24h.accepted;
    expect(byName.high).toMatchObject({
      visible: accepted,
      inFlight: 0,
      delayed: 0,
      waitingNotifications: accepted - 2,
    });
    expect(byName.high?.oldestAgeSeconds).toBeGreaterThanOrEqual(0);
    expect(byName['high-dlq']).toMatchObject({ visible: 1, kind: 'dlq', waitingNotifications: 1 });
    expect(byName['high-dlq']?.oldestAgeSeconds).toBeGreaterThanOrEqual(0);
    expect(byName.bulk).toMatchObject({ visible: 0, oldestAgeSeconds: null });
    expect(status.sqs.endpoint).toBe(stack.sqsEndpoint);
    expect(status.panic.senders.map((s) => s.senderId)).toContain(SENDER);
    expect(status.rateLimiter.limits.ratePerSecond).toBe(80);
    expect(status.rollout.deliveryEnabled).toBe(true);
    expect(status.scheduler.lastRun).not.toBeNull();
  });
});

describe('POST /v1/admin/panic', () => {
  it('opens and closes the circuit, audited with the key prefix, and says when nothing changed', async () => {
    const on = await call('POST', '/v1/admin/panic', {
      body: { enabled: true, reason: 'Meta outage, INC-42' },
      headers: { 'x-request-id': 'panic-on-1' },
    });
    expect(on.status).toBe(200);
    const opened = panicChangeSchema.parse(on.body);
    expect(opened).toMatchObject({
      changed: true,
      sender: {
        senderId: SENDER,
        active: true,
        openedBy: `key:${adminPrefix}`,
        reason: 'Meta outage, INC-42',
      },
    });
    const again = await call('POST', '/v1/admin/panic', {
      body: { enabled: true, reason: 'again' },
    });
    expect(again.body).toMatchObject({ changed: false });
    expect(panicStatusSchema.parse((await call('GET', '/v1/admin/panic')).body).active).toBe(true);

    const off = await call('POST', '/v1/admin/panic', {
      body: { enabled: false, reason: 'recovered', senderId: SENDER },
    });
    expect(off.body).toMatchObject({ changed: true, sender: { active: false } });
    const audit = await db
      .selectFrom('audit_log')
      .select(['actor', 'action'])
      .where('action', 'like', 'panic.%')
      .orderBy('id')
      .execute();
    expect(audit.slice(-2)).toEqual([
      { actor: `key:${adminPrefix}`, action: 'panic.enable' },
      { actor: `key:${adminPrefix}`, action: 'panic.disable' },
    ]);
    const onAudit = await db
      .selectFrom('audit_log')
      .select('request_id')
      .where('action', '=', 'panic.enable')
      .executeTakeFirst();
    expect(onAudit?.request_id).toBe('panic-on-1');
  });

  it('keeps a phone number out of the stored reason', async () => {
    const answer = await call('POST', '/v1/admin/panic', {
      body: {
        enabled: true,
        reason: 'customer +573001234567 complained',
        senderId: '200000000000002',
      },
    });
    expect(JSON.stringify(answer.body)).not.toContain('3001234567');
    const row = await db
      .selectFrom('sender_state')
      .select('open_reason')
      .where('sender_id', '=', '200000000000002')
      .executeTakeFirstOrThrow();
    expect(row.open_reason).toBe('customer +57******4567 complained');
  });

  it.each([
    [{ enabled: true, reason: 'no' }, 'reason'],
    [{ enabled: true }, 'reason'],
    [{ reason: 'missing the switch' }, 'enabled'],
    [{ enabled: true, reason: 'fine', sender: '1' }, 'sender'],
    [{ enabled: true, reason: 'fine', senderId: 'abc' }, 'senderId'],
  ])('answers 400 naming the field for %j', async (body, field) => {
    const answer = await call('POST', '/v1/admin/panic', { body });
    expect(answer.status).toBe(400);
    expect(answer.body).toMatchObject({ error: { code: 'validation_error', field } });
  });
});

describe('GET|PUT /v1/admin/rollout', () => {
  it('changes only the named switches and audits the change with the key prefix', async () => {
    const before = rolloutSchema.parse((await call('GET', '/v1/admin/rollout')).body);
    const put = await call('PUT', '/v1/admin/rollout', {
      body: { dailyCap: 500, pilotPrefixes: ['+57300'] },
    });
    expect(put.status).toBe(200);
    const after = rolloutSchema.parse(put.body);
    expect(after).toMatchObject({
      ...before,
      dailyCap: 500,
      pilotPrefixes: ['+57300'],
      updatedBy: `key:${adminPrefix}`,
      updatedAt: expect.any(String),
    });
    const audit = await db
      .selectFrom('audit_log')
      .select(['actor', 'detail'])
      .where('action', '=', 'rollout.update')
      .orderBy('id', 'desc')
      .executeTakeFirstOrThrow();
    expect(audit.actor).toBe(`key:${adminPrefix}`);
    expect(audit.detail).toMatchObject({
      changes: { dailyCap: { from: before.dailyCap, to: 500 } },
    });
    await call('PUT', '/v1/admin/rollout', {
      body: { dailyCap: before.dailyCap, pilotPrefixes: before.pilotPrefixes },
    });
  });

  it.each([
    [{}, undefined],
    [{ ratePerSecond: 0 }, 'ratePerSecond'],
    [{ pilotPrefixes: ['57'] }, 'pilotPrefixes.0'],
    [{ killSwitch: true }, 'killSwitch'],
  ])('answers 400 for %j', async (body, field) => {
    const answer = await call('PUT', '/v1/admin/rollout', { body });
    expect(answer.status).toBe(400);
    expect((answer.body as { error: { field?: string } }).error.field).toBe(field);
  });
});

describe('API keys', () => {
  it('creates a key that works, lists it by prefix only, rotates it with a grace period and revokes it', async () => {
    const created = await call('POST', '/v1/admin/keys', {
      body: { name: 'billing-service', scopes: ['notifications:read'] },
    });
    expect(created.status).toBe(201);
    expect(created.headers.get('cache-control')).toBe('no-store');
    const key = createdKeySchema.parse(created.body);
    expect(key.scopes).toEqual(['notifications:read']);
    expect((await call('GET', '/v1/admin/status', { key: key.key })).status).toBe(403);

    const list = keyListSchema.parse((await call('GET', '/v1/admin/keys')).body);
    expect(list.keys.find((k) => k.prefix === key.prefix)).toMatchObject({
      name: 'billing-service',
      state: 'active',
    });
    expect(JSON.stringify(list)).not.toContain(key.key);

    const rotated = rotatedKeySchema.parse(
      (await call('POST', `/v1/admin/keys/${key.prefix}/rotate`, { body: { graceSeconds: 3600 } }))
        .body,
    );
    expect(rotated).toMatchObject({
      previousPrefix: key.prefix,
      clientId: key.clientId,
      scopes: ['notifications:read'],
    });
    const probe = (k: string) =>
      call('GET', '/v1/notifications/01a20000-0000-7000-8000-000000000000', { key: k });
    expect((await probe(rotated.key)).status).toBe(404);
    expect((await probe(key.key)).status).toBe(404);

    const immediate = rotatedKeySchema.parse(
      (await call('POST', `/v1/admin/keys/${rotated.prefix}/rotate`, { body: { graceSeconds: 0 } }))
        .body,
    );
    expect((await probe(rotated.key)).status).toBe(401);

    const revoked = await call('POST', `/v1/admin/keys/${immediate.prefix}/revoke`);
    expect(revoked.status).toBe(200);
    revokedKeySchema.parse(revoked.body);
    expect((await probe(immediate.key)).status).toBe(401);
    expect((await call('POST', `/v1/admin/keys/${immediate.prefix}/revoke`)).status).toBe(404);

    const audit = await db
      .selectFrom('audit_log')
      .select(['actor', 'action', 'detail'])
      .where('action', 'like', 'key.%')
      .orderBy('id')
      .execute();
    expect(audit.map((a) => a.action)).toEqual([
      'key.create',
      'key.rotate',
      'key.rotate',
      'key.revoke',
    ]);
    expect(new Set(audit.map((a) => a.actor))).toEqual(new Set([`key:${adminPrefix}`]));
    expect(JSON.stringify(audit)).not.toMatch(/wn_[0-9a-f]{12}_/);
  });

  it.each([
    ['POST', '/v1/admin/keys', { name: '' }, 'name'],
    ['POST', '/v1/admin/keys', { name: 'x', scopes: ['root'] }, 'scopes.0'],
    ['POST', '/v1/admin/keys', { name: '+573001234567' }, 'name'],
    ['POST', '/v1/admin/keys/not-a-prefix/rotate', undefined, 'prefix'],
    ['POST', '/v1/admin/keys/0123456789ab/rotate', { graceSeconds: -1 }, 'graceSeconds'],
  ])('%s %s answers 400 for %j', async (method, path, body, field) => {
    const answer = await call(method, path, { body });
    expect(answer.status).toBe(400);
    expect((answer.body as { error: { field?: string } }).error.field).toBe(field);
  });

  it('answers 404 when rotating a prefix no key has', async () => {
    expect((await call('POST', '/v1/admin/keys/0123456789ab/rotate')).status).toBe(404);
  });
});

describe('WhatsApp status through the deployment', () => {
  it('lists the templates with their review status', async () => {
    const answer = await call('GET', '/v1/admin/whatsapp/templates');
    expect(answer.status).toBe(200);
    const { templates } = templatesSchema.parse(answer.body);
    expect(templates).toContainEqual(
      expect.objectContaining({ name: 'hello_world', language: 'en_US', status: 'APPROVED' }),
    );
    expect(new Set(templates.map((t) => t.status))).toContain('REJECTED');
  });

  it('reports the token as Meta sees it, never the token itself', async () => {
    const answer = await call('GET', '/v1/admin/whatsapp/token');
    expect(answer.status).toBe(200);
    const token = tokenStatusSchema.parse(answer.body);
    expect(token).toMatchObject({ valid: true, expiresAt: null });
    expect(token.scopes).toContain('whatsapp_business_messaging');
    expect(JSON.stringify(answer.body)).not.toContain(process.env.WHATSAPP_ACCESS_TOKEN!);
  });
});

describe('GET /v1/admin/notifications/{id}', () => {
  it('shows any client’s notification with its transitions, the recipient masked', async () => {
    const to = uniqueRecipient();
    const { id } = await notify(to);
    const answer = await call('GET', `/v1/admin/notifications/${id}`);
    expect(answer.status).toBe(200);
    const view = adminNotificationSchema.parse(answer.body);
    expect(view.events.map((e) => e.to)).toEqual(['accepted', 'queued']);
    expect(view.to).not.toContain(to.slice(3, 9));
    expect((await call('GET', '/v1/admin/notifications/nope')).status).toBe(404);
  });
});

describe('GET /v1/admin/audit', () => {
  it('pages the audit log newest first, by action prefix and after an id', async () => {
    await call('PUT', '/v1/admin/rollout', { body: { drainPerSecond: 11 } });
    await call('PUT', '/v1/admin/rollout', { body: { drainPerSecond: 10 } });
    const page = auditPageSchema.parse(
      (await call('GET', '/v1/admin/audit?limit=2&action=rollout.')).body,
    );
    expect(page.entries).toHaveLength(2);
    expect(page.entries[0]!.detail).toMatchObject({ changes: { drainPerSecond: { to: 10 } } });
    expect(Number(page.entries[0]!.id)).toBeGreaterThan(Number(page.entries[1]!.id));
    const after = auditPageSchema.parse(
      (await call('GET', `/v1/admin/audit?after=${page.entries[1]!.id}`)).body,
    );
    expect(after.entries.map((e) => e.id)).toContain(page.entries[0]!.id);
    expect(after.entries.map((e) => e.id)).not.toContain(page.entries[1]!.id);
  });

  it.each(['limit=0', 'limit=501', 'since=yesterday'])('answers 400 for ?%s', async (query) => {
    expect((await call('GET', `/v1/admin/audit?${query}`)).status).toBe(400);
  });
});

describe('GET /v1/admin/whatsapp/events and /rejects', () => {
  it('lists Meta events newest first and refused items without their raw JSON', async () => {
    await db
      .insertInto('whatsapp_events')
      .values([
        {
          field: 'account_update',
          event: 'ACCOUNT_VIOLATION',
          waba_id: '102290129340398',
          payload: JSON.stringify({ event: 'ACCOUNT_VIOLATION', note: 'call +573001234567' }),
        },
        {
          field: 'message_template_status_update',
          event: 'PAUSED',
          waba_id: '102290129340398',
          payload: JSON.stringify({ event: 'PAUSED', message_template_id: 1234567890123 }),
        },
      ])
      .execute();
    await db
      .insertInto('webhook_rejects')
      .values({
        field: 'messages',
        kind: 'status',
        reason: 'entry.0.changes.0.value.statuses.0.id: expected string',
        raw: JSON.stringify({ recipient_id: '573001234567' }),
      })
      .execute();

    const events = whatsappEventsSchema.parse(
      (await call('GET', '/v1/admin/whatsapp/events?limit=2')).body,
    );
    const violations = whatsappEventsSchema.parse(
      (await call('GET', '/v1/admin/whatsapp/events?field=account_update&limit=1')).body,
    );
    const rejects = await call('GET', '/v1/admin/whatsapp/rejects?limit=1');

    expect(events.events.map((e) => e.event)).toEqual(['PAUSED', 'ACCOUNT_VIOLATION']);
    // An id is not a phone number; text that looks like one is masked.
    expect(events.events[0]!.payload).toMatchObject({ message_template_id: 1234567890123 });
    expect(JSON.stringify(violations)).not.toContain('573001234567');
    expect(webhookRejectsSchema.parse(rejects.body).rejects[0]).toMatchObject({
      field: 'messages',
      kind: 'status',
    });
    expect(JSON.stringify(rejects.body)).not.toContain('573001234567');
    expect((await call('GET', '/v1/admin/whatsapp/events', { key: clientKey })).status).toBe(403);
  });
});

describe('GET /v1/openapi.json', () => {
  it('serves the document without a key', async () => {
    const answer = await call('GET', '/v1/openapi.json', { key: null });
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({
      openapi: '3.1.0',
      paths: { '/v1/admin/status': { get: expect.any(Object) } },
    });
  });
});

describe('request id tracing', () => {
  it('keeps the client’s X-Request-ID on the answer, the row and the SQS message', async () => {
    const requestId = 'trace-admin-api-1';
    const answer = await call('POST', '/v1/notifications', {
      key: clientKey,
      body: { to: uniqueRecipient(), template: { name: 'hello_world', language: 'en_US' } },
      headers: { 'x-request-id': requestId },
    });
    expect(answer.headers.get('x-request-id')).toBe(requestId);
    const { id } = answer.body as { id: string };
    expect(answer.body).toMatchObject({ requestId });
    // The worker is off: find the message on the high queue and read its attributes.
    let found: string | undefined;
    for (let i = 0; i < 20 && !found; i++) {
      const received = await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: stack.queueUrls.high,
          MaxNumberOfMessages: 10,
          VisibilityTimeout: 0,
          MessageAttributeNames: ['All'],
        }),
      );
      found = received.Messages?.find((m) => m.Body === id)?.MessageAttributes?.requestId
        ?.StringValue;
    }
    expect(found).toBe(requestId);
  });
});
