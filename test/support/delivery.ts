/**
 * Factories for delivery tests on the real local parts: per-test queues with a DLQ, worker
 * dependencies around a started WhatsApp sandbox, one worker pass as Lambda's SQS event source
 * would run it, row and queue reads, and signed webhooks for the webhook app.
 */
import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  DeleteQueueCommand,
  type Message,
  ReceiveMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import type { Kysely } from 'kysely';
import type { Database, NotificationRow } from '#core/db/schema.ts';
import { type BatchResult, type DeliveryDeps, deliverBatch } from '#core/delivery/deliver-batch.ts';
import { openGates } from '#core/delivery/delivery-gates.ts';
import { createWorkerDeps, type WorkerSettings } from '#core/delivery/worker-deps.ts';
import { WORKER_BATCH_SIZE } from '#core/notifications/queue-settings.ts';
import { loadDeliveryControlConfig } from '#core/platform/config.ts';
import { deleteMessages, messagesOnQueue, queueDepth } from '#core/platform/sqs.ts';
import { createGraphClient, type GraphClient } from '#core/whatsapp/graph-client.ts';
import { signWebhookBody } from '#core/whatsapp/webhook-signature.ts';
import { startLocalHttpServer } from '../../bin/local/http-server.ts';
import { createQueueWithDeadLetter, type QueueWithDeadLetter } from '../../bin/local/sqs.ts';
import { toSqsRecord } from '../../bin/local/sqs-event-source.ts';
import { type SandboxHandle, type SandboxOptions, startSandbox } from '../../bin/sandbox/server.ts';
import { createWebhookApp, type WebhookDeps } from '../../lambdas/webhook/app.ts';
import { toDeliveryRecord } from '../../lambdas/worker/records.ts';
import { apiEvent, createTestClient, testApiApp, testSqsClient } from './api.ts';
import { silentLogger, testMetrics } from './observability.ts';

export const SANDBOX_TOKEN = 'sandbox-token-for-delivery-tests';
export const SANDBOX_APP_SECRET = 'sandbox-app-secret-for-delivery-tests';
export const SANDBOX_PHONE_NUMBER_ID = '106540352242922';
export const WEBHOOK_VERIFY_TOKEN = 'verify-token-for-delivery-tests';

export { silentLogger, testMetrics } from './observability.ts';

// ------------------------------------------------------------------ queues

export type TestQueue = QueueWithDeadLetter;

/**
 * A delivery queue of our own with its DLQ, redriven after MAX_RECEIVE_COUNT receives as the
 * deployed queues are. The shared queues carry other files' messages; a worker test never reads them.
 */
export async function createTestQueues(sqs: SQSClient, label = 'delivery'): Promise<TestQueue> {
  const name = `test-${label}-${randomUUID().slice(0, 8)}`;
  return createQueueWithDeadLetter(sqs, process.env.SQS_ENDPOINT!, {
    name,
    deadLetterName: `${name}-dlq`,
  });
}

export async function deleteTestQueues(sqs: SQSClient, queue: TestQueue): Promise<void> {
  await Promise.allSettled([
    sqs.send(new DeleteQueueCommand({ QueueUrl: queue.url })),
    sqs.send(new DeleteQueueCommand({ QueueUrl: queue.dlqUrl })),
  ]);
}

/** How many messages wait on a queue visible now, and how many wait out a delay. */
export async function visibleAndDelayed(
  sqs: SQSClient,
  queueUrl: string,
): Promise<{ visible: number; delayed: number }> {
  const { visible, delayed } = await queueDepth(sqs, queueUrl);
  return { visible, delayed };
}

/** Messages on a queue whatever their state: visible, in flight (received, not deleted) or delayed. */
export async function countQueueMessages(sqs: SQSClient, queueUrl: string): Promise<number> {
  return messagesOnQueue(await queueDepth(sqs, queueUrl));
}

/** Only the visible messages: what a receive right now could get. */
export async function countVisibleMessages(sqs: SQSClient, queueUrl: string): Promise<number> {
  return (await queueDepth(sqs, queueUrl)).visible;
}

// ------------------------------------------------------------------ sandbox and worker

