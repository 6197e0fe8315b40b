/**
 * The worker end to end on the real local parts: notifications made through the API, their ids
 * received from an SQS emulator queue of this test's own, sent to the WhatsApp sandbox, and judged
 * by the stored row, the queue and the sandbox's own count of what it received.
 */
import { ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import type { SQSBatchResponse } from 'aws-lambda';
import { afterAll, describe, expect, it, onTestFinished } from 'vitest';
import { createDatabase } from '#core/db/connect.ts';
import { deliverBatch } from '#core/delivery/deliver-batch.ts';
import type { ErrorClass } from '#core/model/error-class.ts';
import { addOptOut, removeOptOut } from '#core/notifications/opt-outs.ts';
import { MAX_RECEIVE_COUNT } from '#core/notifications/queue-settings.ts';
import { applyTransitions } from '#core/notifications/transitions.ts';
import { Metric } from '#core/platform/metric-names.ts';
import { startSqsEventSource } from '../../../bin/local/sqs-event-source.ts';
import { toDeliveryRecord } from '../../../lambdas/worker/records.ts';
import { uniqueRecipient } from '../../support/api.ts';
import { testDatabase } from '../../support/database.ts';
import {
  countQueueMessages,
  countVisibleMessages,
  type DeliveryRig,
  deliveryDeps,
  messageIdFor,
  pollUntil,
  startDeliveryRig,
  startWebhookServer,
  testWebhookApp,
  visibleAndDelayed,
} from '../../support/delivery.ts';
import { recordingMetrics } from '../../support/delivery-control.ts';

const db = testDatabase(6);
afterAll(() => db.destroy());

async function rig(options: Parameters<typeof startDeliveryRig>[1] = {}): Promise<DeliveryRig> {
  const started = await startDeliveryRig(db, options);
  onTestFinished(() => started.stop());
  return started;
}

/** Sandbox stats are keyed by the recipient's digits. */
const digits = (e164: string) => e164.slice(1);

describe('worker: each error class from the sandbox to the row and the queue', () => {
  const permanent: { to: string; errorClass: ErrorClass; code: number }[] = [
    { to: '+573000000001', errorClass: 'invalid_recipient', code: 131026 },
    { to: '+573000000002', errorClass: 'outside_window', code: 131047 },
    { to: '+573000000003', errorClass: 'template', code: 132001 },
    { to: '+573000000013', errorClass: 'invalid_request', code: 100 },
  ];

  it.each(permanent)(
    'fails $errorClass ($code) for good and drops the message',
    async ({ to, errorClass, code }) => {
      // prepare
      const r = await rig();
      const id = await r.notify(to);

      // act
      const pass = await r.pass();

      // assess
      expect(pass.batchItemFailures).toEqual([]);
      expect(pass.outcomes.get(messageIdFor(pass, id))).toBe('failed');
      const row = await r.row(id);
      expect(row).toMatchObject({
        status: 'failed',
        error_class: errorClass,
        error_code: code,
        attempts: 1,
        wamid: null,
      });
      expect(row.failed_at).toBeInstanceOf(Date);
      expect(await countQueueMessages(r.sqs, r.queue.url)).toBe(0);
      expect(r.sandbox.stats().byRecipient[digits(to)]).toBe(1);
    },
  );

  it('fails opted_out (131050) and adds the recipient to the opt-outs', async () => {
    // prepare
    const to = '+573000000007';
    await removeOptOut(db, to);
    onTestFinished(async () => {
      // The test numbers are shared with other files on this database: leave no opt-out behind.
      await removeOptOut(db, to);
    });
    const r = await rig();
    const id = await r.notify(to);

    // act
    const pass = await r.pass();

    // assess
    expect(pass.batchItemFailures).toEqual([]);
    expect(await r.row(id)).toMatchObject({
      status: 'failed',
      error_class: 'opted_out',
      error_code: 131050,
    });
    const optOut = await db
      .selectFrom('opt_outs')
      .selectAll()
      .where('recipient', '=', to)
      .executeTakeFirst();
    expect(optOut?.source).toBe('meta_131050');
    expect(await countQueueMessages(r.sqs, r.queue.url)).toBe(0);
  });

  const retryable: {
    to: string;
    errorClass: ErrorClass;
    code: number | null;
    message: RegExp;
    /** With zero jitter the retry is immediate, except where Meta's pair window imposes a wait. */
    minDelaySeconds: number;
  }[] = [
    {
      to: '+573000000004',
      errorClass: 'rate_limited',
      code: 130429,
      message: /130429/,
      minDelaySeconds: 0,
    },
    {
      to: '+573000000010',
      errorClass: 'pair_rate_limited',
      code: 131056,
      message: /131056/,
      minDelaySeconds: 6,
    },
    {
      to: '+573000000005',
      errorClass: 'upstream',
      code: null,
      message: /HTTP 500/,
      minDelaySeconds: 0,
    },
    {
      to: '+573000000011',
      errorClass: 'upstream',
      code: 131000,
      message: /131000/,
      minDelaySeconds: 0,
    },
    {
      to: '+573000000006',
      errorClass: 'upstream',
      code: null,
      message: /no answer within/,
      minDelaySeconds: 0,
    },
  ];

  it.each(retryable)(
    'puts $errorClass ($to) back to queued with its error and keeps the message for a retry',
    async ({ to, errorClass, code, message, minDelaySeconds }) => {
      // prepare
      const r = await rig({ clientTimeoutMs: 1_000 });
      const id = await r.notify(to);
      const before = Date.now();

      // act
      const pass = await r.pass();

      // assess
      const messageId = messageIdFor(pass, id);
      expect(pass.batchItemFailures).toEqual([{ itemIdentifier: messageId }]);
      expect(pass.outcomes.get(messageId)).toBe('retry');
      const row = await r.row(id);
      expect(row).toMatchObject({
        status: 'queued',
        error_class: errorClass,
        error_code: code,
        attempts: 1,
        wamid: null,
      });
      expect(row.error_message).toMatch(message);
      expect(row.next_attempt_at!.getTime()).toBeGreaterThanOrEqual(
        before + minDelaySeconds * 1000 - 1000,
      );
      expect(await countQueueMessages(r.sqs, r.queue.url)).toBe(1);
      // The backoff is applied to the message itself: visible at once, or hidden for the pair window.
      expect(await countVisibleMessages(r.sqs, r.queue.url)).toBe(minDelaySeconds === 0 ? 1 : 0);
    },
  );

  it.each([
    { to: '+573000000008', errorClass: 'auth', code: 190 },
    { to: '+573000000009', errorClass: 'account_blocked', code: 131048 },
  ] as const)(
    'parks $errorClass ($code) as deferred and drops the message',
    async ({ to, errorClass, code }) => {
      // prepare
      const r = await rig();
      const id = await r.notify(to);

      // act
      const pass = await r.pass();

      // assess
      expect(pass.batchItemFailures).toEqual([]);
      expect(pass.outcomes.get(messageIdFor(pass, id))).toBe('deferred');
      expect(await r.row(id)).toMatchObject({
        status: 'deferred',
        status_reason: 'circuit_open',
        error_class: errorClass,
        error_code: code,
      });
      expect(await countQueueMessages(r.sqs, r.queue.url)).toBe(0);
    },
  );
});

describe('worker: retries', () => {
  it('sends on the second receive what failed once (throughput, 500, timeout), keeping the first error', async () => {
    // prepare
    const r = await rig({ clientTimeoutMs: 1_000 });
    const throughput = await r.notify('+573000000004');
    const serverError = await r.notify('+573000000005');
    const timeout = await r.notify('+573000000006');
    const first = await r.pass({ minMessages: 3 });
    expect(first.batchItemFailures).toHaveLength(3);

    // act
    const second = await r.pass({ minMessages: 3 });

    // assess
    expect(second.batchItemFailures).toEqual([]);
    expect(await r.row(throughput)).toMatchObject({
      status: 'sent',
      attempts: 2,
      error_class: 'rate_limited',
      error_code: 130429,
    });
    expect(await r.row(serverError)).toMatchObject({
      status: 'sent',
      attempts: 2,
      error_class: 'upstream',
    });
    const timedOut = await r.row(timeout);
    expect(timedOut).toMatchObject({ status: 'sent', attempts: 2, error_class: 'upstream' });
    expect(timedOut.wamid).toMatch(/^wamid\./);
    expect(await countQueueMessages(r.sqs, r.queue.url)).toBe(0);
    const sends = r.sandbox.stats().byRecipient;
    expect([sends['573000000004'], sends['573000000005'], sends['573000000006']]).toEqual([
      2, 2, 2,
    ]);
  });

  it(`moves a message that always fails to the DLQ after ${MAX_RECEIVE_COUNT} receives`, async () => {
    // prepare
    const r = await rig();
    const id = await r.notify('+573000000011');

    // act: keep invoking the worker, as the event source would, until SQS gives up on the message
    const deadline = Date.now() + 60_000;
    let handled = 0;
    while (Date.now() < deadline && (await countQueueMessages(r.sqs, r.queue.dlqUrl)) === 0) {
      const pass = await r.pass({ waitMs: 200 });
      handled += pass.messages.length;
    }

    // assess
    expect(handled).toBe(MAX_RECEIVE_COUNT);
    const dead = await r.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: r.queue.dlqUrl, WaitTimeSeconds: 0 }),
    );
    expect(dead.Messages?.map((m) => m.Body)).toEqual([id]);
    expect(await countQueueMessages(r.sqs, r.queue.url)).toBe(0);
    expect(await r.row(id)).toMatchObject({
      status: 'queued',
      attempts: MAX_RECEIVE_COUNT,
      error_class: 'upstream',
      error_code: 131000,
    });
    expect(r.sandbox.stats().byRecipient['573000000011']).toBe(MAX_RECEIVE_COUNT);
  });

  it('does not send again when a message for an already sent notification is redelivered', async () => {
    // prepare
    const r = await rig();
    const to = uniqueRecipient();
    const id = await r.notify(to);
    await r.pass();
    expect((await r.row(id)).status).toBe('sent');
    await r.sqs.send(new SendMessageCommand({ QueueUrl: r.queue.url, MessageBody: id }));

    // act
    const redelivery = await r.pass();

    // assess
    expect(redelivery.batchItemFailures).toEqual([]);
    expect([...redelivery.outcomes.values()]).toEqual(['skipped_duplicate']);
    expect(r.sandbox.stats().byRecipient[digits(to)]).toBe(1);
    expect(await r.row(id)).toMatchObject({ status: 'sent', attempts: 1 });
    expect(await countQueueMessages(r.sqs, r.queue.url)).toBe(0);
  });

  it('sends once when the same notification comes twice in one batch', async () => {
    // prepare
    const r = await rig();
    const to = uniqueRecipient();
    const id = await r.notify(to);
    await r.sqs.send(new SendMessageCommand({ QueueUrl: r.queue.url, MessageBody: id }));

    // act
    const pass = await r.pass({ minMessages: 2 });

    // assess
    expect(pass.messages).toHaveLength(2);
    expect(pass.batchItemFailures).toEqual([]);
    expect([...pass.outcomes.values()].sort()).toEqual(['sent', 'skipped_duplicate']);
    expect(r.sandbox.stats().byRecipient[digits(to)]).toBe(1);
    expect(await countQueueMessages(r.sqs, r.queue.url)).toBe(0);
  });

  it('holds back, without sending, a message whose row another worker is sending right now', async () => {
    // prepare
    const r = await rig();
    const id = await r.notify(uniqueRecipient());
    await applyTransitions(db, [{ id, to: 'sending', from: ['queued'] }]);

    // act
    const pass = await r.pass();

    // assess
    const messageId = messageIdFor(pass, id);
    expect(pass.outcomes.get(messageId)).toBe('busy');
    expect(r.sandbox.stats().sendsReceived).toBe(0);
    expect((await r.row(id)).status).toBe('sending');
    // Deleted and sent again delayed, so that waiting for the other worker spends no receive.
    expect(pass.batchItemFailures).toEqual([]);
    expect(await visibleAndDelayed(r.sqs, r.queue.url)).toEqual({ visible: 0, delayed: 1 });
    expect(await countQueueMessages(r.sqs, r.queue.url)).toBe(1);
    expect(await countVisibleMessages(r.sqs, r.queue.url)).toBe(0);
  });

  it('skips an opted-out recipient without calling WhatsApp', async () => {
    // prepare
    const r = await rig();
    const to = uniqueRecipient();
    const id = await r.notify(to);
    await addOptOut(db, to, 'keyword');

    // act
    const pass = await r.pass();

    // assess
    expect(pass.batchItemFailures).toEqual([]);
    expect(await r.row(id)).toMatchObject({
      status: 'skipped',
      status_reason: 'opted_out',
      attempts: 0,
    });
    expect(r.sandbox.stats().sendsReceived).toBe(0);
    expect(await countQueueMessages(r.sqs, r.queue.url)).toBe(0);
  });
});

