/**
 * A worker that dies between Meta accepting a send and recording it: the status webhook, through
 * the callback data the send carried, settles the row and nothing is sent twice; a send that never
 * reached the sandbox is sent again once the claim's grace has passed; a callback value from
 * another sender, another attempt or a forger changes nothing; and across a database outage the
 * status is answered 500 until it is stored. Real PostgreSQL, SQS emulator, sandbox over HTTP.
 */
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import type { APIGatewayProxyEvent } from 'aws-lambda';
import { sql } from 'kysely';
import { afterAll, describe, expect, it, onTestFinished } from 'vitest';
import { createDatabase } from '#core/db/connect.ts';
import type { DeliveryDeps } from '#core/delivery/deliver-batch.ts';
import { STALE_CLAIM_SECONDS } from '#core/delivery/pipeline/triage.ts';
import { encodeCallbackData } from '#core/whatsapp/callback-data.ts';
import type { OutboundMessage } from '#core/whatsapp/graph-client.ts';
import { buildStatusWebhook } from '#core/whatsapp/webhook-payload.ts';
import { uniqueRecipient } from '../../support/api.ts';
import { testDatabase } from '../../support/database.ts';
import {
  type DeliveryRig,
  pollUntil,
  postSignedWebhook,
  runWorkerPass,
  SANDBOX_PHONE_NUMBER_ID,
  startDeliveryRig,
  startWebhookServer,
  testWebhookApp,
  type WebhookApp,
} from '../../support/delivery.ts';

const db = testDatabase(6);
afterAll(() => db.destroy());
const app = testWebhookApp(db);

async function rig(options: Parameters<typeof startDeliveryRig>[1] = {}): Promise<DeliveryRig> {
  const started = await startDeliveryRig(db, options);
  onTestFinished(() => started.stop());
  return started;
}

const digits = (e164: string) => e164.slice(1);

/**
 * The rig's worker, dying at one moment of the send: after the sandbox answered (the send was
 * accepted, the record never happens) or before the request left (nothing reached the sandbox).
 * The pass throws, as the batch of a killed Lambda ends: nothing recorded, no message deleted.
 */
function dyingWorker(r: DeliveryRig, when: 'after_accept' | 'before_send'): DeliveryDeps {
  const whatsapp = r.deps.whatsapp;
  return {
    ...r.deps,
    whatsapp: {
      async sendMessage(message: OutboundMessage) {
        if (when === 'after_accept') {
          const result = await whatsapp.sendMessage(message);
          expect(result.ok).toBe(true);
        }
        throw new Error(`worker killed ${when.replace('_', ' ')}`);
      },
    },
  };
}

/** The queue message coming back after the dead invocation, as SQS redelivers it. */
async function redeliver(r: DeliveryRig, id: string): Promise<void> {
  await r.sqs.send(new SendMessageCommand({ QueueUrl: r.queue.url, MessageBody: id }));
}

async function history(id: string): Promise<string[]> {
  const events = await db
    .selectFrom('notification_events')
    .select(['from_status', 'to_status', 'attempt'])
    .where('notification_id', '=', id)
    .orderBy('id')
    .execute();
  return events.map((e) => `${e.from_status ?? '∅'}→${e.to_status} #${e.attempt}`);
}

describe('a worker that dies after the sandbox accepted the send', () => {
  it("is settled by the status webhook's callback data and its redelivery sends nothing", async () => {
    // prepare
    const server = await startWebhookServer(app);
    onTestFinished(() => server.stop());
    const r = await rig({ sandbox: { webhookUrl: server.url } });
    const to = uniqueRecipient();
    const id = await r.notify(to);

    // act
    await expect(runWorkerPass(dyingWorker(r, 'after_accept'), r.queue)).rejects.toThrow(
      'worker killed after accept',
    );
    const settled = await pollUntil(
      () => r.row(id),
      (row) => row.status === 'read',
    );
    await redeliver(r, id);
    const pass = await r.pass();

    // assess
    expect(settled).toMatchObject({ status: 'read', attempts: 1 });
    expect(settled.wamid).toMatch(/^wamid\./);
    expect(settled.sent_at).toBeInstanceOf(Date);
    expect([...pass.outcomes.values()]).toEqual(['skipped_duplicate']);
    expect(r.sandbox.stats().byRecipient[digits(to)]).toBe(1);
    expect(await history(id)).toEqual([
      '∅→accepted #0',
      'accepted→queued #0',
      'queued→sending #1',
      'sending→sent #1',
      'sent→delivered #1',
      'delivered→read #1',
    ]);
  });

  it('is settled as failed when the status Meta reports is a failure, and not sent again', async () => {
    // prepare: +573000000012 is accepted and then fails on the webhook (sandbox test numbers)
    const server = await startWebhookServer(app);
    onTestFinished(() => server.stop());
    const r = await rig({ sandbox: { webhookUrl: server.url } });
    const id = await r.notify('+573000000012');

    // act
    await expect(runWorkerPass(dyingWorker(r, 'after_accept'), r.queue)).rejects.toThrow();
    const settled = await pollUntil(
      () => r.row(id),
      (row) => row.status === 'failed',
    );
    await redeliver(r, id);
    const pass = await r.pass();

    // assess
    expect(settled).toMatchObject({ status: 'failed', attempts: 1, error_code: 131026 });
    expect(settled.wamid).toMatch(/^wamid\./);
    expect([...pass.outcomes.values()]).toEqual(['skipped_duplicate']);
  });
});

