/**
 * The functions' database roles (migration 0004_function_roles) on the suite's PostgreSQL: each
 * signs in with a local password (in AWS it uses IAM), does what its function does through the
 * real code, and is refused schema changes and the tables its function never touches.
 */
import { type Kysely, sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authenticateApiKey, createApiClient } from '#core/admin/api-keys.ts';
import { createDatabase } from '#core/db/connect.ts';
import { migrateToLatest } from '#core/db/migrate.ts';
import * as functionRoles from '#core/db/migrations/0004_function_roles.ts';
import { type DatabaseFunction, FUNCTION_DATABASE_ROLES } from '#core/db/roles.ts';
import type { Database } from '#core/db/schema.ts';
import { databaseGates } from '#core/delivery/database-gates.ts';
import { applyHealthReading, readNumberHealth } from '#core/delivery/number-health.ts';
import { loadRows } from '#core/delivery/pipeline/load.ts';
import { writeAudit } from '#core/notifications/audit.ts';
import { returnClientQuota, takeClientQuota } from '#core/notifications/client-quota.ts';
import { addOptOut, removeOptOut } from '#core/notifications/opt-outs.ts';
import { applyTemplateEvents } from '#core/notifications/template-registry.ts';
import type { GraphClient } from '#core/whatsapp/graph-client.ts';
import {
  pruneWebhookRecords,
  storeWebhookRejects,
  storeWhatsAppEvents,
} from '#core/whatsapp/webhook-records.ts';
import {
  type FunctionDatabaseUrls,
  functionDatabaseUrls,
} from '../../../bin/local/database-roles.ts';
import { apiEvent, createTestClient, testApiApp, uniqueRecipient } from '../../support/api.ts';
import { testDatabase } from '../../support/database.ts';
import { startDeliveryRig, startTestSandbox } from '../../support/delivery.ts';
import {
  injectedRollout,
  recordingSqsClient,
  runSchedulerWhenFree,
  schedulerOptions,
  testRollout,
  testSchedulerDeps,
  uniqueSenderId,
} from '../../support/delivery-control.ts';
import { fillRegistry, uniqueWabaId } from '../../support/templates.ts';

const owner = testDatabase(2);
const FUNCTIONS = Object.keys(FUNCTION_DATABASE_ROLES) as DatabaseFunction[];
let urls: FunctionDatabaseUrls;
const asRole = {} as Record<DatabaseFunction, Kysely<Database>>;

function connect(url: string): Kysely<Database> {
  return createDatabase({
    DATABASE_URL: url,
    DB_POOL_MAX: 2,
    DB_PORT: 5432,
    DB_NAME: '',
    DB_IAM_AUTH: false,
  });
}

beforeAll(async () => {
  urls = await functionDatabaseUrls(process.env.DATABASE_URL!);
  for (const fn of FUNCTIONS) asRole[fn] = connect(urls[fn]);
});

afterAll(async () => {
  for (const fn of FUNCTIONS) await asRole[fn]?.destroy();
  await owner.destroy();
});

async function refusal(db: Kysely<Database>, statement: string): Promise<string> {
  const error = await sql
    .raw(statement)
    .execute(db)
    .then(
      () => undefined,
      (e: unknown) => e as { code?: string },
    );
  return error?.code ?? 'allowed';
}

/** 42501: insufficient_privilege; 42501 is also what PostgreSQL answers to DDL without rights. */
const DENIED = '42501';

