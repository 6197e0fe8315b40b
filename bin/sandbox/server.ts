/**
 * A local stand-in for the WhatsApp Cloud API that answers like Graph API and posts signed status
 * webhooks: the HTTP server, the send edge and the `/_sandbox/*` control endpoints. Faults, webhooks,
 * the test numbers and the account live beside it (faults.ts, webhooks.ts, test-numbers.ts, account.ts).
 */
import http from 'node:http';
import {
  buildEventWebhook,
  buildIdentityChangeWebhook,
  buildUserPreferencesWebhook,
  EVENT_FIELDS,
} from '#core/whatsapp/webhook-payload.ts';
import {
  accountProblem,
  DEFAULT_ACCOUNT,
  handleDebugToken,
  handleProbe,
  handleSubscribedApps,
  NUMBER_FIELDS,
  numberChangeWebhooks,
  type SandboxAccount,
} from './account.ts';
import {
  applyFault,
  createFaults,
  type FaultPlan,
  type FaultState,
  faultPlanProblem,
  type SandboxFault,
} from './faults.ts';
import {
  createTimers,
  nextId,
  type Req,
  type Res,
  readBody,
  sendEmpty,
  sendJson,
  sendMetaError,
} from './http.ts';
import {
  createTemplateStore,
  handleTemplates,
  type SandboxTemplate,
  templateChangeProblem,
  templateSendProblem,
} from './templates.ts';
import { SANDBOX_TEST_NUMBERS } from './test-numbers.ts';
import { createWebhooks } from './webhooks.ts';

export type { SandboxAccount } from './account.ts';
export type { SandboxTemplate } from './templates.ts';

/** A test's change to a template; the sandbox then posts the webhook Meta would. */
export interface TemplateChange {
  name: string;
  language: string;
  /** A new status: posts message_template_status_update with it as the event. */
  status?: string;
  /** A new category: posts template_category_update (completed). */
  category?: string;
  /** A new quality score: posts message_template_quality_update. */
  quality?: string;
  /** The WABA id the webhook's entry names (the sandbox lists its templates under any). */
  wabaId?: string;
}
export type { FaultPlan, SandboxFault, WebhookFault } from './faults.ts';

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
  /** Waits between webhook retries; default a quick two (see webhooks.ts for the Meta-like one). */
  webhookRetryDelaysMs?: readonly number[];
  /**
   * Share of ordinary sends (and probes) that get one of `faultKinds`, 0..1, until changed.
   * Default 0. setFaults can also count a window in sends (FaultPlan).
   */
  faultRate?: number;
  /** Default: the send kinds (the webhook kinds are opt-in). */
  faultKinds?: SandboxFault[];
  /** How long a 'timeout' keeps a request open before answering. Default 15000 ms. */
  timeoutHoldMs?: number;
  /** Only notable events (start, webhook failures); nothing per request. */
  logger?: (line: string) => void;
  /** What the account looks like to read-only calls (debug_token, the number, subscribed_apps). */
  account?: Partial<SandboxAccount>;
}

export interface SandboxStats {
  /** Every POST to the messages edge, including rejected ones. */
  sendsReceived: number;
  /** Sends answered with a wamid. */
  accepted: number;
  /** Sends answered with an error, or dropped (reset, abandoned timeout). */
  rejected: number;
  /** Of the rejected sends, those failed by an injected fault (not by a test number). */
  faulted: number;
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
  /** Replaces the fault plan; with `nextSends` or `untilFailed` it ends itself (see FaultPlan). */
  setFaults(plan: FaultPlan): void;
  /** The fault plan in force, with what is left of its counts. */
  faults(): FaultState;
  /** Changes what debug_token, the number and subscribed_apps report (reset() restores it). */
  setAccount(changes: Partial<SandboxAccount>): void;
  /**
   * Changes a template (reset() restores the catalogue) and posts the matching webhooks; resolves
   * with the template and whether every webhook was taken, or undefined for an unknown template.
   */
  changeTemplate(
    change: TemplateChange,
  ): Promise<{ template: SandboxTemplate; delivered: boolean } | undefined>;
  stats(): SandboxStats;
  /** Zeroes the stats, forgets per-recipient attempts, restores the faults and account given at start. */
  reset(): void;
  /** Posts a signed inbound text message webhook, as when a user writes to the business. */
  /** `from: ''` with a `userId` is a username user whose number Meta withholds. */
  sendInboundText(input: { from: string; text: string; userId?: string }): Promise<boolean>;
  stop(): Promise<void>;
}