describe('a send whose answer was lost after the sandbox accepted it', () => {
  it.each(['queued', 'deferred'] as const)(
    'is settled by its status while %s for a retry, and the retry sends nothing',
    async (parkedAs) => {
      // prepare: the worker's client sees a timeout although the sandbox accepted the send
      const r = await rig();
      const to = uniqueRecipient();
      const id = await r.notify(to);
      const real = r.deps.whatsapp;
      let accepted: { wamid: string; callbackData: string } | undefined;
      const losing: DeliveryDeps = {
        ...r.deps,
        whatsapp: {
          async sendMessage(message: OutboundMessage) {
            const result = await real.sendMessage(message);
            if (result.ok) accepted = { wamid: result.wamid, callbackData: message.callbackData! };
            return {
              ok: false,
              errorClass: 'upstream',
              networkError: 'timeout',
              message: 'no answer within the timeout',
              latencyMs: 2_000,
            };
          },
        },
      };
      await runWorkerPass(losing, r.queue);
      expect(await r.row(id)).toMatchObject({ status: 'queued', attempts: 1, wamid: null });
      // Panic mode parks a row put back for a retry as `deferred`.
      if (parkedAs === 'deferred') {
        await sql`update notifications set status = 'deferred' where id = ${id}`.execute(db);
      }

      // act: the status Meta posts for the send it accepted, then the retry
      const answer = await postSignedWebhook(
        app,
        buildStatusWebhook({
          phoneNumberId: SANDBOX_PHONE_NUMBER_ID,
          wamid: accepted!.wamid,
          status: 'sent',
          recipientId: digits(to),
          callbackData: accepted!.callbackData,
        }),
      );
      // The retry's message is back at once (the rig's backoff has no jitter).
      const retry = await r.pass();

      // assess
      expect(JSON.parse(answer.body)).toMatchObject({ statuses: 1 });
      expect(await r.row(id)).toMatchObject({
        status: 'sent',
        attempts: 1,
        wamid: accepted!.wamid,
      });
      expect([...retry.outcomes.values()]).toEqual(['skipped_duplicate']);
      expect(r.sandbox.stats().byRecipient[digits(to)]).toBe(1);
    },
  );
});

describe('a send that never reached the sandbox', () => {
  it('is held while the claim is within its grace and sent again once the grace has passed', async () => {
    // prepare: a grace of two seconds, so the test waits on it rather than on two minutes
    const r = await rig({ deps: { claimGraceSeconds: 2 } });
    const to = uniqueRecipient();
    const id = await r.notify(to);
    await expect(runWorkerPass(dyingWorker(r, 'before_send'), r.queue)).rejects.toThrow(
      'worker killed before send',
    );
    // The dead worker's lifetime has passed (its Lambda timeout is long over); the grace has not.
    await sql`update notifications set updated_at = now() - make_interval(secs => ${STALE_CLAIM_SECONDS})
      where id = ${id}`.execute(db);
    await redeliver(r, id);

    // act
    const held = await r.pass();
    const sent = await pollUntil(
      () => r.pass({ waitMs: 500 }),
      (pass) => pass.outcomes.size > 0,
    );

    // assess
    expect([...held.outcomes.values()]).toEqual(['busy']);
    expect([...sent.outcomes.values()]).toEqual(['sent']);
    expect(await r.row(id)).toMatchObject({ status: 'sent', attempts: 2 });
    expect(r.sandbox.stats().byRecipient[digits(to)]).toBe(1);
  });
});