describe('the functions database roles', () => {
  it('exist as plain login roles, one per function, with no power over roles, databases or the schema', async () => {
    const { rows } = await sql<{
      rolname: string;
      rolsuper: boolean;
      rolcreaterole: boolean;
      rolcreatedb: boolean;
      rolcanlogin: boolean;
      owns: number;
    }>`
      select rolname, rolsuper, rolcreaterole, rolcreatedb, rolcanlogin,
        (select count(*)::int from pg_class c where c.relowner = r.oid) as owns
      from pg_roles r where rolname like 'notif\\_%' order by rolname`.execute(owner);
    expect(rows).toEqual(
      Object.values(FUNCTION_DATABASE_ROLES)
        .sort()
        .map((rolname) => ({
          rolname,
          rolsuper: false,
          rolcreaterole: false,
          rolcreatedb: false,
          rolcanlogin: true,
          owns: 0,
        })),
    );
  });

  it.each(FUNCTIONS)('refuses schema changes and TRUNCATE to the %s role', async (fn) => {
    const db = asRole[fn];
    expect(await refusal(db, 'select 1')).toBe('allowed');
    expect({
      create: await refusal(db, `create table ${fn}_intruder (id int)`),
      drop: await refusal(db, 'drop table audit_log'),
      alter: await refusal(db, 'alter table notifications add column intruder int'),
      truncate: await refusal(db, 'truncate notification_events'),
      index: await refusal(db, 'create index intruder_idx on notifications (recipient)'),
      trigger: await refusal(db, 'drop trigger notifications_record_transition on notifications'),
      function: await refusal(
        db,
        `create function ${fn}_intruder() returns int language sql as 'select 1'`,
      ),
    }).toEqual({
      create: DENIED,
      drop: DENIED,
      alter: DENIED,
      truncate: DENIED,
      index: DENIED,
      trigger: DENIED,
      function: DENIED,
    });
  });

  it('lets the api role accept a notification and authenticate a key through the real API app', async () => {
    const api = asRole.api;
    const client = await createTestClient(api, ['notifications:write', 'notifications:read']);
    expect(await authenticateApiKey(api, client.key, new Date())).toMatchObject({ ok: true });

    const response = await testApiApp(api)(
      apiEvent({
        method: 'POST',
        path: '/v1/notifications',
        headers: { 'x-api-key': client.key },
        body: {
          to: uniqueRecipient(),
          template: { name: 'appointment_reminder', language: 'es', components: [] },
        },
      }),
    );

    expect(response.statusCode).toBe(202);
    const { id } = JSON.parse(response.body) as { id: string };
    // The trigger wrote the event under the api role's privileges.
    const events = await owner
      .selectFrom('notification_events')
      .select('to_status')
      .where('notification_id', '=', id)
      .orderBy('id')
      .execute();
    expect(events.map((e) => e.to_status)).toEqual(['accepted', 'queued']);
  });

  it('lets the api role cancel a notification and set a client default fallback (0011), audited', async () => {
    const api = asRole.api;
    const client = await createTestClient(api, ['notifications:write', 'notifications:read']);
    const admin = await createTestClient(api, ['admin']);
    const app = testApiApp(api);
    const call = (key: string, method: 'POST' | 'PUT', path: string, body?: unknown) =>
      app(apiEvent({ method, path, headers: { 'x-api-key': key }, ...(body ? { body } : {}) }));

    const setDefault = await call(
      admin.key,
      'PUT',
      `/v1/admin/clients/${client.clientId}/fallback`,
      {
        afterSeconds: 600,
      },
    );
    const created = await call(client.key, 'POST', '/v1/notifications', {
      to: uniqueRecipient(),
      template: { name: 'appointment_reminder', language: 'es', components: [] },
    });
    const { id, fallback } = JSON.parse(created.body) as { id: string; fallback: unknown };
    const cancelled = await call(client.key, 'POST', `/v1/notifications/${id}/cancel`);

    expect([setDefault.statusCode, created.statusCode, cancelled.statusCode]).toEqual([
      200, 202, 200,
    ]);
    expect(fallback).toMatchObject({ afterSeconds: 600 });
    expect(JSON.parse(cancelled.body)).toMatchObject({ status: 'cancelled' });
  });

  it('lets the api role create a limited client, take from its quota and give back (0012), but not change its limits', async () => {
    const api = asRole.api;
    const client = await createApiClient(api, {
      name: `role-limits-${Date.now()}`,
      scopes: ['notifications:write'],
      limits: { ratePerSecond: 2, dailyQuota: 5, maxPriority: 'bulk' },
      expiresAt: new Date(Date.now() + 3_600_000),
    });
    const now = new Date();

    const take = await takeClientQuota(api, client.clientId, 3, now);
    await returnClientQuota(api, client.clientId, 1, now);

    expect(take).toMatchObject({ granted: 3, dayUsed: 3 });
    const row = await owner
      .selectFrom('api_clients')
      .select('quota_day_count')
      .where('id', '=', client.clientId)
      .executeTakeFirstOrThrow();
    expect(row.quota_day_count).toBe(2);
    expect(
      await refusal(
        api,
        `update api_clients set daily_quota = 1000000 where id = '${client.clientId}'`,
      ),
    ).toBe(DENIED);
  });

  it('lets the api role change limits only through set_client_limits (0014), which writes the audit entry, and not by UPDATE', async () => {
    const api = asRole.api;
    const client = await createTestClient(api);
    const admin = await createTestClient(api, ['admin']);
    const app = testApiApp(api);

    const changed = await app(
      apiEvent({
        method: 'PUT',
        path: `/v1/admin/clients/${client.clientId}/limits`,
        headers: { 'x-api-key': admin.key },
        body: { dailyQuota: 7, maxPriority: 'bulk' },
      }),
    );

    expect(changed.statusCode).toBe(200);
    const audited = await owner
      .selectFrom('audit_log')
      .select('detail')
      .where('action', '=', 'client.limits')
      .where(sql<boolean>`detail->>'clientId' = ${client.clientId}`)
      .execute();
    expect(audited).toHaveLength(1);
    const where = `where id = '${client.clientId}'`;
    for (const column of ['rate_per_second = 1000', 'daily_quota = null', 'max_priority = null']) {
      expect(await refusal(api, `update api_clients set ${column} ${where}`)).toBe(DENIED);
    }
    expect(await refusal(api, `update api_clients set name = 'renamed' ${where}`)).toBe(DENIED);
    // The audit entry cannot be taken back by the role that made the change.
    expect(await refusal(api, "delete from audit_log where action = 'client.limits'")).toBe(DENIED);
    for (const other of ['webhook', 'worker', 'scheduler'] as const) {
      expect(
        await refusal(
          asRole[other],
          `select set_client_limits('${client.clientId}', '{"dailyQuota": null}', 'x', null, null)`,
        ),
      ).toBe(DENIED);
    }
  });

  it('lets the webhook role record and lift an opt-out and audit it, and nothing about keys', async () => {
    const webhook = asRole.webhook;
    const recipient = uniqueRecipient();
    await addOptOut(webhook, recipient, 'keyword');
    await writeAudit(webhook, { actor: 'webhook', action: 'opt_out', outcome: 'ok' });
    expect(await removeOptOut(webhook, recipient)).toBe(true);

    expect(await refusal(webhook, 'select * from api_keys')).toBe(DENIED);
    expect(
      await refusal(
        webhook,
        'insert into api_clients (id, name) values (gen_random_uuid(), $$x$$)',
      ),
    ).toBe(DENIED);
    expect(await refusal(webhook, 'delete from notifications')).toBe(DENIED);
    expect(await refusal(webhook, 'update rollout_settings set id = 1')).toBe(DENIED);
  });

  it('lets the webhook role keep refused items and events, the scheduler prune them, the api read them', async () => {
    await storeWebhookRejects(asRole.webhook, [
      { field: 'messages', kind: 'status', reason: 'roles test', raw: { id: 1 } },
    ]);
    await storeWhatsAppEvents(asRole.webhook, [
      { field: 'account_update', event: 'ROLES_TEST', payload: { event: 'ROLES_TEST' } },
    ]);
    expect(await refusal(asRole.webhook, 'select * from webhook_rejects')).toBe(DENIED);

    await pruneWebhookRecords(asRole.scheduler, new Date());
    const read = await asRole.api
      .selectFrom('whatsapp_events')
      .select('event')
      .where('event', '=', 'ROLES_TEST')
      .execute();
    expect(read.length).toBeGreaterThan(0);
    // Deleting refused items is the api's only for one person's erasure (0013); events hold no number.
    expect(await refusal(asRole.api, 'delete from whatsapp_events')).toBe(DENIED);
  });

  it("lets the webhook and scheduler roles record the number's health and open panic mode, the worker and api read it", async () => {
    const senderId = uniqueSenderId('roles-health');
    try {
      const restricted = await applyHealthReading(asRole.webhook, {
        senderId,
        reading: { reading: { accountState: 'RESTRICTED' }, blocks: 'roles test restriction' },
        source: 'webhook:account_update',
        actor: 'system:webhook',
      });
      expect(restricted.opened).toBe(true);
      await applyHealthReading(asRole.scheduler, {
        senderId,
        reading: { reading: { qualityRating: 'GREEN', messagingLimit: 'TIER_2K' } },
        source: 'graph',
        actor: 'system:scheduler',
        checked: true,
      });
      expect(await readNumberHealth(asRole.worker, senderId)).toMatchObject({
        messagingLimit: 'TIER_2K',
        accountState: 'RESTRICTED',
      });
      expect((await readNumberHealth(asRole.api, senderId))?.qualityRating).toBe('GREEN');
      expect(await refusal(asRole.worker, 'delete from number_health')).toBe(DENIED);
    } finally {
      await owner.deleteFrom('number_health').where('sender_id', '=', senderId).execute();
      await owner.deleteFrom('sender_state').where('sender_id', '=', senderId).execute();
    }
  });

  it('lets the scheduler fill the template registry, the webhook update it, the api and worker only read it', async () => {
    // The scheduler's refresh, from the sandbox's list.
    const wabaId = uniqueWabaId();
    const sandbox = await startTestSandbox();
    try {
      await fillRegistry(asRole.scheduler, sandbox, wabaId);
    } finally {
      await sandbox.stop();
    }
    // A template webhook.
    const [applied] = await applyTemplateEvents(
      asRole.webhook,
      [
        {
          field: 'message_template_status_update',
          event: 'PAUSED',
          wabaId,
          payload: { message_template_name: 'hello_world', message_template_language: 'en-US' },
        },
      ],
      new Date(),
    );
    expect(applied).toMatchObject({ applied: 'status', blocked: 'PAUSED' });
    // Acceptance reads it through the real API app.
    const client = await createTestClient(asRole.api, ['notifications:write']);
    const refused = await testApiApp(asRole.api, { wabaId })(
      apiEvent({
        method: 'POST',
        path: '/v1/notifications',
        headers: { 'x-api-key': client.key },
        body: { to: uniqueRecipient(), template: { name: 'hello_world', language: 'en_US' } },
      }),
    );
    expect(JSON.parse(refused.body).error.code).toBe('template_not_approved');
    // The worker's load joins it (a query that runs, for an id that has no row).
    expect(await loadRows(asRole.worker, [crypto.randomUUID()], wabaId)).toEqual(new Map());
    expect(await refusal(asRole.worker, 'select status from message_templates')).toBe('allowed');
    for (const fn of ['api', 'worker'] as const) {
      expect(await refusal(asRole[fn], "update message_templates set status = 'APPROVED'")).toBe(
        DENIED,
      );
      expect(await refusal(asRole[fn], 'delete from template_registry_state')).toBe(DENIED);
    }
  });

  it('lets the worker role claim and send through the real worker rules, with the database gates', async () => {
    const worker = asRole.worker;
    const senderId = uniqueSenderId('roles');
    // The api role accepts (as in AWS); the worker role does everything after.
    const rig = await startDeliveryRig(asRole.api, {
      deps: {
        db: worker,
        senderId,
        gates: databaseGates({
          db: worker,
          senderId,
          rollout: injectedRollout(testRollout({ recipientSpacingSeconds: 60 })),
          failureThreshold: 5,
        }),
      },
    });
    try {
      const id = await rig.notify(uniqueRecipient());

      const pass = await rig.pass();

      expect(pass.batchItemFailures).toEqual([]);
      expect((await rig.row(id)).status).toBe('sent');
    } finally {
      await rig.stop();
    }
  });

  it('lets the scheduler role run the scheduler: its run record, the sweeps and its sender row', async () => {
    const scheduler = asRole.scheduler;
    const deps = testSchedulerDeps({
      db: scheduler,
      // Records what it would enqueue; this test only needs the run to get through its queries.
      queue: {
        sqs: recordingSqsClient().sqs,
        queueUrls: { high: 'https://sqs.local/high', bulk: 'https://sqs.local/bulk' },
      },
      whatsapp: {
        probe: async () => {
          throw new Error('the scheduler probed a closed circuit');
        },
      } as unknown as GraphClient,
      senderId: uniqueSenderId('roles'),
    });

    const report = await runSchedulerWhenFree(deps, schedulerOptions());

    expect(report.outcome).toBe('done');
  });

  it('keeps each role off the tables its function never touches', async () => {
    expect({
      // The api writes opt-outs and pacing only to erase a person (0013); inbound ids never.
      apiInboundSeen: await refusal(asRole.api, 'select * from inbound_seen'),
      apiSchedulerRuns: await refusal(asRole.api, 'delete from scheduler_runs'),
      schedulerAuditEdits: await refusal(asRole.scheduler, 'update audit_log set actor = actor'),
      workerKeys: await refusal(asRole.worker, 'select * from api_keys'),
      workerAuditRead: await refusal(asRole.worker, 'select * from audit_log'),
      schedulerKeys: await refusal(asRole.scheduler, 'select * from api_clients'),
      schedulerRollout: await refusal(asRole.scheduler, 'update rollout_settings set id = 1'),
      noneDeletesNotifications: await Promise.all(
        FUNCTIONS.map((fn) => refusal(asRole[fn], 'delete from notifications')),
      ),
    }).toEqual({
      apiInboundSeen: DENIED,
      apiSchedulerRuns: DENIED,
      schedulerAuditEdits: DENIED,
      workerKeys: DENIED,
      workerAuditRead: DENIED,
      schedulerKeys: DENIED,
      schedulerRollout: DENIED,
      noneDeletesNotifications: FUNCTIONS.map(() => DENIED),
    });
  });
});

