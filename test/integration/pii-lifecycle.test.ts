/**
 * The life of personal data (issue 16, finding 9), through the real API and scheduler code running
 * as their own database roles: erasing one person leaves their number nowhere, keeps them opted
 * out under a hash the worker's check still matches, answers the counts and audits without the
 * number; the retention redacts old rows (statuses, timestamps and error class stay) and prunes
 * the audit log.
 */
import { randomUUID } from 'node:crypto';
import { type Kysely, sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDatabase } from '#core/db/connect.ts';
import type { Database } from '#core/db/schema.ts';
import { loadRows } from '#core/delivery/pipeline/load.ts';
import { addOptOut, applyConsentChange } from '#core/notifications/opt-outs.ts';
import { applyRetention } from '#core/notifications/pii-retention.ts';
import { functionDatabaseUrls } from '../../bin/local/database-roles.ts';
import { apiEvent, createTestClient, testApiApp } from '../support/api.ts';
import { testDatabase } from '../support/database.ts';
import { digits, uniqueMobile } from '../support/phones.ts';

const owner = testDatabase(2);
let asApi: Kysely<Database>;
let asScheduler: Kysely<Database>;

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
  const urls = await functionDatabaseUrls(process.env.DATABASE_URL!);
  asApi = connect(urls.api);
  asScheduler = connect(urls.scheduler);
});

afterAll(async () => {
  await asApi?.destroy();
  await asScheduler?.destroy();
  await owner.destroy();
});

/** Every table's rows, as text, that contain these digits: where the number still lives. */
async function tablesHolding(number: string): Promise<string[]> {
  const { rows } = await sql<{ table_name: string }>`
    select table_name from information_schema.tables
    where table_schema = 'public' and table_type = 'BASE TABLE'`.execute(owner);
  const found: string[] = [];
  for (const { table_name } of rows) {
    const hit = await sql<{ n: number }>`
      select count(*)::int as n from ${sql.table(table_name)} t
      where position(${digits(number)} in t::text) > 0`.execute(owner);
    if ((hit.rows[0]?.n ?? 0) > 0) found.push(table_name);
  }
  return found;
}

async function post(app: ReturnType<typeof testApiApp>, key: string, path: string, body: unknown) {
  const response = await app(
    apiEvent({ method: 'POST', path, headers: { 'X-API-Key': key }, body }),
  );
  return { status: response.statusCode, body: JSON.parse(response.body), raw: response.body };
}

