/** A local stand-in for the WhatsApp Cloud API that answers like Graph API and posts signed status webhooks. */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { Agent, request } from 'undici';
import type { ErrorClass } from '#core/model/error-class.ts';
import {
  buildEventWebhook,
  buildIdentityChangeWebhook,
  buildInboundTextWebhook,
  buildStatusesWebhook,
  buildStatusWebhook,
  buildUserPreferencesWebhook,
  EVENT_FIELDS,
  malformedStatusItem,
  type StatusWebhookInput,
  type WebhookStatus,
} from '#core/whatsapp/webhook-payload.ts';
import { signWebhookBody } from '#core/whatsapp/webhook-signature.ts';

/**
 * Faults of the status webhooks rather than of sends: a malformed item among a batch's statuses,
 * a POST delivered twice, a message's statuses posted newest first. Opt-in (not in the default).
 */
export type WebhookFault = 'malformed_item' | 'redeliver' | 'out_of_order';
export const WEBHOOK_FAULTS: readonly WebhookFault[] = [
  'malformed_item',
  'redeliver',
  'out_of_order',
];

export type SandboxFault = '429' | '5xx' | 'timeout' | 'slow' | 'reset' | WebhookFault;

/** The send faults: the default kinds. */
export const SANDBOX_FAULTS: readonly SandboxFault[] = ['429', '5xx', 'timeout', 'slow', 'reset'];

const isWebhookFault = (kind: SandboxFault): kind is WebhookFault =>
  (WEBHOOK_FAULTS as readonly string[]).includes(kind);

export interface SandboxOptions {
  /** 0 (the default) picks a free port. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  accessToken: string;
  appSecret: string;
  phoneNumberId: string;
  /** Where signed status webhooks go; none are sent while unset. */
  webhookUrl?: string;
  /** When each status is posted, counted from the accepted send. Default 50/150/300 ms. */
  statusDelaysMs?: { sent: number; delivered: number; read: number };
  /**
   * Statuses due within this many ms share one webhook POST (at most 100), as Meta batches them
   * under load. Default 20; 0 posts each status alone.
   */
  webhookBatchMs?: number;
  /** Share of ordinary sends (and probes) that get one of `faultKinds`, 0..1. Default 0. */
  faultRate?: number;
  /** Default: all kinds. */
  faultKinds?: SandboxFault[];
  /** How long a 'timeout' keeps a request open before answering. Default 15000 ms. */
  timeoutHoldMs?: number;
  /** Only notable events (start, webhook failures); nothing per request. */
  logger?: (line: string) => void;
  /** What the account looks like to read-only calls (debug_token, the number, subscribed_apps). */
  account?: Partial<SandboxAccount>;
}

/**
 * The account state read-only Graph calls report, so a test can make the token expire soon, drop a
 * scope, lower the quality rating or unsubscribe the app and see what a check makes of it.
 */
export interface SandboxAccount {
  /** Unix seconds; 0 = never (a system-user token that does not expire). */
  tokenExpiresAt: number;
  scopes: string[];
  /** Whether the app is subscribed to the WABA's webhooks (`GET /{waba-id}/subscribed_apps`). */
  appSubscribed: boolean;
  /**
   * A WABA-level alternate callback URL, reported as `override_callback_uri` as Meta does; null:
   * none, webhooks go to the app's callback URL (which subscribed_apps does not show).
   */
  overrideCallbackUri: string | null;
  qualityRating: 'GREEN' | 'YELLOW' | 'RED' | 'UNKNOWN';
  /** Portfolio messaging limit, `TIER_250` … `TIER_UNLIMITED`. */
  messagingLimit: string;
  throughputLevel: 'STANDARD' | 'HIGH';
}

export const SANDBOX_APP_ID = '100000000000002';

const DEFAULT_ACCOUNT: SandboxAccount = {
  tokenExpiresAt: 0,
  scopes: ['whatsapp_business_messaging', 'whatsapp_business_management'],
  appSubscribed: true,
  overrideCallbackUri: null,
  qualityRating: 'GREEN',
  messagingLimit: 'TIER_250',
  throughputLevel: 'STANDARD',
};

export interface SandboxStats {
  /** Every POST to the messages edge, including rejected ones. */
  sendsReceived: number;
  /** Sends answered with a wamid. */
  accepted: number;
  /** Sends answered with an error, or dropped (reset, abandoned timeout). */
  rejected: number;
  /** Sends per recipient, key = recipient digits. Test-only use: it holds full numbers. */
  byRecipient: Record<string, number>;
  /** Webhook POSTs the receiver answered with 2xx. */
  webhooksSent: number;
  /** Webhooks given up after all retries. */
  webhooksFailed: number;
}

export interface SandboxHandle {
  url: string;
  port: number;
  setWebhookUrl(url: string | undefined): void;
  setFaults(f: { rate: number; kinds?: SandboxFault[] }): void;
  /** Changes what debug_token, the number and subscribed_apps report (reset() restores it). */
  setAccount(changes: Partial<SandboxAccount>): void;
  stats(): SandboxStats;
  /** Zeroes the stats, forgets per-recipient attempts, restores the faults and account given at start. */
  reset(): void;
  /** Posts a signed inbound text message webhook, as when a user writes to the business. */
  /** `from: ''` with a `userId` is a username user whose number Meta withholds. */
  sendInboundText(input: { from: string; text: string; userId?: string }): Promise<boolean>;
  stop(): Promise<void>;
}

