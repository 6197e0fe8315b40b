/**
 * The template registry on the real parts: filled by the scheduler from the sandbox's paged list,
 * updated at once by the template webhooks the sandbox posts when a test changes a template, read
 * by the worker before each send (a template paused after acceptance is never sent), and deciding
 * whether marketing opt-outs apply. Each test has its own WABA id, sandbox and queue.
 */
import { afterAll, describe, expect, it, onTestFinished } from 'vitest';
import { runScheduler } from '#core/delivery/scheduler.ts';
import { applyConsentChange } from '#core/notifications/opt-outs.ts';
import { registryState } from '#core/notifications/template-registry.ts';
import { buildEventWebhook } from '#core/whatsapp/webhook-payload.ts';
import { testSqsClient, uniqueRecipient } from '../../support/api.ts';
import { testDatabase } from '../../support/database.ts';
import {
  createTestQueues,
  deleteTestQueues,
  postSignedWebhook,
  SANDBOX_PHONE_NUMBER_ID,
  startDeliveryRig,
  startTestSandbox,
  startWebhookServer,
  testWebhookApp,
} from '../../support/delivery.ts';
import {
  runSchedulerWhenFree,
  schedulerOptions,
  testSchedulerDeps,
  uniqueSenderId,
} from '../../support/delivery-control.ts';
import {
  changeTemplate,
  fillRegistry,
  templateGraphClient,
  uniqueWabaId,
} from '../../support/templates.ts';

const db = testDatabase();
afterAll(() => db.destroy());
const webhookApp = testWebhookApp(db);

async function registryRow(wabaId: string, name: string, language = 'en_US') {
  return db
    .selectFrom('message_templates')
    .selectAll()
    .where('waba_id', '=', wabaId)
    .where('name', '=', name)
    .where('language', '=', language)
    .executeTakeFirst();
}

/** A worker rig reading the registry of a WABA of its own, with the sandbox's webhooks reaching the webhook app. */
async function templateRig() {
  const wabaId = uniqueWabaId();
  const r = await startDeliveryRig(db, { deps: { wabaId } });
  onTestFinished(() => r.stop());
  const server = await startWebhookServer(webhookApp);
  onTestFinished(() => server.stop());
  r.sandbox.setWebhookUrl(server.url);
  await fillRegistry(db, r.sandbox, wabaId);
  return { r, wabaId };
}

describe('the worker checks the template again before the send', () => {
  it('fails a notification whose template was paused after acceptance, with class template and no Graph call', async () => {
    // prepare: accepted while hello_world was APPROVED
    const { r, wabaId } = await templateRig();
    const id = await r.notify(uniqueRecipient());
    const changed = await changeTemplate(r.sandbox, {
      name: 'hello_world',
      language: 'en_US',
      status: 'PAUSED',
      wabaId,
    });
    expect(changed).toMatchObject({ status: 200, body: { delivered: true } });

    // act
    const pass = await r.pass();

    // assess
    expect(pass.outcomes.get(pass.messages[0]!.MessageId!)).toBe('failed');
    expect(pass.batchItemFailures).toEqual([]);
    expect(await r.row(id)).toMatchObject({
      status: 'failed',
      status_reason: 'template_paused',
      error_class: 'template',
      error_code: null,
    });
    expect((await r.row(id)).error_message).toContain('PAUSED');
    expect(r.sandbox.stats().sendsReceived).toBe(0);
  });

  it('sends again once the template is APPROVED again, and records the category it was sent under', async () => {
    // prepare
    const { r, wabaId } = await templateRig();
    await changeTemplate(r.sandbox, {
      name: 'hello_world',
      language: 'en_US',
      status: 'DISABLED',
      wabaId,
    });
    const blocked = await r.notify(uniqueRecipient());
    await r.pass();
    await changeTemplate(r.sandbox, {
      name: 'hello_world',
      language: 'en_US',
      status: 'APPROVED',
      wabaId,
    });
    const id = await r.notify(uniqueRecipient());

    // act
    await r.pass();

    // assess
    expect(await r.row(blocked)).toMatchObject({
      status: 'failed',
      status_reason: 'template_disabled',
    });
    expect(await r.row(id)).toMatchObject({ status: 'sent', template_category: 'UTILITY' });
    expect(r.sandbox.stats().accepted).toBe(1);
  });

  it('holds a template recategorised as MARKETING from someone who stopped marketing', async () => {
    // prepare: hello_world becomes MARKETING through template_category_update
    const { r, wabaId } = await templateRig();
    const to = uniqueRecipient();
    await applyConsentChange(db, {
      recipients: [to],
      optedOut: true,
      source: 'user_preferences',
      at: new Date(),
    });
    const id = await r.notify(to);
    await changeTemplate(r.sandbox, {
      name: 'hello_world',
      language: 'en_US',
      category: 'MARKETING',
      wabaId,
    });

    // act
    await r.pass();

    // assess
    expect((await registryRow(wabaId, 'hello_world'))?.category).toBe('MARKETING');
    expect(await r.row(id)).toMatchObject({
      status: 'skipped',
      status_reason: 'opted_out_marketing',
    });
    expect(r.sandbox.stats().sendsReceived).toBe(0);
  });
});

