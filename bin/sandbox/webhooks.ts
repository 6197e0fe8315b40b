/**
 * The sandbox's side of Meta's webhooks: each accepted send's statuses (sent, delivered, read, or
 * failed) posted signed to the receiver, batched as Meta batches them under load and retried, and
 * inbound messages as when a user writes to the business, and the other events Meta posts (user
 * preferences, identity changes, account and template events). The webhook faults (a malformed
 * item, a redelivery, statuses newest first) are applied here.
 */
import { Agent, request } from 'undici';
import {
  buildInboundTextWebhook,
  buildStatusesWebhook,
  buildStatusWebhook,
  malformedStatusItem,
  type StatusWebhookInput,
  type WebhookStatus,
} from '#core/whatsapp/webhook-payload.ts';
import { signWebhookBody } from '#core/whatsapp/webhook-signature.ts';
import type { WebhookFault } from './faults.ts';
import { nextId, type Timers } from './http.ts';
import { sandboxBsuid } from './test-numbers.ts';

/** Quick retries, for tests that watch a receiver fail; see WebhookOptions.retryDelaysMs. */
export const DEFAULT_WEBHOOK_RETRY_DELAYS_MS: readonly number[] = [100, 400];
/**
 * Meta keeps retrying a status it could not deliver for up to 7 days, so a receiver whose database
 * is down gets it once the database is back. The local stack retries for about half a minute,
 * enough to outlast a restart of its PostgreSQL, which a crashed send's status must survive.
 */
export const META_LIKE_WEBHOOK_RETRY_DELAYS_MS: readonly number[] = [
  100, 400, 1_000, 2_000, 4_000, 8_000, 15_000,
];
const WEBHOOK_BATCH_MAX = 100;

export interface WebhookOptions {
  appSecret: string;
  phoneNumberId: string;
  /** Where signed webhooks go; none are sent while unset. */
  url: string | undefined;
  /** Waits between a failed webhook POST and its next try; given up after the last. */
  retryDelaysMs?: readonly number[];
  /** When each status is posted, counted from the accepted send. */
  statusDelaysMs: { sent: number; delivered: number; read: number };
  /** Statuses due within this many ms share one POST (at most 100); 0 posts each alone. */
  batchMs: number;
  timers: Timers;
  log: (line: string) => void;
  /** Whether this webhook gets `kind` (the fault plan draws it); default never. */
  fault?: (kind: WebhookFault) => boolean;
}

export interface Webhooks {
  url(): string | undefined;
  setUrl(url: string | undefined): void;
  /**
   * Posts the statuses of an accepted send in order: sent, delivered, read; or one `failed`. For a
   * username user the statuses name only the BSUID, as Meta withholds the number.
   */
  scheduleStatuses(
    wamid: string,
    recipientId: string,
    failLater: boolean,
    usernameUser?: boolean,
    /** The send's `biz_opaque_callback_data`, echoed on each status as Meta does. */
    callbackData?: string,
  ): void;
  /**
   * Posts a signed inbound text message webhook; true when the receiver answered 2xx. `from: ''`
   * with a `userId` is a username user whose number Meta withholds.
   */
  sendInboundText(input: { from: string; text: string; userId?: string }): Promise<boolean>;
  /** Posts any webhook body signed, with the retries; true when the receiver answered 2xx. */
  post(payload: unknown): Promise<boolean>;
  /** Webhook POSTs answered 2xx, and those given up after every retry. */
  counts(): { webhooksSent: number; webhooksFailed: number };
  resetCounts(): void;
  destroy(): Promise<void>;
}