export type SandboxBehaviour =
  | 'undeliverable'
  | 'outside_window'
  | 'template_not_found'
  | 'throughput_once'
  | 'server_error_once'
  | 'timeout_once'
  | 'opted_out'
  | 'auth_always'
  | 'spam_blocked'
  | 'pair_rate_once'
  | 'server_error_always'
  | 'failed_webhook'
  | 'invalid_parameter'
  | 'username_user';

export interface SandboxTestNumber {
  behaviour: SandboxBehaviour;
  description: string;
  /** What the first send call to this number gets; absent for a timeout or an accepted send. */
  httpStatus?: number;
  code?: number;
  /** How classifyGraphError reads the first answer; absent when the send is accepted. */
  errorClass?: ErrorClass;
  /** Only the first attempt per sandbox and recipient fails; later ones are accepted. */
  once: boolean;
}

/**
 * Recipients that always behave the same way, for tests, the local stack and demos. They are
 * valid Colombian mobiles (so the API's libphonenumber-js check lets them through) in a block
 * (+57 300 000 00xx) that no real subscriber is expected to hold. The behaviour ignores the
 * message type: +573000000002 answers 131047 to a template too, so tests need not build text.
 */
export const SANDBOX_TEST_NUMBERS: Readonly<Record<string, SandboxTestNumber>> = {
  '+573000000001': {
    behaviour: 'undeliverable',
    description: 'HTTP 400, 131026 message undeliverable, every time',
    httpStatus: 400,
    code: 131026,
    errorClass: 'invalid_recipient',
    once: false,
  },
  '+573000000002': {
    behaviour: 'outside_window',
    description: 'HTTP 400, 131047 more than 24 h since the user last replied, every time',
    httpStatus: 400,
    code: 131047,
    errorClass: 'outside_window',
    once: false,
  },
  '+573000000003': {
    behaviour: 'template_not_found',
    description: 'HTTP 404, 132001 template does not exist in that language, every time',
    httpStatus: 404,
    code: 132001,
    errorClass: 'template',
    once: false,
  },
  '+573000000004': {
    behaviour: 'throughput_once',
    description: 'HTTP 400, 130429 throughput reached on the first attempt, then accepted',
    httpStatus: 400,
    code: 130429,
    errorClass: 'rate_limited',
    once: true,
  },
  '+573000000005': {
    behaviour: 'server_error_once',
    description: 'HTTP 500 with no body on the first attempt, then accepted',
    httpStatus: 500,
    errorClass: 'upstream',
    once: true,
  },
  '+573000000006': {
    behaviour: 'timeout_once',
    description: 'no answer for 15 s (client timeouts cut it) on the first attempt, then accepted',
    errorClass: 'upstream',
    once: true,
  },
  '+573000000007': {
    behaviour: 'opted_out',
    description: 'HTTP 400, 131050 user stopped marketing messages, every time',
    httpStatus: 400,
    code: 131050,
    errorClass: 'opted_out',
    once: false,
  },
  '+573000000008': {
    behaviour: 'auth_always',
    description: 'HTTP 401, 190 access token invalid, every time (opens the circuit)',
    httpStatus: 401,
    code: 190,
    errorClass: 'auth',
    once: false,
  },
  '+573000000009': {
    behaviour: 'spam_blocked',
    description: 'HTTP 400, 131048 spam rate limit, every time (account blocked)',
    httpStatus: 400,
    code: 131048,
    errorClass: 'account_blocked',
    once: false,
  },
  '+573000000010': {
    behaviour: 'pair_rate_once',
    description: 'HTTP 400, 131056 pair rate limit on the first attempt, then accepted',
    httpStatus: 400,
    code: 131056,
    errorClass: 'pair_rate_limited',
    once: true,
  },
  '+573000000011': {
    behaviour: 'server_error_always',
    description: 'HTTP 500, 131000 something went wrong, every time (ends in the DLQ)',
    httpStatus: 500,
    code: 131000,
    errorClass: 'upstream',
    once: false,
  },
  '+573000000012': {
    behaviour: 'failed_webhook',
    description:
      'accepted, then a `failed` status webhook with 131026 instead of sent/delivered/read',
    once: false,
  },
  '+573000000013': {
    behaviour: 'invalid_parameter',
    description: 'HTTP 400, 100 invalid parameter, every time',
    httpStatus: 400,
    code: 100,
    errorClass: 'invalid_request',
    once: false,
  },
  '+573000000014': {
    behaviour: 'username_user',
    description:
      'accepted; a username user: statuses carry no `recipient_id`, only `recipient_user_id` (BSUID `CO.SANDBOX573000000014`); `/_sandbox/inbound`, `/preferences` and `/identity` can speak for it',
    once: false,
  },
};