describe('erasing one person', () => {
  it('leaves the number in no table, keeps them opted out, answers the counts, audits without it', async () => {
    // prepare: a person with history everywhere a number can be, and someone else
    const person = uniqueMobile('+57318');
    const other = uniqueMobile('+57318');
    const bsuid = `CO.${randomUUID().replaceAll('-', '')}`;
    const admin = await createTestClient(owner, ['admin']);
    const app = testApiApp(asApi);
    const sent = await post(app, admin.key, '/v1/notifications', {
      to: person,
      text: { body: `hola ${person}` },
      metadata: { order: 'A-1', phone: person },
    });
    const unsent = await post(app, admin.key, '/v1/notifications', {
      to: person,
      text: { body: 'later' },
      sendAt: new Date(Date.now() + 86_400_000).toISOString(),
    });
    const kept = await post(app, admin.key, '/v1/notifications', {
      to: other,
      text: { body: 'not erased' },
    });
    expect([sent.status, unsent.status, kept.status]).toEqual([202, 202, 202]);
    const wamid = `wamid.${randomUUID()}`;
    await owner
      .updateTable('notifications')
      .set({ status: 'delivered', wamid, error_message: `about ${person}` })
      .where('id', '=', sent.body.id)
      .execute();
    await owner
      .insertInto('pending_statuses')
      .values({
        wamid,
        status: 'read',
        occurred_at: new Date(),
        error_code: null,
        error_title: null,
      })
      .execute();
    await owner.insertInto('recipient_ids').values({ phone: person, bsuid }).execute();
    await addOptOut(owner, person, 'keyword');
    await addOptOut(owner, bsuid, 'meta_131050');
    await owner
      .insertInto('recipient_pacing')
      .values({ recipient: person, last_sent_at: new Date(), notification_id: null })
      .execute();
    await owner
      .insertInto('webhook_rejects')
      .values({
        field: 'messages',
        kind: 'status',
        reason: 'test',
        raw: JSON.stringify({ recipient_id: digits(person) }),
      })
      .execute();
    expect(await tablesHolding(person)).not.toEqual([]);

    // act
    const erased = await post(app, admin.key, '/v1/admin/recipients/erase', { to: person });

    // assess: the answer
    expect(erased.status, erased.raw).toBe(200);
    expect(erased.raw).not.toContain(digits(person));
    expect(erased.body.erased).toMatchObject({
      notifications: 2,
      unsentNotifications: 1,
      pendingStatuses: 1,
      optOuts: 2,
      recipientIds: 1,
      recipientPacing: 1,
      webhookRejects: 1,
    });
    // the outbox's snapshots of both rows (accepted, scheduled, delivered, skipped at least)
    expect(erased.body.erased.callbackEvents).toBeGreaterThanOrEqual(4);
    expect(erased.body.total).toBeGreaterThanOrEqual(8);
    // the number is nowhere, the other person untouched
    expect(await tablesHolding(person)).toEqual([]);
    expect(await tablesHolding(other)).toContain('notifications');
    const rows = await owner
      .selectFrom('notifications')
      .select([
        'id',
        'recipient',
        'status',
        'status_reason',
        'metadata',
        'redacted_at',
        'delivered_at',
      ])
      .where('id', 'in', [sent.body.id, unsent.body.id])
      .orderBy('created_at')
      .execute();
    expect(rows).toEqual([
      expect.objectContaining({ recipient: 'erased', status: 'delivered', metadata: null }),
      expect.objectContaining({
        recipient: 'erased',
        status: 'skipped',
        status_reason: 'recipient_erased',
      }),
    ]);
    expect(rows.every((r) => r.redacted_at instanceof Date)).toBe(true);
    // audited, without the number
    const audit = await owner
      .selectFrom('audit_log')
      .selectAll()
      .where('action', '=', 'recipients.erase')
      .where('actor', '=', `key:${admin.prefix}`)
      .execute();
    expect(audit).toHaveLength(1);
    expect(JSON.stringify(audit)).not.toContain(digits(person));

    // and still opted out: a new notification to the number is caught by the worker's check
    const again = await post(app, admin.key, '/v1/notifications', {
      to: person,
      text: { body: 'hi' },
    });
    const loaded = await loadRows(owner, [again.body.id]);
    expect(loaded.get(again.body.id)).toMatchObject({ opted_out: true, marketing_opted_out: true });
    // until the person opts in again (START), which lifts the kept opt-out too
    await applyConsentChange(owner, {
      recipients: [person],
      optedOut: false,
      source: 'keyword',
      at: new Date(Date.now() + 1_000),
    });
    const after = await loadRows(owner, [again.body.id]);
    expect(after.get(again.body.id)).toMatchObject({ opted_out: false });
  });

  it('refuses a number that is not E.164 with a 400 and erases nothing', async () => {
    const admin = await createTestClient(owner, ['admin']);
    const answer = await post(testApiApp(asApi), admin.key, '/v1/admin/recipients/erase', {
      to: '3001234567',
    });
    expect(answer.status).toBe(400);
    expect(answer.body.error.field).toBe('to');
    expect(answer.raw).not.toContain('3001234567');
  });

  it('is for admin keys only', async () => {
    const writer = await createTestClient(owner, ['notifications:write']);
    const answer = await post(testApiApp(asApi), writer.key, '/v1/admin/recipients/erase', {
      to: uniqueMobile('+57318'),
    });
    expect(answer.status).toBe(403);
  });
});