export async function startSandbox(options: SandboxOptions): Promise<SandboxHandle> {
  const host = options.host ?? '127.0.0.1';
  const timeoutHoldMs = options.timeoutHoldMs ?? 15_000;
  const log = options.logger ?? (() => {});
  const initialPlan: FaultPlan = {
    rate: options.faultRate ?? 0,
    ...(options.faultKinds ? { kinds: options.faultKinds } : {}),
  };
  const faults = createFaults(initialPlan);
  let account: SandboxAccount = { ...DEFAULT_ACCOUNT, ...options.account };
  const templates = createTemplateStore();

  const timers = createTimers();
  const webhooks = createWebhooks({
    appSecret: options.appSecret,
    phoneNumberId: options.phoneNumberId,
    url: options.webhookUrl,
    statusDelaysMs: options.statusDelaysMs ?? { sent: 50, delivered: 150, read: 300 },
    batchMs: options.webhookBatchMs ?? 20,
    ...(options.webhookRetryDelaysMs ? { retryDelaysMs: options.webhookRetryDelaysMs } : {}),
    timers,
    log,
    fault: (kind) => faults.forWebhook(kind),
  });
  const stats = freshStats();
  const attempts = new Map<string, number>();

  function freshStats() {
    return { sendsReceived: 0, accepted: 0, rejected: 0, faulted: 0 };
  }

  function checkAuth(req: Req, res: Res): boolean {
    const header = req.headers.authorization;
    if (header === `Bearer ${options.accessToken}`) return true;
    sendMetaError(res, {
      status: 401,
      code: 190,
      message: header ? undefined : 'An active access token must be used to query information',
    });
    return false;
  }

  // ---------------------------------------------------------------- send

  type TemplateBody = { name: string; language: string; components?: unknown[] };
  function validateSend(
    body: unknown,
  ): { to: string; callbackData?: string; template?: TemplateBody } | { problem: string } {
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
    const callback = b.biz_opaque_callback_data;
    if (callback !== undefined && (typeof callback !== 'string' || callback.length > 512)) {
      return { problem: 'biz_opaque_callback_data must be a string of at most 512 characters' };
    }
    // Echoed on every status of the message, as Meta does; absent when the request has none.
    const echo = callback ? { callbackData: callback } : {};
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
      return {
        to: b.to,
        ...echo,
        template: {
          name: t.name,
          language: language.code,
          ...(t.components ? { components: t.components as unknown[] } : {}),
        },
      };
    }
    if (b.type === 'text') {
      const t = b.text as Record<string, unknown> | undefined;
      if (typeof t?.body !== 'string' || t.body.length === 0 || t.body.length > 4096) {
        return { problem: 'text.body must be 1 to 4096 characters' };
      }
      return { to: b.to, ...echo };
    }
    return { problem: 'type must be template or text' };
  }

  function handleSend(req: Req, res: Res, phoneNumberId: string): void {
    stats.sendsReceived++;
    const rejected = () => {
      stats.rejected++;
    };
    const faultFailed = () => {
      stats.rejected++;
      stats.faulted++;
      faults.sendFailed();
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
      // Meta checks the template (exists, approved, parameters) before anything else about the send.
      const templateProblem = checked.template
        ? templateSendProblem(templates, checked.template)
        : undefined;
      if (templateProblem) {
        rejected();
        return sendMetaError(res, templateProblem);
      }
      const to = checked.to;
      const accept = (failLater: boolean, usernameUser = false) =>
        acceptSend(res, to, failLater, usernameUser, checked.callbackData);
      const attempt = (attempts.get(to) ?? 0) + 1;
      attempts.set(to, attempt);

      const special = SANDBOX_TEST_NUMBERS[`+${to}`];
      if (special?.behaviour === 'username_user') return accept(false, true);
      if (special && (!special.once || attempt === 1)) {
        if (special.behaviour === 'timeout_once') {
          return timers.hold(res, timeoutHoldMs, () => accept(false), rejected);
        }
        if (special.behaviour === 'failed_webhook') return accept(true);
        rejected();
        if (special.code === undefined) return sendEmpty(res, special.httpStatus ?? 500);
        return sendMetaError(res, { status: special.httpStatus ?? 400, code: special.code });
      }
      if (special) return accept(false);

      const fault = faults.forSend();
      if (fault) {
        const proceed = () => accept(false);
        return applyFault(fault, req, res, timers, timeoutHoldMs, proceed, faultFailed);
      }
      accept(false);
    });
  }

  function acceptSend(
    res: Res,
    to: string,
    failLater: boolean,
    usernameUser: boolean,
    callbackData: string | undefined,
  ): void {
    const wamid = `wamid.${nextId()}`;
    stats.accepted++;
    sendJson(res, 200, {
      messaging_product: 'whatsapp',
      contacts: [{ input: to, wa_id: to }],
      messages: [{ id: wamid, message_status: 'accepted' }],
    });
    if (webhooks.url()) {
      webhooks.scheduleStatuses(wamid, to, failLater, usernameUser, callbackData);
    }
  }

  /** Read-only calls honour the faults too, so chaos runs make probes fail as sends do. */
  function readOnly(req: Req, res: Res, answer: () => void): void {
    if (!checkAuth(req, res)) return;
    const fault = faults.forRead();
    if (fault) {
      applyFault(fault, req, res, timers, timeoutHoldMs, answer, () => {});
      return;
    }
    answer();
  }

  // ---------------------------------------------------------------- control

  function snapshot(): SandboxStats {
    return { ...stats, ...webhooks.counts(), byRecipient: Object.fromEntries(attempts) };
  }

  function setAccount(changes: Partial<SandboxAccount>): void {
    account = { ...account, ...changes };
  }

  function reset(): void {
    account = { ...DEFAULT_ACCOUNT, ...options.account };
    templates.reset();
    Object.assign(stats, freshStats());
    webhooks.resetCounts();
    attempts.clear();
    faults.reset();
  }

  /** Applies a test's template change and posts what Meta would post about it. */
  async function changeTemplate(change: TemplateChange) {
    const template = templates.find(change.name, change.language);
    if (!template) return undefined;
    const common = {
      message_template_id: Number(template.id),
      message_template_name: template.name,
      // Webhooks write the language with a hyphen (en-US), the API with an underscore.
      message_template_language: template.language.replace('_', '-'),
    };
    const posts: Parameters<typeof buildEventWebhook>[0][] = [];
    const wabaId = change.wabaId ? { wabaId: change.wabaId } : {};
    if (change.category && change.category !== template.category) {
      const previous = template.category;
      template.category = change.category;
      posts.push({
        field: 'template_category_update',
        phoneNumberId: options.phoneNumberId,
        ...wabaId,
        value: { ...common, previous_category: previous, new_category: change.category },
      });
    }
    if (change.quality && change.quality !== template.quality_score.score) {
      const previous = template.quality_score.score;
      template.quality_score = { score: change.quality };
      posts.push({
        field: 'message_template_quality_update',
        phoneNumberId: options.phoneNumberId,
        ...wabaId,
        value: { ...common, previous_quality_score: previous, new_quality_score: change.quality },
      });
    }
    if (change.status) {
      template.status = change.status;
      template.rejected_reason = change.status === 'REJECTED' ? 'INVALID_FORMAT' : 'NONE';
      posts.push({
        field: 'message_template_status_update',
        phoneNumberId: options.phoneNumberId,
        ...wabaId,
        value: {
          ...common,
          event: change.status,
          reason: change.status === 'REJECTED' ? 'INVALID_FORMAT' : 'NONE',
          message_template_category: template.category,
        },
      });
    }
    let delivered = true;
    for (const post of posts)
      delivered = (await webhooks.post(buildEventWebhook(post))) && delivered;
    return { template, delivered };
  }

  function handleControl(req: Req, res: Res, path: string): void {
    if (req.method === 'GET' && path === '/_sandbox/stats') {
      sendJson(res, 200, { ...snapshot(), faults: faults.state() });
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
        const problem = faultPlanProblem(body);
        if (problem) return sendJson(res, 400, { error: problem });
        faults.set(body as unknown as FaultPlan);
        return sendJson(res, 200, faults.state());
      }
      if (path === '/_sandbox/account') {
        const problem = accountProblem(body);
        if (problem) return sendJson(res, 400, { error: problem });
        setAccount(body as Partial<SandboxAccount>);
        return sendJson(res, 200, account);
      }
      if (path === '/_sandbox/number') {
        // The number changes as Meta would change it, and Meta's webhooks for the change follow.
        const unknown = Object.keys(body).filter(
          (k) => !(NUMBER_FIELDS as readonly string[]).includes(k),
        );
        const problem = unknown.length
          ? `unknown field ${unknown[0]}; fields: ${NUMBER_FIELDS.join(', ')}`
          : accountProblem(body);
        if (problem) return sendJson(res, 400, { error: problem });
        const before = account;
        setAccount(body as Partial<SandboxAccount>);
        const sent = numberChangeWebhooks(before, account);
        void (async () => {
          let delivered = 0;
          for (const change of sent) {
            const payload = buildEventWebhook({ ...change, phoneNumberId: options.phoneNumberId });
            if (await webhooks.post(payload)) delivered += 1;
          }
          const events = sent.map((c) => String(c.value.event));
          sendJson(res, delivered === sent.length ? 200 : 502, { account, events, delivered });
        })();
        return;
      }
      if (path === '/_sandbox/templates') {
        const problem = templateChangeProblem(body);
        if (problem) return sendJson(res, 400, { error: problem });
        void changeTemplate(body as unknown as TemplateChange).then((changed) =>
          changed
            ? sendJson(res, changed.delivered ? 200 : 502, changed)
            : sendJson(res, 404, { error: 'no such template in that language' }),
        );
        return;
      }
      if (path === '/_sandbox/webhook') {
        if (body.url !== null && typeof body.url !== 'string') {
          return sendJson(res, 400, { error: 'expected {url: string | null}' });
        }
        webhooks.setUrl(body.url ?? undefined);
        return sendJson(res, 200, { url: webhooks.url() ?? null });
      }
      if (path === '/_sandbox/inbound') {
        const userId = optionalString(body.userId);
        if (typeof body.from !== 'string' || typeof body.text !== 'string' || userId === false) {
          return sendJson(res, 400, {
            error:
              'expected {from: string ("" for a username user), text: string, userId?: string}',
          });
        }
        void webhooks
          .sendInboundText({ from: body.from, text: body.text, userId })
          .then((delivered) => sendJson(res, delivered ? 200 : 502, { delivered }));
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
        return postAndAnswer(res, payload);
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
        return postAndAnswer(res, payload);
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
        const payload = buildEventWebhook({
          field: body.field as (typeof EVENT_FIELDS)[number] | 'errors',
          phoneNumberId: options.phoneNumberId,
          ...(value ? { value: value as Record<string, unknown> } : {}),
        });
        return postAndAnswer(res, payload);
      }
      sendJson(res, 404, { error: 'unknown sandbox endpoint' });
    });
  }

  /** Posts a control call's webhook and answers whether the receiver took it. */
  function postAndAnswer(res: Res, payload: unknown): void {
    void webhooks
      .post(payload)
      .then((delivered) => sendJson(res, delivered ? 200 : 502, { delivered }));
  }

  // ---------------------------------------------------------------- routing

  function route(req: Req, res: Res): void {
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
      readOnly(req, res, () => handleDebugToken(res, account, options.accessToken, query));
      return;
    }
    if (edge === 'message_templates') {
      readOnly(req, res, () => handleTemplates(req, res, query, host, templates));
      return;
    }
    if (edge === 'subscribed_apps') {
      readOnly(req, res, () => handleSubscribedApps(res, account));
      return;
    }
    if (edge === undefined && node === options.phoneNumberId) {
      readOnly(req, res, () => handleProbe(res, account, options.phoneNumberId, version, query));
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
    setWebhookUrl: webhooks.setUrl,
    setFaults: faults.set,
    faults: faults.state,
    setAccount,
    changeTemplate,
    stats: snapshot,
    reset,
    sendInboundText: webhooks.sendInboundText,
    async stop() {
      if (timers.stopped) return;
      timers.stop();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await webhooks.destroy();
    },
  };
}

/** A string field that may be left out: the string, undefined, or false when it has another type. */
function optionalString(value: unknown): string | undefined | false {
  if (value === undefined || value === null) return undefined;
  return typeof value === 'string' ? value : false;
}