/** The BSUID the sandbox reports for a number: fixed, so tests and demos can name it. */
export function sandboxBsuid(e164: string): string {
  return `CO.SANDBOX${e164.replace(/\D/g, '')}`;
}

/** The test numbers as a markdown table, for the README and `ops` help. */
export function describeSandboxTestNumbers(): string {
  const rows = Object.entries(SANDBOX_TEST_NUMBERS).map(
    ([number, t]) =>
      `| \`${number}\` | ${t.behaviour} | ${t.errorClass ?? '—'} | ${t.description} |`,
  );
  return [
    '| recipient | behaviour | error class | what the sandbox does |',
    '|---|---|---|---|',
    ...rows,
  ].join('\n');
}

/** Titles as Meta writes them, so the client's message handling meets realistic text. */
const META_TITLES: Record<number, string> = {
  100: 'Invalid parameter',
  190: 'Invalid OAuth access token - Cannot parse access token',
  130429: 'Rate limit hit',
  131000: 'Something went wrong',
  131026: 'Message undeliverable',
  131047: 'Re-engagement message',
  131048: 'Spam rate limit hit',
  131050:
    'Unable to deliver the message. This recipient has chosen to stop receiving marketing messages on WhatsApp from your business',
  131056: '(Business Account, Consumer Account) pair rate limit hit',
  132001: 'Template name does not exist in the translation',
};

const SANDBOX_TEMPLATES = [
  { name: 'hello_world', language: 'en_US', status: 'APPROVED', category: 'UTILITY' },
  { name: 'appointment_reminder', language: 'es', status: 'APPROVED', category: 'UTILITY' },
  { name: 'appointment_reminder', language: 'en_US', status: 'APPROVED', category: 'UTILITY' },
  { name: 'order_shipped', language: 'en_US', status: 'PAUSED', category: 'UTILITY' },
  { name: 'spring_sale', language: 'en_US', status: 'REJECTED', category: 'MARKETING' },
  { name: 'password_reset', language: 'en_US', status: 'PENDING', category: 'AUTHENTICATION' },
  { name: 'legacy_notice', language: 'en_US', status: 'DISABLED', category: 'UTILITY' },
].map((t, i) => ({ ...t, id: String(900000000000001 + i) }));

const MAX_BODY_BYTES = 256 * 1024;
const WEBHOOK_RETRY_DELAYS_MS = [100, 400];
const WEBHOOK_BATCH_MAX = 100;
const SANDBOX_DISPLAY_NUMBER = '+1 555-000-0000';

type Res = http.ServerResponse;

interface MetaErrorInput {
  status: number;
  code: number;
  message?: string;
  subcode?: number;
  details?: string;
  type?: string;
}