export function createWebhooks(options: WebhookOptions): Webhooks {
  const { timers, log } = options;
  const fault = options.fault ?? (() => false);
  const delays = options.statusDelaysMs;
  const retryDelays = options.retryDelaysMs ?? DEFAULT_WEBHOOK_RETRY_DELAYS_MS;
  const webhookBatchMs = options.batchMs;
  let webhookUrl = options.url;
  const stats = { webhooksSent: 0, webhooksFailed: 0 };
  const webhookAgent = new Agent({
    connections: 32,
    keepAliveTimeout: 30_000,
    headersTimeout: 5_000,
    bodyTimeout: 5_000,
  });

  /**
   * Each message's statuses are posted one after the other, so a healthy receiver sees sent,
   * delivered, read in order; the retries make order across messages (and under failure) loose,
   * as with Meta.
   */
  function scheduleStatuses(
    wamid: string,
    recipientId: string,
    failLater: boolean,
    usernameUser = false,
    callbackData?: string,
  ): void {
    let steps: { status: WebhookStatus; at: number }[] = failLater
      ? [{ status: 'failed', at: delays.sent }]
      : [
          { status: 'sent', at: delays.sent },
          { status: 'delivered', at: delays.delivered },
          { status: 'read', at: delays.read },
        ];
    if (!failLater && fault('out_of_order')) {
      // Newest first, at the same moments: read, then delivered, then a late sent.
      steps = steps.map((step, index) => ({
        status: steps[steps.length - 1 - index]!.status,
        at: step.at,
      }));
    }
    const run = (index: number, previousAt: number): void => {
      const step = steps[index];
      if (!step) return;
      timers.later(Math.max(0, step.at - previousAt), () => {
        queueStatus(
          {
            phoneNumberId: options.phoneNumberId,
            wamid,
            status: step.status,
            // A username user's number is withheld: the statuses name only the BSUID.
            recipientId: usernameUser ? '' : recipientId,
            ...(usernameUser ? { recipientUserId: sandboxBsuid(recipientId) } : {}),
            ...(callbackData ? { callbackData } : {}),
            errors:
              step.status === 'failed'
                ? [
                    {
                      code: 131026,
                      title: 'Message undeliverable',
                      message: 'Message undeliverable',
                    },
                  ]
                : undefined,
          },
          () => run(index + 1, step.at),
        );
      });
    };
    run(0, 0);
  }

  // Statuses due within one window go out in one POST (up to WEBHOOK_BATCH_MAX), as Meta batches
  // them under load; alone, a status waits at most the window.
  let batch: { input: StatusWebhookInput; done: () => void }[] = [];
  let batchTimer: NodeJS.Timeout | undefined;

  function queueStatus(input: StatusWebhookInput, done: () => void): void {
    if (webhookBatchMs <= 0) {
      void postStatuses(buildStatusWebhook(input)).then(done);
      return;
    }
    batch.push({ input, done });
    if (batch.length >= WEBHOOK_BATCH_MAX) flushStatuses();
    else batchTimer ??= timers.later(webhookBatchMs, flushStatuses);
  }

  function flushStatuses(): void {
    timers.clear(batchTimer);
    batchTimer = undefined;
    const items = batch;
    batch = [];
    if (items.length === 0) return;
    void postStatuses(buildStatusesWebhook(items.map((item) => item.input))).then(() => {
      for (const item of items) item.done();
    });
  }

  let malformedCount = 0;

  /**
   * Posts a status body, with the webhook faults: a malformed item slipped among the statuses,
   * and the same body posted a second time (Meta redelivers; duplicates are expected).
   */
  async function postStatuses(payload: ReturnType<typeof buildStatusesWebhook>): Promise<boolean> {
    if (fault('malformed_item')) {
      const value = payload.entry[0]!.changes[0]!.value as unknown as { statuses: unknown[] };
      const at = Math.floor(Math.random() * (value.statuses.length + 1));
      value.statuses.splice(at, 0, malformedStatusItem(malformedCount++));
    }
    const delivered = await postWebhook(payload);
    if (delivered && fault('redeliver')) await postWebhook(payload);
    return delivered;
  }

  async function postWebhook(payload: unknown): Promise<boolean> {
    const body = JSON.stringify(payload);
    const signature = signWebhookBody(body, options.appSecret);
    let lastProblem = '';
    for (let attempt = 0; attempt <= retryDelays.length; attempt++) {
      const url = webhookUrl;
      if (timers.stopped || !url) return false;
      try {
        const res = await request(url, {
          method: 'POST',
          dispatcher: webhookAgent,
          headers: { 'content-type': 'application/json', 'x-hub-signature-256': signature },
          body,
        });
        await res.body.dump();
        if (res.statusCode >= 200 && res.statusCode < 300) {
          stats.webhooksSent++;
          return true;
        }
        lastProblem = `HTTP ${res.statusCode}`;
      } catch (error) {
        lastProblem = (error as { code?: string }).code ?? 'network error';
      }
      const wait = retryDelays[attempt];
      if (timers.stopped) return false;
      if (wait !== undefined) await timers.sleep(wait);
    }
    if (timers.stopped) return false;
    stats.webhooksFailed++;
    // First failure and then every hundredth, so a dead receiver does not flood the log.
    if (stats.webhooksFailed % 100 === 1) {
      log(
        `sandbox: webhook delivery failed (${lastProblem}); ${stats.webhooksFailed} failed so far`,
      );
    }
    return false;
  }

  function sendInboundText(input: {
    from: string;
    text: string;
    userId?: string;
  }): Promise<boolean> {
    return postWebhook(
      buildInboundTextWebhook({
        phoneNumberId: options.phoneNumberId,
        from: input.from.replace(/\D/g, ''),
        userId: input.userId,
        text: input.text,
        id: `wamid.IN${nextId()}`,
      }),
    );
  }

  return {
    url: () => webhookUrl,
    setUrl(url) {
      webhookUrl = url;
    },
    scheduleStatuses,
    sendInboundText,
    post: postWebhook,
    counts: () => ({ ...stats }),
    resetCounts() {
      stats.webhooksSent = 0;
      stats.webhooksFailed = 0;
    },
    destroy: () => webhookAgent.destroy(),
  };
}