describe('worker: batch shape', () => {
  it('answers an empty batch with no failures and sends nothing', async () => {
    // prepare
    const r = await rig();

    // act
    const result = await deliverBatch(r.deps, []);

    // assess
    expect(result.batchItemFailures).toEqual([]);
    expect(r.sandbox.stats().sendsReceived).toBe(0);
  });

  it('sends one record and reports no failures', async () => {
    // prepare
    const r = await rig();
    const id = await r.notify(uniqueRecipient());

    // act
    const pass = await r.pass();

    // assess
    expect(pass.batchItemFailures).toEqual([]);
    const row = await r.row(id);
    expect(row).toMatchObject({ status: 'sent', attempts: 1, error_class: null });
    expect(row.wamid).toMatch(/^wamid\./);
    expect(row.sent_at).toBeInstanceOf(Date);
    expect(await countQueueMessages(r.sqs, r.queue.url)).toBe(0);
  });

  it('sends a full batch of ten and reports no failures', async () => {
    // prepare
    const r = await rig();
    const ids = await Promise.all(Array.from({ length: 10 }, () => r.notify(uniqueRecipient())));

    // act
    const pass = await r.pass({ minMessages: 10 });

    // assess
    expect(pass.messages).toHaveLength(10);
    expect(pass.batchItemFailures).toEqual([]);
    const rows = await Promise.all(ids.map((id) => r.row(id)));
    expect(rows.map((row) => row.status)).toEqual(Array(10).fill('sent'));
    expect(new Set(rows.map((row) => row.wamid)).size).toBe(10);
    expect(r.sandbox.stats().accepted).toBe(10);
    expect(await countQueueMessages(r.sqs, r.queue.url)).toBe(0);
  });

  it('reports exactly the retryable records of a mixed batch and deletes the rest', async () => {
    // prepare
    const r = await rig();
    const good = await Promise.all([r.notify(uniqueRecipient()), r.notify(uniqueRecipient())]);
    const permanent = await r.notify('+573000000001');
    const retry = await Promise.all([r.notify('+573000000004'), r.notify('+573000000011')]);

    // act
    const pass = await r.pass({ minMessages: 5 });

    // assess
    expect(pass.messages).toHaveLength(5);
    const expected = retry.map((id) => ({ itemIdentifier: messageIdFor(pass, id) }));
    expect(pass.batchItemFailures).toHaveLength(2);
    expect(pass.batchItemFailures).toEqual(expect.arrayContaining(expected));
    for (const id of good) expect((await r.row(id)).status).toBe('sent');
    expect((await r.row(permanent)).status).toBe('failed');
    for (const id of retry) expect((await r.row(id)).status).toBe('queued');
    expect(await countQueueMessages(r.sqs, r.queue.url)).toBe(2);
  });

  it("counts every send attempt, and as API errors only the failures on Meta's side", async () => {
    // prepare
    const recorded = recordingMetrics();
    const r = await rig({ deps: { metrics: recorded.metrics } });
    await Promise.all([
      r.notify(uniqueRecipient()),
      r.notify(uniqueRecipient()),
      r.notify('+573000000001'), // invalid_recipient: the message's fault
      r.notify('+573000000003'), // template: the message's fault
      r.notify('+573000000011'), // upstream: Meta's
    ]);
    const total = (name: string) =>
      recorded.values.filter((v) => v.name === name).reduce((sum, v) => sum + v.value, 0);

    // act
    await r.pass({ minMessages: 5 });

    // assess
    expect(total(Metric.WhatsAppSendAttempts)).toBe(5);
    expect(total(Metric.WhatsAppApiErrors)).toBe(1);
    expect(total(Metric.TemplateFailures)).toBe(1);
    expect(total(Metric.NotificationsSent)).toBe(2);
  });

  it('reports a body that is not a notification id as a failure, and still sends the rest', async () => {
    // prepare
    const r = await rig();
    const id = await r.notify(uniqueRecipient());
    const bad = await r.sqs.send(
      new SendMessageCommand({ QueueUrl: r.queue.url, MessageBody: 'not-a-uuid' }),
    );

    // act
    const pass = await r.pass({ minMessages: 2 });

    // assess
    expect(pass.batchItemFailures).toEqual([{ itemIdentifier: bad.MessageId }]);
    expect(pass.outcomes.get(bad.MessageId!)).toBe('bad_body');
    expect((await r.row(id)).status).toBe('sent');
    expect(r.sandbox.stats().sendsReceived).toBe(1);
    expect(await countQueueMessages(r.sqs, r.queue.url)).toBe(1);
  });

  it('retries as upstream when WhatsApp refuses the connection', async () => {
    // prepare
    const r = await rig();
    const id = await r.notify(uniqueRecipient());
    await r.sandbox.stop();

    // act
    const pass = await r.pass();

    // assess
    expect(pass.batchItemFailures).toEqual([{ itemIdentifier: messageIdFor(pass, id) }]);
    const row = await r.row(id);
    expect(row).toMatchObject({
      status: 'queued',
      error_class: 'upstream',
      error_code: null,
      attempts: 1,
    });
    expect(row.error_message).toMatch(/ECONNREFUSED/);
    expect(await countQueueMessages(r.sqs, r.queue.url)).toBe(1);
  });

  it('deletes nothing when the database is down: the invocation fails whole', async () => {
    // prepare
    const r = await rig();
    const id = await r.notify(uniqueRecipient());
    const deadDb = createDatabase({
      DATABASE_URL: 'postgres://postgres:postgres@127.0.0.1:9/none',
      DB_POOL_MAX: 1,
    } as never);
    onTestFinished(() => deadDb.destroy());
    const deps = deliveryDeps({ db: deadDb, sqs: r.sqs, whatsapp: r.deps.whatsapp });
    const errors: unknown[] = [];
    let responses = 0;

    // act: the real local event source, invoking the worker's handler path
    const source = startSqsEventSource({
      sqs: r.sqs,
      queueUrl: r.queue.url,
      queueArn: r.queue.arn,
      concurrency: 1,
      waitSeconds: 1,
      handler: async (event): Promise<SQSBatchResponse> => {
        const records = event.Records.map((record) => toDeliveryRecord(record, [r.queue.url]));
        const { batchItemFailures } = await deliverBatch(deps, records);
        responses += 1;
        return { batchItemFailures };
      },
      onError: (error) => errors.push(error),
    });
    await pollUntil(
      async () => errors.length,
      (n) => n > 0,
    );
    await source.stop();

    // assess
    expect(errors).toHaveLength(1);
    expect(responses).toBe(0);
    expect(source.invocations()).toBe(1);
    expect(await countQueueMessages(r.sqs, r.queue.url)).toBe(1);
    expect(await r.row(id)).toMatchObject({ status: 'queued', attempts: 0 });
    expect(r.sandbox.stats().sendsReceived).toBe(0);
  });
});

describe('worker and webhook together', () => {
  it("takes a sent notification to read through the sandbox's signed status webhooks", async () => {
    // prepare
    const server = await startWebhookServer(testWebhookApp(db));
    onTestFinished(() => server.stop());
    const r = await rig({ sandbox: { webhookUrl: server.url } });
    const id = await r.notify(uniqueRecipient());

    // act
    const pass = await r.pass();
    const row = await pollUntil(
      () => r.row(id),
      (current) => current.status === 'read',
    );

    // assess
    expect(pass.batchItemFailures).toEqual([]);
    expect(row.status).toBe('read');
    expect(row.sent_at).toBeInstanceOf(Date);
    expect(row.delivered_at).toBeInstanceOf(Date);
    expect(row.read_at).toBeInstanceOf(Date);
    // The sandbox counts a webhook once our answer reaches it, just after the row has moved.
    const stats = await pollUntil(
      async () => r.sandbox.stats(),
      (s) => s.webhooksSent === 3,
    );
    expect(stats).toMatchObject({ webhooksSent: 3, webhooksFailed: 0 });
  });
});