export async function startTestSandbox(
  overrides: Partial<SandboxOptions> = {},
): Promise<SandboxHandle> {
  return startSandbox({
    port: 0,
    accessToken: SANDBOX_TOKEN,
    appSecret: SANDBOX_APP_SECRET,
    phoneNumberId: SANDBOX_PHONE_NUMBER_ID,
    statusDelaysMs: { sent: 10, delivered: 20, read: 30 },
    // A held request is cut by the client's timeout; the sandbox need not hold it long after.
    timeoutHoldMs: 3_000,
    ...overrides,
  });
}

export function sandboxGraphClient(sandbox: SandboxHandle, timeoutMs = 5_000): GraphClient {
  return createGraphClient({
    apiUrl: sandbox.url,
    graphVersion: 'v25.0',
    phoneNumberId: SANDBOX_PHONE_NUMBER_ID,
    accessToken: SANDBOX_TOKEN,
    timeoutMs,
  });
}

/** The worker's settings at their deployed defaults (an empty environment through config.ts). */
export const TEST_WORKER_SETTINGS: WorkerSettings = loadDeliveryControlConfig({});

/**
 * The worker's dependencies as the handler builds them (createWorkerDeps), with open gates unless
 * the test gives others: most delivery tests study the send, not the rollout or the rate limits.
 */
export function deliveryDeps(
  input: Pick<DeliveryDeps, 'db' | 'sqs' | 'whatsapp'> & Partial<DeliveryDeps>,
): DeliveryDeps {
  return {
    ...createWorkerDeps({
      db: input.db,
      sqs: input.sqs,
      whatsapp: input.whatsapp,
      senderId: SANDBOX_PHONE_NUMBER_ID,
      settings: TEST_WORKER_SETTINGS,
      gates: openGates,
      // Zero jitter: a retried record is visible again at once, so a test needs no waiting.
      random: () => 0,
      logger: silentLogger(),
      metrics: testMetrics(),
    }),
    ...input,
  };
}

export interface WorkerPass extends BatchResult {
  /** The messages handed to the worker, in batch order. */
  messages: Message[];
}

/**
 * One invocation as the SQS event source makes it: receive up to a batch (waiting until
 * `minMessages` have arrived or `waitMs` has passed), run the worker's rules, delete only what
 * was not reported in `batchItemFailures`. A throw deletes nothing, as with Lambda.
 */
export async function runWorkerPass(
  deps: DeliveryDeps,
  queue: TestQueue,
  options: { minMessages?: number; waitMs?: number } = {},
): Promise<WorkerPass> {
  const wanted = Math.min(options.minMessages ?? 1, WORKER_BATCH_SIZE);
  const deadline = Date.now() + (options.waitMs ?? 3_000);
  const messages: Message[] = [];
  do {
    const received = await deps.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queue.url,
        MaxNumberOfMessages: WORKER_BATCH_SIZE - messages.length,
        WaitTimeSeconds: 0,
        MessageSystemAttributeNames: ['All'],
        MessageAttributeNames: ['All'],
      }),
    );
    messages.push(...(received.Messages ?? []));
    if (messages.length < wanted) await new Promise((resolve) => setTimeout(resolve, 25));
  } while (messages.length < wanted && Date.now() < deadline);
  if (messages.length === 0) return { messages, batchItemFailures: [], outcomes: new Map() };

  const records = messages.map((m) => toDeliveryRecord(toSqsRecord(m, queue.arn), [queue.url]));
  const result = await deliverBatch(deps, records);
  const failed = new Set(result.batchItemFailures.map((f) => f.itemIdentifier));
  const done = records.filter((r) => !failed.has(r.messageId));
  await deleteMessages(
    deps.sqs,
    queue.url,
    done.map((r) => r.receiptHandle),
  );
  return { messages, ...result };
}

/** The SQS message id that carried this notification in a pass. */
export function messageIdFor(pass: WorkerPass, notificationId: string): string {
  const message = pass.messages.find((m) => m.Body === notificationId);
  if (!message) throw new Error(`notification ${notificationId} was not in this batch`);
  return message.MessageId!;
}

export async function readNotification(db: Kysely<Database>, id: string): Promise<NotificationRow> {
  return db.selectFrom('notifications').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
}

/** Polls until `done` holds or the deadline passes; returns the last value read either way. */
export async function pollUntil<T>(
  read: () => Promise<T>,
  done: (value: T) => boolean,
  // A generous ceiling: the poll returns as soon as `done` holds, so only a busy machine waits.
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let value = await read();
  while (!done(value) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 25));
    value = await read();
  }
  return value;
}