export async function startSandbox(options: SandboxOptions): Promise<SandboxHandle> {
  const host = options.host ?? '127.0.0.1';
  const delays = options.statusDelaysMs ?? { sent: 50, delivered: 150, read: 300 };
  const timeoutHoldMs = options.timeoutHoldMs ?? 15_000;
  const webhookBatchMs = options.webhookBatchMs ?? 20;
  const log = options.logger ?? (() => {});
  let webhookUrl = options.webhookUrl;
  let faultRate = clampRate(options.faultRate ?? 0);
  let faultKinds = options.faultKinds?.length ? [...options.faultKinds] : [...SANDBOX_FAULTS];
  let account: SandboxAccount = { ...DEFAULT_ACCOUNT, ...options.account };
  let stopped = false;

  const stats = freshStats();
  const attempts = new Map<string, number>();
  const timers = new Set<NodeJS.Timeout>();
  // Cheap unique ids at thousands per second: a random prefix per instance plus a counter.
  const idPrefix = randomBytes(9).toString('base64url');
  let idCounter = 0;
  const nextId = () => `${idPrefix}${(idCounter++).toString(36).padStart(7, '0')}`;

  const webhookAgent = new Agent({
    connections: 32,
    keepAliveTimeout: 30_000,
    headersTimeout: 5_000,
    bodyTimeout: 5_000,
  });

  function freshStats() {
    return { sendsReceived: 0, accepted: 0, rejected: 0, webhooksSent: 0, webhooksFailed: 0 };
  }

  /** Every timer goes through here so stop() can clear them all; none start after stop(). */
  function later(ms: number, fn: () => void): NodeJS.Timeout | undefined {
    if (stopped) return undefined;
    const timer = setTimeout(() => {
      timers.delete(timer);
      fn();
    }, ms);
    timers.add(timer);
    return timer;
  }

  function sleep(ms: number): Promise<void> {
    return new Promise((resolve) => later(ms, resolve));
  }

  function sendJson(res: Res, status: number, body: unknown): void {
    if (res.destroyed || res.writableEnded) return;
    const text = JSON.stringify(body);
    res.writeHead(status, {
      'content-type': 'application/json; charset=UTF-8',
      'content-length': Buffer.byteLength(text),
    });
    res.end(text);
  }

  function sendMetaError(res: Res, e: MetaErrorInput): void {
    const title = e.message ?? META_TITLES[e.code] ?? 'Error';
    const error: Record<string, unknown> = {
      message: `(#${e.code}) ${title}`,
      type: e.type ?? 'OAuthException',
      code: e.code,
      error_data: { messaging_product: 'whatsapp', details: e.details ?? title },
      fbtrace_id: `A${nextId()}`,
    };
    if (e.subcode !== undefined) error.error_subcode = e.subcode;
    sendJson(res, e.status, { error });
  }

  function sendEmpty(res: Res, status: number): void {
    if (res.destroyed || res.writableEnded) return;
    res.writeHead(status, { 'content-length': 0 });
    res.end();
  }

  function pickFault(): SandboxFault | undefined {
    const sendKinds = faultKinds.filter((kind) => !isWebhookFault(kind));
    if (sendKinds.length === 0 || faultRate <= 0 || Math.random() >= faultRate) return undefined;
    return sendKinds[Math.floor(Math.random() * sendKinds.length)];
  }

  /** Whether this webhook gets `kind` (chosen with the fault rate, among the kinds set). */
  function webhookFault(kind: WebhookFault): boolean {
    return faultKinds.includes(kind) && faultRate > 0 && Math.random() < faultRate;
  }

  let malformedCount = 0;

  /**
   * Posts a status body, with the webhook faults: a malformed item slipped among the statuses,
   * and the same body posted a second time (Meta redelivers; duplicates are expected).
   */
  async function postStatuses(payload: ReturnType<typeof buildStatusesWebhook>): Promise<boolean> {
    if (webhookFault('malformed_item')) {
      const value = payload.entry[0]!.changes[0]!.value as unknown as { statuses: unknown[] };
      const at = Math.floor(Math.random() * (value.statuses.length + 1));
      value.statuses.splice(at, 0, malformedStatusItem(malformedCount++));
    }
    const delivered = await postWebhook(payload);
    if (delivered && webhookFault('redeliver')) await postWebhook(payload);
    return delivered;
  }

  /** Keeps a request open; if the client gives up first, nothing is answered. */
  function hold(res: Res, ms: number, then: () => void, onDropped?: () => void): void {
    const timer = later(ms, () => {
      if (!res.destroyed && !res.writableEnded) then();
    });
    res.once('close', () => {
      if (timer) {
        clearTimeout(timer);
        timers.delete(timer);
      }
      if (!res.writableEnded) onDropped?.();
    });
  }

  /**
   * Applies a fault. Returns true when it took over the answer; `proceed` is the normal answer,
   * used by the slow and timeout faults after their delay.
   */
  function applyFault(
    fault: SandboxFault,
    req: http.IncomingMessage,
    res: Res,
    proceed: () => void,
    onRejected: () => void,
  ): void {
    switch (fault) {
      case '429':
        onRejected();
        sendMetaError(res, { status: 429, code: 130429 });
        return;
      case '5xx':
        onRejected();
        if (Math.random() < 0.5) sendEmpty(res, 503);
        else sendMetaError(res, { status: 500, code: 131000, type: 'OAuthException' });
        return;
      case 'timeout':
        hold(res, timeoutHoldMs, proceed, onRejected);
        return;
      case 'slow':
        hold(res, 200 + Math.floor(Math.random() * 600), proceed, onRejected);
        return;
      case 'reset':
        onRejected();
        req.socket.destroy();
        return;
    }
  }

  function checkAuth(req: http.IncomingMessage, res: Res): boolean {
    const header = req.headers.authorization;
    if (header === `Bearer ${options.accessToken}`) return true;
    sendMetaError(res, {
      status: 401,
      code: 190,
      message: header ? undefined : 'An active access token must be used to query information',
    });
    return false;
  }

  function readBody(req: http.IncomingMessage, res: Res, then: (text: string) => void): void {
    let text = '';
    let tooLarge = false;
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      if (tooLarge) return;
      text += chunk;
      if (text.length > MAX_BODY_BYTES) {
        tooLarge = true;
        sendMetaError(res, { status: 413, code: 100, details: 'request body too large' });
      }
    });
    req.on('end', () => {
      if (!tooLarge) then(text);
    });
  }

  // ---------------------------------------------------------------- send

  /** Meta's checks on the body; the detail never repeats the recipient. */
  function validateSend(body: unknown): { to: string } | { problem: string } {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      return { problem: 'body must be a JSON object' };
    }
    const b = body as Record<string, unknown>;
    if (b.messaging_product !== 'whatsapp')
      return { problem: 'messaging_product must be whatsapp' };
    if (b.recipient_type !== undefined && b.recipient_type !== 'individual') {
      return { problem: 'recipient_type must be individual' };
    }
    if (typeof b.to !== 'string' || !/^\d{7,15}$/.test(b.to)) {
      return { problem: 'to must be the recipient number in digits, without +' };
    }
    if (b.type === 'template') {
      const t = b.template as Record<string, unknown> | undefined;
      if (typeof t !== 'object' || t === null) return { problem: 'template is required' };
      if (typeof t.name !== 'string' || t.name.length === 0) {
        return { problem: 'template.name is required' };
      }
      const language = t.language as Record<string, unknown> | undefined;
      if (typeof language?.code !== 'string' || language.code.length === 0) {
        return { problem: 'template.language.code is required' };
      }
      if (t.components !== undefined && !Array.isArray(t.components)) {
        return { problem: 'template.components must be an array' };
      }
      return { to: b.to };
    }
    if (b.type === 'text') {
      const t = b.text as Record<string, unknown> | undefined;
      if (typeof t?.body !== 'string' || t.body.length === 0 || t.body.length > 4096) {
        return { problem: 'text.body must be 1 to 4096 characters' };
      }
      return { to: b.to };
    }
    return { problem: 'type must be template or text' };
  }

  function handleSend(req: http.IncomingMessage, res: Res, phoneNumberId: string): void {
    stats.sendsReceived++;
    const rejected = () => {
      stats.rejected++;
    };
    if (!checkAuth(req, res)) {
      rejected();
      return;
    }
    if (phoneNumberId !== options.phoneNumberId) {
      rejected();
      sendMetaError(res, {
        status: 400,
        code: 100,
        subcode: 33,
        message: `Unsupported post request. Object with ID '${phoneNumberId}' does not exist, cannot be loaded due to missing permissions, or does not support this operation`,
      });
      return;
    }
    readBody(req, res, (text) => {
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        rejected();
        return sendMetaError(res, { status: 400, code: 100, details: 'request body is not JSON' });
      }
      const checked = validateSend(body);
      if ('problem' in checked) {
        rejected();
        return sendMetaError(res, { status: 400, code: 100, details: checked.problem });
      }
      const to = checked.to;
      const attempt = (attempts.get(to) ?? 0) + 1;
      attempts.set(to, attempt);

      const special = SANDBOX_TEST_NUMBERS[`+${to}`];
      if (special?.behaviour === 'username_user') return accept(res, to, false, true);
      if (special && (!special.once || attempt === 1)) {
        if (special.behaviour === 'timeout_once') {
          return hold(res, timeoutHoldMs, () => accept(res, to, false), rejected);
        }
        if (special.behaviour === 'failed_webhook') return accept(res, to, true);
        rejected();
        if (special.code === undefined) return sendEmpty(res, special.httpStatus ?? 500);
        return sendMetaError(res, { status: special.httpStatus ?? 400, code: special.code });
      }
      if (special) return accept(res, to, false);

      const fault = pickFault();
      if (fault) return applyFault(fault, req, res, () => accept(res, to, false), rejected);
      accept(res, to, false);
    });
  }

  function accept(res: Res, to: string, failLater: boolean, usernameUser = false): void {
    const wamid = `wamid.${nextId()}`;
    stats.accepted++;
    sendJson(res, 200, {
      messaging_product: 'whatsapp',
      contacts: [{ input: to, wa_id: to }],
      messages: [{ id: wamid, message_status: 'accepted' }],
    });
    if (webhookUrl) scheduleStatuses(wamid, to, failLater, usernameUser);
  }

  // ---------------------------------------------------------------- webhooks

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
  ): void {
    let steps: { status: WebhookStatus; at: number }[] = failLater
      ? [{ status: 'failed', at: delays.sent }]
      : [
          { status: 'sent', at: delays.sent },
          { status: 'delivered', at: delays.delivered },
          { status: 'read', at: delays.read },
        ];
    if (!failLater && webhookFault('out_of_order')) {
      // Newest first, at the same moments: read, then delivered, then a late sent.
      steps = steps.map((step, index) => ({
        status: steps[steps.length - 1 - index]!.status,
        at: step.at,
      }));
    }
    const run = (index: number, previousAt: number): void => {
      const step = steps[index];
      if (!step) return;
      later(Math.max(0, step.at - previousAt), () => {
        queueStatus(
          {
            phoneNumberId: options.phoneNumberId,
            wamid,
            status: step.status,
            // A username user's number is withheld: the statuses name only the BSUID.
            recipientId: usernameUser ? '' : recipientId,
            ...(usernameUser ? { recipientUserId: sandboxBsuid(recipientId) } : {}),
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
    else batchTimer ??= later(webhookBatchMs, flushStatuses);
  }

  function flushStatuses(): void {
    if (batchTimer) {
      clearTimeout(batchTimer);
      timers.delete(batchTimer);
      batchTimer = undefined;
    }
    const items = batch;
    batch = [];
    if (items.length === 0) return;
    void postStatuses(buildStatusesWebhook(items.map((item) => item.input))).then(() => {
      for (const item of items) item.done();
    });
  }

  async function postWebhook(payload: unknown): Promise<boolean> {
    const body = JSON.stringify(payload);
    const signature = signWebhookBody(body, options.appSecret);
    let lastProblem = '';
    for (let attempt = 0; attempt <= WEBHOOK_RETRY_DELAYS_MS.length; attempt++) {
      const url = webhookUrl;
      if (stopped || !url) return false;
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
      const wait = WEBHOOK_RETRY_DELAYS_MS[attempt];
      if (stopped) return false;
      if (wait !== undefined) await sleep(wait);
    }
    if (stopped) return false;
    stats.webhooksFailed++;
    // First failure and then every hundredth, so a dead receiver does not flood the log.
    if (stats.webhooksFailed % 100 === 1) {
      log(
        `sandbox: webhook delivery failed (${lastProblem}); ${stats.webhooksFailed} failed so far`,
      );
    }
    return false;
  }

  // ---------------------------------------------------------------- read-only Graph calls

  /**
   * The phone number node. Like Graph, it answers the requested fields plus `id`; the tier field
   * follows the version: `messaging_limit_tier` exists up to v23.0, from v24.0 it is
   * `whatsapp_business_manager_messaging_limit` and asking for the old name is an error.
   */
  function handleProbe(res: Res, version: string, query: URLSearchParams): void {
    const major = Number(version.slice(1).split('.')[0]);
    const known: Record<string, unknown> = {
      display_phone_number: SANDBOX_DISPLAY_NUMBER,
      verified_name: 'whatsapp-notif sandbox',
      quality_rating: account.qualityRating,
      throughput: { level: account.throughputLevel },
      status: 'CONNECTED',
      account_mode: 'LIVE',
    };
    if (major <= 23) known.messaging_limit_tier = account.messagingLimit;
    else known.whatsapp_business_manager_messaging_limit = account.messagingLimit;
    const fields = query.get('fields');
    if (!fields) {
      // Without `fields`, the answer the probe has always had.
      const { display_phone_number, quality_rating, throughput } = known;
      sendJson(res, 200, {
        display_phone_number,
        quality_rating,
        throughput,
        id: options.phoneNumberId,
      });
      return;
    }
    const answer: Record<string, unknown> = {};
    for (const field of fields
      .split(',')
      .map((f) => f.trim())
      .filter(Boolean)) {
      if (field === 'id') continue;
      if (!(field in known)) {
        sendMetaError(res, {
          status: 400,
          code: 100,
          message: `Tried accessing nonexisting field (${field}) on node type (WhatsAppBusinessPhoneNumber)`,
        });
        return;
      }
      answer[field] = known[field];
    }
    sendJson(res, 200, { ...answer, id: options.phoneNumberId });
  }

  /** `GET /{waba-id}/subscribed_apps`: empty `data` means no webhooks reach any app for the WABA. */
  function handleSubscribedApps(res: Res): void {
    const data = account.appSubscribed
      ? [
          {
            whatsapp_business_api_data: {
              id: SANDBOX_APP_ID,
              name: 'whatsapp-notif sandbox',
              link: `https://www.facebook.com/games/?app_id=${SANDBOX_APP_ID}`,
            },
            ...(account.overrideCallbackUri
              ? { override_callback_uri: account.overrideCallbackUri }
              : {}),
          },
        ]
      : [];
    sendJson(res, 200, { data });
  }

  function handleTemplates(req: http.IncomingMessage, res: Res, query: URLSearchParams): void {
    const limit = Math.min(Math.max(Number(query.get('limit')) || 25, 1), 100);
    const after = query.get('after');
    const start = after ? Number(Buffer.from(after, 'base64url').toString()) || 0 : 0;
    const data = SANDBOX_TEMPLATES.slice(start, start + limit);
    const end = start + data.length;
    const cursors = {
      before: Buffer.from(String(start)).toString('base64url'),
      after: Buffer.from(String(end)).toString('base64url'),
    };
    const paging: Record<string, unknown> = { cursors };
    if (end < SANDBOX_TEMPLATES.length) {
      const next = new URL(req.url ?? '/', `http://${req.headers.host ?? host}`);
      next.searchParams.set('after', cursors.after);
      next.searchParams.set('limit', String(limit));
      paging.next = next.toString();
    }
    sendJson(res, 200, { data, paging });
  }

  function handleDebugToken(res: Res, query: URLSearchParams): void {
    const expired =
      account.tokenExpiresAt > 0 && account.tokenExpiresAt <= Math.floor(Date.now() / 1000);
    const valid = query.get('input_token') === options.accessToken && !expired;
    const data: Record<string, unknown> = {
      app_id: SANDBOX_APP_ID,
      type: 'SYSTEM_USER',
      application: 'whatsapp-notif sandbox',
      data_access_expires_at: account.tokenExpiresAt,
      expires_at: account.tokenExpiresAt,
      is_valid: valid,
      issued_at: 1_700_000_000,
      scopes: [...account.scopes],
      granular_scopes: account.scopes.map((scope) => ({ scope })),
      user_id: '100000000000003',
    };
    if (!valid) {
      data.error = { code: 190, message: 'Invalid OAuth access token - Cannot parse access token' };
    }
    sendJson(res, 200, { data });
  }

  /** Read-only calls honour the faults too, so chaos runs make probes fail as sends do. */
  function readOnly(req: http.IncomingMessage, res: Res, answer: () => void): void {
    if (!checkAuth(req, res)) return;
    const fault = pickFault();
    if (fault) {
      applyFault(fault, req, res, answer, () => {});
      return;
    }
    answer();
  }

  // ---------------------------------------------------------------- control

  function snapshot(): SandboxStats {
    return { ...stats, byRecipient: Object.fromEntries(attempts) };
  }

  function setFaults(f: { rate: number; kinds?: SandboxFault[] }): void {
    faultRate = clampRate(f.rate);
    if (f.kinds?.length) faultKinds = [...f.kinds];
  }

  function setAccount(changes: Partial<SandboxAccount>): void {
    account = { ...account, ...changes };
  }

  function reset(): void {
    account = { ...DEFAULT_ACCOUNT, ...options.account };
    Object.assign(stats, freshStats());
    attempts.clear();
    faultRate = clampRate(options.faultRate ?? 0);
    faultKinds = options.faultKinds?.length ? [...options.faultKinds] : [...SANDBOX_FAULTS];
  }

  function handleControl(req: http.IncomingMessage, res: Res, path: string): void {
    if (req.method === 'GET' && path === '/_sandbox/stats') {
      sendJson(res, 200, { ...snapshot(), faults: { rate: faultRate, kinds: faultKinds } });
      return;
    }
    if (req.method === 'POST' && path === '/_sandbox/reset') {
      reset();
      sendJson(res, 200, { ok: true });
      return;
    }
    if (req.method !== 'POST') {
      sendJson(res, 404, { error: 'unknown sandbox endpoint' });
      return;
    }
    readBody(req, res, (text) => {
      let body: Record<string, unknown>;
      try {
        const parsed: unknown = JSON.parse(text || '{}');
        body =
          typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : {};
      } catch {
        return sendJson(res, 400, { error: 'body is not JSON' });
      }
      if (path === '/_sandbox/faults') {
        const kinds = body.kinds;
        const validKinds =
          kinds === undefined ||
          (Array.isArray(kinds) &&
            kinds.every(
              (k) =>
                SANDBOX_FAULTS.includes(k as SandboxFault) || isWebhookFault(k as SandboxFault),
            ));
        if (typeof body.rate !== 'number' || body.rate < 0 || body.rate > 1 || !validKinds) {
          return sendJson(res, 400, {
            error: `expected {rate: 0..1, kinds?: (${[...SANDBOX_FAULTS, ...WEBHOOK_FAULTS].join('|')})[]}`,
          });
        }
        setFaults({ rate: body.rate, kinds: kinds as SandboxFault[] | undefined });
        return sendJson(res, 200, { rate: faultRate, kinds: faultKinds });
      }
      if (path === '/_sandbox/account') {
        const problem = accountProblem(body);
        if (problem) return sendJson(res, 400, { error: problem });
        setAccount(body as Partial<SandboxAccount>);
        return sendJson(res, 200, account);
      }
      if (path === '/_sandbox/webhook') {
        if (body.url !== null && typeof body.url !== 'string') {
          return sendJson(res, 400, { error: 'expected {url: string | null}' });
        }
        webhookUrl = body.url ?? undefined;
        return sendJson(res, 200, { url: webhookUrl ?? null });
      }
      if (path === '/_sandbox/inbound') {
        const userId = optionalString(body.userId);
        if (typeof body.from !== 'string' || typeof body.text !== 'string' || userId === false) {
          return sendJson(res, 400, {
            error:
              'expected {from: string ("" for a username user), text: string, userId?: string}',
          });
        }
        void sendInboundText({ from: body.from, text: body.text, userId }).then((delivered) =>
          sendJson(res, delivered ? 200 : 502, { delivered }),
        );
        return;
      }
      if (path === '/_sandbox/preferences') {
        const from = optionalString(body.from);
        const userId = optionalString(body.userId);
        if (
          (body.value !== 'stop' && body.value !== 'resume') ||
          from === false ||
          userId === false ||
          (!from && !userId)
        ) {
          return sendJson(res, 400, {
            error:
              'expected {value: "stop"|"resume", from?: string, userId?: string} naming someone',
          });
        }
        const payload = buildUserPreferencesWebhook({
          phoneNumberId: options.phoneNumberId,
          waId: from?.replace(/\D/g, ''),
          userId,
          value: body.value,
        });
        void postWebhook(payload).then((delivered) =>
          sendJson(res, delivered ? 200 : 502, { delivered }),
        );
        return;
      }
      if (path === '/_sandbox/identity') {
        const fields = ['from', 'fromUserId', 'newNumber', 'newUserId'].map((k) =>
          optionalString(body[k]),
        );
        const [from, fromUserId, newNumber, newUserId] = fields;
        if (
          (body.type !== 'user_changed_number' && body.type !== 'user_changed_user_id') ||
          fields.includes(false)
        ) {
          return sendJson(res, 400, {
            error:
              'expected {type: "user_changed_number"|"user_changed_user_id", from?, fromUserId?, newNumber?, newUserId?}',
          });
        }
        const payload = buildIdentityChangeWebhook({
          phoneNumberId: options.phoneNumberId,
          type: body.type,
          from: (from || undefined)?.replace(/\D/g, ''),
          fromUserId: fromUserId || undefined,
          newWaId: (newNumber || undefined)?.replace(/\D/g, ''),
          newUserId: newUserId || undefined,
          id: `wamid.IN${nextId()}`,
        });
        void postWebhook(payload).then((delivered) =>
          sendJson(res, delivered ? 200 : 502, { delivered }),
        );
        return;
      }
      if (path === '/_sandbox/events') {
        const fields: readonly string[] = [...EVENT_FIELDS, 'errors'];
        const value = body.value;
        if (
          typeof body.field !== 'string' ||
          !fields.includes(body.field) ||
          (value !== undefined &&
            (typeof value !== 'object' || value === null || Array.isArray(value)))
        ) {
          return sendJson(res, 400, {
            error: `expected {field: ${fields.join('|')}, value?: object}`,
          });
        }
        void postWebhook(
          buildEventWebhook({
            field: body.field as (typeof EVENT_FIELDS)[number] | 'errors',
            phoneNumberId: options.phoneNumberId,
            ...(value ? { value: value as Record<string, unknown> } : {}),
          }),
        ).then((delivered) => sendJson(res, delivered ? 200 : 502, { delivered }));
        return;
      }
      sendJson(res, 404, { error: 'unknown sandbox endpoint' });
    });
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

  // ---------------------------------------------------------------- routing

  function route(req: http.IncomingMessage, res: Res): void {
    const raw = req.url ?? '/';
    const q = raw.indexOf('?');
    const path = q === -1 ? raw : raw.slice(0, q);
    if (path.startsWith('/_sandbox/')) {
      handleControl(req, res, path);
      return;
    }

    const parts = path.split('/').filter((p) => p.length > 0);
    const [version, node, edge, extra] = parts;
    if (!version || !/^v\d+\.\d+$/.test(version) || !node || extra !== undefined) {
      sendMetaError(res, { status: 400, code: 2500, message: `Unknown path components` });
      return;
    }
    const query = new URLSearchParams(q === -1 ? '' : raw.slice(q + 1));
    if (req.method === 'POST' && edge === 'messages') {
      handleSend(req, res, node);
      return;
    }
    if (req.method === 'POST' && edge === 'subscribed_apps') {
      // Subscribing is how Meta's docs fix an empty subscribed_apps; the sandbox remembers it.
      if (!checkAuth(req, res)) return;
      setAccount({ appSubscribed: true });
      sendJson(res, 200, { success: true });
      return;
    }
    if (req.method !== 'GET') {
      sendMetaError(res, { status: 400, code: 100, message: 'Unsupported request method' });
      return;
    }
    if (node === 'debug_token' && edge === undefined) {
      readOnly(req, res, () => handleDebugToken(res, query));
      return;
    }
    if (edge === 'message_templates') {
      readOnly(req, res, () => handleTemplates(req, res, query));
      return;
    }
    if (edge === 'subscribed_apps') {
      readOnly(req, res, () => handleSubscribedApps(res));
      return;
    }
    if (edge === undefined && node === options.phoneNumberId) {
      readOnly(req, res, () => handleProbe(res, version, query));
      return;
    }
    sendMetaError(res, {
      status: 400,
      code: 100,
      subcode: 33,
      message: `Unsupported get request. Object with ID '${node}' does not exist, cannot be loaded due to missing permissions, or does not support this operation`,
    });
  }

  const server = http.createServer((req, res) => {
    try {
      route(req, res);
    } catch (error) {
      log(`sandbox: handler error ${(error as Error).name}`);
      sendEmpty(res, 500);
    }
  });
  // Longer than the clients' keep-alive, so the server never closes a socket a client is reusing.
  server.keepAliveTimeout = 65_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  log(`sandbox: WhatsApp Cloud API sandbox listening on ${url}`);

  return {
    url,
    port,
    setWebhookUrl(next) {
      webhookUrl = next;
    },
    setFaults,
    setAccount,
    stats: snapshot,
    reset,
    sendInboundText,
    async stop() {
      if (stopped) return;
      stopped = true;
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await webhookAgent.destroy();
    },
  };
}

/** Why a `/_sandbox/account` body is refused, or undefined when every field has its type. */
function accountProblem(body: Record<string, unknown>): string | undefined {
  const types: Record<keyof SandboxAccount, (v: unknown) => boolean> = {
    tokenExpiresAt: (v) => typeof v === 'number' && Number.isInteger(v) && v >= 0,
    scopes: (v) => Array.isArray(v) && v.every((s) => typeof s === 'string'),
    appSubscribed: (v) => typeof v === 'boolean',
    overrideCallbackUri: (v) => v === null || (typeof v === 'string' && URL.canParse(v)),
    qualityRating: (v) => v === 'GREEN' || v === 'YELLOW' || v === 'RED' || v === 'UNKNOWN',
    messagingLimit: (v) => typeof v === 'string' && /^TIER_\w+$/.test(v),
    throughputLevel: (v) => v === 'STANDARD' || v === 'HIGH',
  };
  for (const [key, value] of Object.entries(body)) {
    const valid = types[key as keyof SandboxAccount];
    if (!valid) return `unknown field ${key}; fields: ${Object.keys(types).join(', ')}`;
    if (!valid(value)) return `${key} has the wrong type or value`;
  }
  return undefined;
}

function clampRate(rate: number): number {
  if (!Number.isFinite(rate)) return 0;
  return Math.min(1, Math.max(0, rate));
}

/** A string field that may be left out: the string, undefined, or false when it has another type. */
function optionalString(value: unknown): string | undefined | false {
  if (value === undefined || value === null) return undefined;
  return typeof value === 'string' ? value : false;
}