describe('migration 0004_function_roles', () => {
  it('grants in a new database on a server that already has the roles, and takes them back on down()', async () => {
    const admin = new pg.Client({ connectionString: process.env.TEST_PG_ADMIN_URL });
    await admin.connect();
    const name = `roles_${crypto.randomUUID().replaceAll('-', '')}`;
    await admin.query(`CREATE DATABASE ${name}`);
    const url = new URL(process.env.DATABASE_URL!);
    url.pathname = `/${name}`;
    const fresh = connect(url.toString());
    const workerUrl = new URL(urls.worker);
    workerUrl.pathname = `/${name}`;
    const worker = connect(workerUrl.toString());
    try {
      await migrateToLatest(fresh);
      const before = await refusal(worker, 'select count(*) from notifications');

      await functionRoles.down(fresh);
      const after = await refusal(worker, 'select count(*) from notifications');

      expect({ before, after }).toEqual({ before: 'allowed', after: DENIED });
      // The roles stay: the suite's own database still grants them.
      const { rows } = await sql<{ n: number }>`
        select count(*)::int as n from pg_roles where rolname like 'notif\\_%'`.execute(fresh);
      expect(rows[0]?.n).toBe(FUNCTIONS.length);
    } finally {
      await worker.destroy();
      await fresh.destroy();
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.end();
    }
  });
});