export function templateRequest(to: string) {
  return { to, template: { name: 'hello_world', language: 'en_US' } };
}

/** Everything one delivery test needs, each part its own: queue, sandbox, API client, worker deps. */
export interface DeliveryRig {
  db: Kysely<Database>;
  sqs: SQSClient;
  queue: TestQueue;
  sandbox: SandboxHandle;
  deps: DeliveryDeps;
  /** POST /v1/notifications through the real API app; returns the notification id. */
  notify(to: string): Promise<string>;
  pass(options?: { minMessages?: number; waitMs?: number }): Promise<WorkerPass>;
  row(id: string): Promise<NotificationRow>;
  stop(): Promise<void>;
}

export async function startDeliveryRig(
  db: Kysely<Database>,
  options: {
    sandbox?: Partial<SandboxOptions>;
    clientTimeoutMs?: number;
    deps?: Partial<DeliveryDeps>;
  } = {},
): Promise<DeliveryRig> {
  const sqs = testSqsClient();
  const queue = await createTestQueues(sqs);
  const sandbox = await startTestSandbox(options.sandbox);
  const graph = sandboxGraphClient(sandbox, options.clientTimeoutMs);
  const deps = deliveryDeps({ db, sqs, whatsapp: graph, ...options.deps });
  const { key } = await createTestClient(db);
  const api = testApiApp(db, {
    sqs,
    queue: { sqs, queueUrls: { high: queue.url, bulk: queue.url } },
  });
  return {
    db,
    sqs,
    queue,
    sandbox,
    deps,
    async notify(to) {
      const response = await api(
        apiEvent({
          method: 'POST',
          path: '/v1/notifications',
          headers: { 'X-API-Key': key },
          body: templateRequest(to),
        }),
      );
      if (response.statusCode !== 202) {
        throw new Error(`POST /v1/notifications answered ${response.statusCode}: ${response.body}`);
      }
      return (JSON.parse(response.body) as { id: string }).id;
    },
    pass: (passOptions) => runWorkerPass(deps, queue, passOptions),
    row: (id) => readNotification(db, id),
    async stop() {
      await sandbox.stop();
      await graph.close();
      await deleteTestQueues(sqs, queue);
      sqs.destroy();
    },
  };
}

// ------------------------------------------------------------------ webhooks

export type WebhookApp = ReturnType<typeof createWebhookApp>;

export function testWebhookApp(
  db: Kysely<Database>,
  overrides: Partial<WebhookDeps> = {},
): WebhookApp {
  return createWebhookApp({
    db,
    appSecret: SANDBOX_APP_SECRET,
    verifyToken: WEBHOOK_VERIFY_TOKEN,
    logger: silentLogger(),
    metrics: testMetrics(),
    ...overrides,
  });
}

export function webhookVerificationEvent(query: Record<string, string>): APIGatewayProxyEvent {
  return { ...apiEvent({ method: 'GET', path: '/webhook' }), queryStringParameters: query };
}

/**
 * A POST as Meta sends it: the raw JSON and its `X-Hub-Signature-256`. `signature: null` leaves the
 * header out; a string replaces it.
 */
export function webhookPostEvent(
  payload: unknown,
  options: { signature?: string | null; requestId?: string; secret?: string } = {},
): APIGatewayProxyEvent {
  const raw = JSON.stringify(payload);
  const signature =
    options.signature === undefined
      ? signWebhookBody(raw, options.secret ?? SANDBOX_APP_SECRET)
      : options.signature;
  return apiEvent({
    method: 'POST',
    path: '/webhook',
    rawBody: raw,
    headers: {
      ...(signature === null ? {} : { 'X-Hub-Signature-256': signature }),
      ...(options.requestId ? { 'X-Request-ID': options.requestId } : {}),
    },
  });
}

export async function postSignedWebhook(
  app: WebhookApp,
  payload: unknown,
): Promise<APIGatewayProxyResult> {
  return app(webhookPostEvent(payload));
}

/** The webhook app behind a real HTTP server (the local API Gateway stand-in), for the sandbox to post to. */
export async function startWebhookServer(
  app: WebhookApp,
): Promise<{ url: string; stop(): Promise<void> }> {
  const server: Server = await startLocalHttpServer(
    [{ prefix: '/', functionName: 'webhook', handler: (event) => app(event) }],
    0,
  );
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/webhook`,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