describe('template webhooks update the registry at once', () => {
  it('applies status, quality and category events, written as Meta writes them (en-US)', async () => {
    // prepare
    const wabaId = uniqueWabaId();
    const sandbox = await startTestSandbox();
    onTestFinished(() => sandbox.stop());
    await fillRegistry(db, sandbox, wabaId);
    const common = {
      message_template_name: 'appointment_reminder',
      message_template_language: 'en-US',
    };

    // act
    for (const [field, value] of [
      [
        'message_template_status_update',
        { ...common, event: 'REJECTED', reason: 'INCORRECT_CATEGORY' },
      ],
      [
        'message_template_quality_update',
        { ...common, previous_quality_score: 'GREEN', new_quality_score: 'RED' },
      ],
      [
        'template_category_update',
        { ...common, previous_category: 'UTILITY', new_category: 'MARKETING' },
      ],
    ] as const) {
      const response = await postSignedWebhook(
        webhookApp,
        buildEventWebhook({ field, value, phoneNumberId: SANDBOX_PHONE_NUMBER_ID, wabaId }),
      );
      expect(response.statusCode).toBe(200);
    }

    // assess
    expect(await registryRow(wabaId, 'appointment_reminder')).toMatchObject({
      status: 'REJECTED',
      rejected_reason: 'INCORRECT_CATEGORY',
      quality: 'RED',
      category: 'MARKETING',
      body_params: 1,
    });
    // The other language of the name is untouched.
    expect((await registryRow(wabaId, 'appointment_reminder', 'es'))?.status).toBe('APPROVED');
  });

  it('ignores an event older than the row’s last change (Meta redelivers out of order)', async () => {
    // prepare: PAUSED now, then a redelivered APPROVED from an hour ago
    const wabaId = uniqueWabaId();
    const value = { message_template_name: 'weekly_offers', message_template_language: 'en_US' };
    const event = (status: string, secondsAgo: number) => {
      const body = buildEventWebhook({
        field: 'message_template_status_update',
        value: { ...value, event: status, message_template_category: 'MARKETING' },
        phoneNumberId: SANDBOX_PHONE_NUMBER_ID,
        wabaId,
      });
      (body.entry[0] as { time: number }).time = Math.floor(Date.now() / 1000) - secondsAgo;
      return body;
    };
    await postSignedWebhook(webhookApp, event('PAUSED', 10));

    // act
    await postSignedWebhook(webhookApp, event('APPROVED', 3600));

    // assess: a status for a template the list has not shown yet is kept, components unknown
    expect(await registryRow(wabaId, 'weekly_offers')).toMatchObject({
      status: 'PAUSED',
      category: 'MARKETING',
      parameters: null,
      source: 'message_template_status_update',
    });
  });

  it('asks the scheduler for a re-read on REINSTATED rather than guess the status', async () => {
    // prepare
    const wabaId = uniqueWabaId();
    const sandbox = await startTestSandbox();
    onTestFinished(() => sandbox.stop());
    await fillRegistry(db, sandbox, wabaId);

    // act
    await postSignedWebhook(
      webhookApp,
      buildEventWebhook({
        field: 'message_template_status_update',
        value: {
          event: 'REINSTATED',
          message_template_name: 'order_shipped',
          message_template_language: 'en_US',
        },
        phoneNumberId: SANDBOX_PHONE_NUMBER_ID,
        wabaId,
      }),
    );

    // assess
    const state = await registryState(db, wabaId);
    expect(state.refreshRequestedAt).not.toBeNull();
    expect((await registryRow(wabaId, 'order_shipped'))?.status).toBe('PAUSED');
  });
});