describe('callback data that is not the crashed send', () => {
  /** A row left `sending`, attempt 1, no wamid: the sandbox accepted it and posts no webhooks. */
  async function crashedSend() {
    const r = await rig();
    const id = await r.notify(uniqueRecipient());
    await expect(runWorkerPass(dyingWorker(r, 'after_accept'), r.queue)).rejects.toThrow();
    expect(await r.row(id)).toMatchObject({ status: 'sending', attempts: 1, wamid: null });
    return { r, id };
  }

  function statusFor(input: { callbackData: string; phoneNumberId?: string; wamid?: string }) {
    return buildStatusWebhook({
      phoneNumberId: input.phoneNumberId ?? SANDBOX_PHONE_NUMBER_ID,
      wamid: input.wamid ?? `wamid.forged-${crypto.randomUUID()}`,
      status: 'sent',
      recipientId: '573001112233',
      callbackData: input.callbackData,
    });
  }

  it('changes nothing when it comes from another sender, names another attempt or is forged', async () => {
    // prepare
    const { r, id } = await crashedSend();
    const other = await r.notify(uniqueRecipient());
    await r.pass();
    const settledOther = await r.row(other);
    const forgeries = [
      {
        callbackData: encodeCallbackData({ notificationId: id, attempt: 1 }),
        phoneNumberId: '999000111',
      },
      { callbackData: encodeCallbackData({ notificationId: id, attempt: 2 }) },
      { callbackData: `${encodeCallbackData({ notificationId: id, attempt: 1 })}:x` },
      { callbackData: `wn2:${id}:1` },
      { callbackData: id },
      { callbackData: encodeCallbackData({ notificationId: crypto.randomUUID(), attempt: 1 }) },
      // A settled row keeps the wamid it has.
      { callbackData: encodeCallbackData({ notificationId: other, attempt: 1 }) },
    ];

    // act
    const answers = [];
    for (const forged of forgeries) answers.push(await postSignedWebhook(app, statusFor(forged)));

    // assess
    expect(answers.map((a) => a.statusCode)).toEqual(forgeries.map(() => 200));
    expect(answers.map((a) => JSON.parse(a.body).statuses)).toEqual(forgeries.map(() => 0));
    expect(await r.row(id)).toMatchObject({ status: 'sending', attempts: 1, wamid: null });
    expect(await r.row(other)).toMatchObject({
      status: settledOther.status,
      wamid: settledOther.wamid,
    });
  });

  it('settles the row when it is the exact send (the control for the case above)', async () => {
    // prepare
    const { r, id } = await crashedSend();

    // act
    const answer = await postSignedWebhook(
      app,
      statusFor({
        callbackData: encodeCallbackData({ notificationId: id, attempt: 1 }),
        wamid: 'wamid.genuine-'.concat(id),
      }),
    );

    // assess
    expect(JSON.parse(answer.body)).toMatchObject({ statuses: 1 });
    expect(await r.row(id)).toMatchObject({ status: 'sent', wamid: `wamid.genuine-${id}` });
  });
});

describe('a database outage between the send and the record', () => {
  it("answers the crashed send's status 500 until it is stored, then settles the row from the redelivery", async () => {
    // prepare: the webhook's database is unreachable until the first 500 has gone out
    const unreachable = createDatabase({
      DATABASE_URL: 'postgres://nobody:nothing@127.0.0.1:1/none',
      DB_POOL_MAX: 1,
    } as never);
    onTestFinished(() => unreachable.destroy());
    const down = testWebhookApp(unreachable);
    const answers: number[] = [];
    const switching: WebhookApp = async (event: APIGatewayProxyEvent) => {
      const answer = await (answers.includes(500) ? app : down)(event);
      answers.push(answer.statusCode);
      return answer;
    };
    const server = await startWebhookServer(switching);
    onTestFinished(() => server.stop());
    const r = await rig({
      sandbox: { webhookUrl: server.url, webhookRetryDelaysMs: [50, 100, 200, 400, 800] },
    });
    const to = uniqueRecipient();
    const id = await r.notify(to);

    // act
    await expect(runWorkerPass(dyingWorker(r, 'after_accept'), r.queue)).rejects.toThrow();
    const settled = await pollUntil(
      () => r.row(id),
      (row) => row.status === 'read',
    );

    // assess
    expect(answers[0]).toBe(500);
    expect(settled).toMatchObject({ status: 'read', attempts: 1 });
    expect(settled.wamid).toMatch(/^wamid\./);
    expect(r.sandbox.stats().byRecipient[digits(to)]).toBe(1);
    expect(r.sandbox.stats().webhooksFailed).toBe(0);
  });
});