describe('the retention', () => {
  it('redacts rows past it, keeping statuses, timestamps and error class; leaves newer and unsent rows', async () => {
    // prepare
    const client = await createTestClient(owner);
    const app = testApiApp(owner);
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const message =
        i === 0
          ? {
              template: {
                name: 'appointment_reminder',
                language: 'es',
                components: [{ type: 'body', parameters: [{ type: 'text', text: 'Ana' }] }],
              },
            }
          : { text: { body: 'old news' } };
      const answer = await post(app, client.key, '/v1/notifications', {
        to: uniqueMobile('+57318'),
        ...message,
        metadata: { n: i },
      });
      ids.push(answer.body.id);
    }
    const [old, recent, oldUnsent] = ids as [string, string, string];
    const now = new Date();
    // created_at and at are written by the database only; a test back-dates them in SQL.
    const daysAgo = (d: number) => sql<never>`${new Date(now.getTime() - d * 86_400_000)}`;
    await owner
      .updateTable('notifications')
      .set({ created_at: daysAgo(100), status: 'failed', error_class: 'invalid_recipient' })
      .where('id', '=', old)
      .execute();
    await owner
      .updateTable('notifications')
      .set({ created_at: daysAgo(10) })
      .where('id', '=', recent)
      .execute();
    await owner
      .updateTable('notifications')
      .set({ created_at: daysAgo(100), status: 'deferred' })
      .where('id', '=', oldUnsent)
      .execute();
    const auditMark = `retention-${randomUUID()}`;
    await owner
      .insertInto('audit_log')
      .values({ actor: 'test', action: 'test.retention', outcome: 'ok', request_id: auditMark })
      .execute();
    await owner
      .updateTable('audit_log')
      .set({ at: daysAgo(400) })
      .where('request_id', '=', auditMark)
      .execute();

    // act: as the scheduler's role
    const report = await applyRetention(asScheduler, now, {
      piiRetentionDays: 90,
      auditRetentionDays: 365,
      batchLimit: 5_000,
    });

    // assess
    const rows = await owner
      .selectFrom('notifications')
      .select([
        'id',
        'recipient',
        'message',
        'metadata',
        'status',
        'error_class',
        'created_at',
        'redacted_at',
      ])
      .where('id', 'in', ids)
      .execute();
    const byId = new Map(rows.map((r) => [r.id, r]));
    expect(byId.get(old)).toMatchObject({
      recipient: 'redacted',
      // Which template was sent stays; its parameters (Ana) go.
      message: { name: 'appointment_reminder', language: 'es', redacted: true },
      metadata: null,
      status: 'failed',
      error_class: 'invalid_recipient',
      redacted_at: now,
    });
    expect(byId.get(recent)).toMatchObject({ metadata: { n: 1 }, redacted_at: null });
    // And the API still answers for a redacted row, with no number.
    const view = await app(
      apiEvent({
        method: 'GET',
        path: `/v1/notifications/${old}`,
        headers: { 'X-API-Key': client.key },
      }),
    );
    expect(view.statusCode, view.body).toBe(200);
    expect(JSON.parse(view.body)).toMatchObject({
      status: 'failed',
      to: '***',
      template: 'appointment_reminder',
      metadata: null,
    });
    expect(view.body).not.toContain('Ana');
    // The outbox's copies of the old row (accepted, failed) went with it; the recent row's stay.
    const events = await owner
      .selectFrom('callback_events')
      .select(['notification_id', sql<string>`snapshot::text`.as('snapshot')])
      .where('notification_id', 'in', [old, recent])
      .execute();
    const oldEvents = events.filter((e) => e.notification_id === old);
    expect(oldEvents.length).toBeGreaterThanOrEqual(2);
    expect(report.eventsRedacted).toBeGreaterThanOrEqual(oldEvents.length);
    for (const e of oldEvents) {
      expect(JSON.parse(e.snapshot)).toMatchObject({ recipient: 'redacted', metadata: null });
      expect(e.snapshot).not.toContain('Ana');
    }
    expect(
      events.filter((e) => e.notification_id === recent).map((e) => JSON.parse(e.snapshot)),
    ).toEqual([expect.objectContaining({ metadata: { n: 1 } })]);
    expect(byId.get(recent)!.recipient).toMatch(/^\+57318/);
    expect(byId.get(oldUnsent)).toMatchObject({ status: 'deferred', redacted_at: null });
    expect(report.notificationsRedacted).toBeGreaterThanOrEqual(1);
    const pruned = await owner
      .selectFrom('audit_log')
      .select('id')
      .where('request_id', '=', auditMark)
      .execute();
    expect(pruned).toEqual([]);
    expect(report.auditPruned).toBeGreaterThanOrEqual(1);
  });
});