describe('the scheduler refreshes the registry from the Graph API', () => {
  async function schedulerFor(
    wabaId: string,
    sandbox: Awaited<ReturnType<typeof startTestSandbox>>,
  ) {
    const sqs = testSqsClient();
    const queue = await createTestQueues(sqs, 'tpl');
    const graph = templateGraphClient(sandbox, wabaId);
    onTestFinished(async () => {
      await graph.close();
      await deleteTestQueues(sqs, queue);
      sqs.destroy();
    });
    return testSchedulerDeps({
      db,
      queue: { sqs, queueUrls: { high: queue.url, bulk: queue.url } },
      whatsapp: graph,
      senderId: uniqueSenderId('tpl'),
      wabaId,
    });
  }

  it('fills the registry on its first run, then waits the interval, and marks unlisted templates DELETED', async () => {
    // prepare: a row the list does not have (deleted in WhatsApp Manager since)
    const wabaId = uniqueWabaId();
    const sandbox = await startTestSandbox();
    onTestFinished(() => sandbox.stop());
    await db
      .insertInto('message_templates')
      .values({
        waba_id: wabaId,
        name: 'old_promo',
        language: 'en_US',
        status: 'APPROVED',
        source: 'refresh',
        last_seen_at: new Date(Date.now() - 86_400_000),
        updated_at: new Date(Date.now() - 86_400_000),
      })
      .execute();
    const deps = await schedulerFor(wabaId, sandbox);
    const options = schedulerOptions({ templateRefreshIntervalMs: 600_000 });

    // act
    const first = await runSchedulerWhenFree(deps, options);
    const second = await runSchedulerWhenFree(deps, options);

    // assess
    expect(first.templates).toMatchObject({
      outcome: 'refreshed',
      ok: true,
      templates: 10,
      deleted: 1,
    });
    expect(second.templates).toEqual({ outcome: 'not_due' });
    expect(await registryRow(wabaId, 'old_promo')).toMatchObject({ status: 'DELETED' });
    expect(await registryRow(wabaId, 'delivery_update')).toMatchObject({
      status: 'APPROVED',
      category: 'UTILITY',
      quality: 'GREEN',
      header_params: 1,
      body_params: 2,
      button_params: 1,
    });
    expect(await registryRow(wabaId, 'spring_sale')).toMatchObject({
      status: 'REJECTED',
      rejected_reason: 'PROMOTIONAL',
    });
    expect((await registryState(db, wabaId)).filled).toBe(true);
  });

  it('keeps the registry unfilled and the error when the Graph API refuses the list', async () => {
    // prepare: the sandbox answers every read with a 500
    const wabaId = uniqueWabaId();
    const sandbox = await startTestSandbox({ faultRate: 1, faultKinds: ['5xx'] });
    onTestFinished(() => sandbox.stop());
    const deps = await schedulerFor(wabaId, sandbox);

    // act
    const report = await runSchedulerWhenFree(deps, schedulerOptions());

    // assess
    expect(report.templates).toMatchObject({ outcome: 'failed', ok: false });
    const state = await registryState(db, wabaId);
    expect(state).toMatchObject({ filled: false, templates: 0 });
    expect(state.lastError).toContain('upstream');
  });

  it('is off without a WABA id', async () => {
    const sandbox = await startTestSandbox();
    onTestFinished(() => sandbox.stop());
    const deps = await schedulerFor(uniqueWabaId(), sandbox);

    const report = await runScheduler({ ...deps, wabaId: undefined }, schedulerOptions());

    expect(report.outcome === 'skipped' || report.templates.outcome === 'off').toBe(true);
  });
});

describe('the sandbox plays Meta for templates', () => {
  it('serves message_templates in pages, following paging.next to the end', async () => {
    // prepare
    const sandbox = await startTestSandbox();
    onTestFinished(() => sandbox.stop());
    const names: string[] = [];
    let url: string | undefined =
      `${sandbox.url}/v25.0/${uniqueWabaId()}/message_templates?fields=name,language,status&limit=3`;
    let pages = 0;

    // act
    while (url) {
      const page = (await (
        await fetch(url, { headers: { authorization: 'Bearer sandbox-token-for-delivery-tests' } })
      ).json()) as { data: { name: string; language: string }[]; paging: { next?: string } };
      names.push(...page.data.map((t) => `${t.name}|${t.language}`));
      url = page.paging.next;
      pages++;
    }

    // assess
    expect(pages).toBe(4);
    expect(names).toHaveLength(10);
    expect(new Set(names).size).toBe(10);
    expect(names).toEqual(
      expect.arrayContaining([
        'hello_world|en_US',
        'appointment_reminder|es',
        'weekly_offers|en_US',
      ]),
    );
  });

  it('refuses template sends with Meta’s codes', async () => {
    // prepare
    const sandbox = await startTestSandbox();
    onTestFinished(() => sandbox.stop());
    const graph = templateGraphClient(sandbox, uniqueWabaId());
    onTestFinished(() => graph.close());
    const send = (name: string, language: string, components?: unknown[]) =>
      graph.sendMessage({
        kind: 'template',
        to: '+573160009999',
        template: { name, language, ...(components ? { components } : {}) },
      });

    // act
    const results = await Promise.all([
      send('helo_world', 'en_US'),
      send('appointment_reminder', 'es'),
      send('order_shipped', 'en_US', [
        { type: 'body', parameters: [{ type: 'text', text: 'A-1' }] },
      ]),
      send('legacy_notice', 'en_US'),
      send('spring_sale', 'en_US'),
      send('appointment_reminder', 'es', [
        { type: 'body', parameters: [{ type: 'text', text: 'Ana' }] },
      ]),
    ]);

    // assess
    expect(results.map((r) => (r.ok ? 'ok' : r.code))).toEqual([
      132001,
      132000,
      132015,
      132016,
      132001,
      'ok',
    ]);
    expect(results.slice(0, 5).every((r) => !r.ok && r.errorClass === 'template')).toBe(true);
  });
});
