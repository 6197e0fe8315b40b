/** The WhatsApp Cloud API client: plain HTTP over keep-alive connections, every failure returned classified. */

import http from 'node:http';
import https from 'node:https';
import { performance } from 'node:perf_hooks';
import type { ErrorClass } from '#core/model/error-class.ts';
import { maskPhone, maskPhonesIn } from '#core/platform/phone.ts';
import { currentSecret, type SecretValue } from '#core/platform/secrets.ts';
import { classifyGraphError } from '#core/whatsapp/classify-graph-error.ts';

export interface GraphClientConfig {
  /** e.g. https://graph.facebook.com, or the sandbox's URL. */
  apiUrl: string;
  /** Pinned Graph version, e.g. v25.0. */
  graphVersion: string;
  phoneNumberId: string;
  /**
   * A fixed token (tests, tools) or a reader of the current one, asked before every call so a
   * token rotated in Secrets Manager is used as soon as the reader's cache lets it through.
   */
  accessToken: SecretValue;
  /** Deadline for a whole call (connect, headers, body). Default 10000. */
  timeoutMs?: number;
  /** Keep-alive connections to the API origin. Default 64. */
  connections?: number;
  /** WhatsApp Business Account id; only template listing needs it. */
  wabaId?: string;
}

export type OutboundMessage =
  | {
      kind: 'template';
      /** E.164 with '+'. */
      to: string;
      template: { name: string; language: string; components?: unknown[] };
      /** Sent as `biz_opaque_callback_data`; Meta echoes it on every status of this message. */
      callbackData?: string;
    }
  | {
      kind: 'text';
      to: string;
      text: { body: string; previewUrl?: boolean };
      callbackData?: string;
    };

export interface GraphFailureResult {
  ok: false;
  errorClass: ErrorClass;
  /** Meta's `error.code`, when the answer had one. */
  code?: number;
  subcode?: number;
  httpStatus?: number;
  /** Set when no answer came back: 'timeout', 'ECONNREFUSED', 'ECONNRESET'… */
  networkError?: string;
  /** Meta's trace id, what Meta support asks for. */
  fbtraceId?: string;
  /** Safe to log: never holds the recipient's number or the access token. */
  message: string;
  latencyMs: number;
}

export type SendResult =
  | {
      ok: true;
      wamid: string;
      /** accepted | held_for_quality_assessment | paused: accepted is not delivered. */
      messageStatus: string;
      latencyMs: number;
    }
  | GraphFailureResult;

export type ProbeResult = {
  ok: boolean;
  errorClass?: ErrorClass;
  code?: number;
  httpStatus?: number;
  qualityRating?: string;
  throughputLevel?: string;
  /** The messaging limit tier (`TIER_250` …), from the field the pinned version has. */
  messagingLimit?: string;
  /** The number's status: CONNECTED, FLAGGED, RESTRICTED, … */
  status?: string;
  latencyMs: number;
};

export interface TemplateInfo {
  name: string;
  language: string;
  /** APPROVED, PENDING, REJECTED, PAUSED, DISABLED… */
  status: string;
  category?: string;
  id?: string;
  /** Only with `full`: Meta's components list, parameter format, quality score and rejection reason. */
  components?: unknown[];
  parameterFormat?: string;
  quality?: string;
  rejectedReason?: string;
}

export interface ListTemplatesOptions {
  /** Also read components, parameter_format, quality_score and rejected_reason (the registry). */
  full?: boolean;
  /** Pages of 100 read at most; default 5. */
  maxPages?: number;
}

export type TemplatesResult =
  | { ok: true; templates: TemplateInfo[]; truncated: boolean; latencyMs: number }
  | GraphFailureResult;

export type TokenStatusResult =
  | {
      ok: true;
      valid: boolean;
      /** null when Meta says 0: the token does not expire (system user tokens). */
      expiresAt: Date | null;
      scopes: string[];
      /** Meta's `data` object as it came. */
      data: Record<string, unknown>;
      latencyMs: number;
    }
  | GraphFailureResult;

export interface GraphClient {
  sendMessage(message: OutboundMessage): Promise<SendResult>;
  probe(): Promise<ProbeResult>;
  listTemplates(options?: ListTemplatesOptions): Promise<TemplatesResult>;
  tokenStatus(): Promise<TokenStatusResult>;
  close(): Promise<void>;
}

const MAX_TEMPLATE_PAGES = 5;
const MAX_MESSAGE_LENGTH = 300;

type Transport =
  | { kind: 'answer'; status: number; body: unknown; latencyMs: number }
  | { kind: 'network'; networkError: string; latencyMs: number };

interface MetaError {
  message?: string;
  code?: number;
  subcode?: number;
  details?: string;
  fbtraceId?: string;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function readMetaError(body: unknown): MetaError | undefined {
  if (!isRecord(body) || !isRecord(body.error)) return undefined;
  const e = body.error;
  const data = isRecord(e.error_data) ? e.error_data : undefined;
  return {
    message: typeof e.message === 'string' ? e.message : undefined,
    code: typeof e.code === 'number' ? e.code : undefined,
    subcode: typeof e.error_subcode === 'number' ? e.error_subcode : undefined,
    details: typeof data?.details === 'string' ? data.details : undefined,
    fbtraceId: typeof e.fbtrace_id === 'string' ? e.fbtrace_id : undefined,
  };
}

const TIMEOUT_CODES = new Set([
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CONNECT_TIMEOUT',
  'ETIMEDOUT',
]);

/** A short transport error name; never the error's message, which can hold the URL and its query. */
function networkErrorName(error: unknown): string {
  if (!isRecord(error) && !(error instanceof Error)) return 'network_error';
  const e = error as { name?: unknown; code?: unknown; cause?: unknown };
  if (e.name === 'TimeoutError' || e.name === 'AbortError') return 'timeout';
  if (typeof e.code === 'string') {
    if (TIMEOUT_CODES.has(e.code)) return 'timeout';
    if (e.code === 'UND_ERR_ABORTED') return 'timeout';
    if (e.code === 'UND_ERR_SOCKET') return 'ECONNRESET';
    return e.code;
  }
  if (e.cause) return networkErrorName(e.cause);
  return 'network_error';
}

/** The registry's fields of one listed template; absent ones stay absent. */
function fullTemplateFields(item: Record<string, unknown>): Partial<TemplateInfo> {
  const quality = isRecord(item.quality_score) ? item.quality_score.score : item.quality_score;
  return {
    ...(Array.isArray(item.components) ? { components: item.components } : {}),
    ...(typeof item.parameter_format === 'string'
      ? { parameterFormat: item.parameter_format }
      : {}),
    ...(typeof quality === 'string' ? { quality } : {}),
    ...(typeof item.rejected_reason === 'string' ? { rejectedReason: item.rejected_reason } : {}),
  };
}

/** Only digits, as Meta wants `to`. */
function toDigits(e164: string): string {
  return e164.replace(/\D/g, '');
}

export function createGraphClient(config: GraphClientConfig): GraphClient {
  const timeoutMs = config.timeoutMs ?? 10_000;
  const base = new URL(config.apiUrl.endsWith('/') ? config.apiUrl : `${config.apiUrl}/`);
  const version = config.graphVersion;
  // The tokens this client has sent, newest last: scrubbed from every message that leaves it.
  const tokensUsed: string[] = [];
  // Set by an auth failure, cleared by any other answer. While set, each call asks the reader to
  // read the secret again (it limits how often that reaches AWS): a token replaced after a refusal
  // is then used by the next call, for instance the first send after the probes close the circuit,
  // rather than once the cache's maximum age has passed.
  let tokenRefused = false;

  /** The token for the next call; undefined when the reader failed (the call is not made). */
  async function currentToken(): Promise<string | undefined> {
    try {
      const token =
        tokenRefused && typeof config.accessToken === 'function'
          ? await config.accessToken({ refresh: true })
          : await currentSecret(config.accessToken);
      if (tokensUsed.at(-1) !== token) {
        tokensUsed.push(token);
        if (tokensUsed.length > 2) tokensUsed.shift();
      }
      return token;
    } catch {
      return undefined;
    }
  }
  // node:http with a keep-alive agent: no dependency to bundle (undici alone was 0.7 MB of the
  // worker), and connections to Meta are reused across sends and invocations.
  const agentOptions = {
    keepAlive: true,
    keepAliveMsecs: 30_000,
    maxSockets: config.connections ?? 64,
    maxFreeSockets: config.connections ?? 64,
  };
  const agent =
    base.protocol === 'https:' ? new https.Agent(agentOptions) : new http.Agent(agentOptions);
  const transport = base.protocol === 'https:' ? https : http;

  function send(
    method: 'GET' | 'POST',
    url: URL,
    headers: Record<string, string>,
    body: string | undefined,
  ): Promise<{ status: number; text: string }> {
    return new Promise((resolve, reject) => {
      const req = transport.request(
        url,
        { method, agent, headers, signal: AbortSignal.timeout(timeoutMs) },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }),
          );
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  }

  /** Every message that leaves this module goes through here. */
  function scrub(text: string, recipientDigits?: string): string {
    let out = text;
    // Real tokens are long; a short test token would also match ordinary words.
    for (const token of tokensUsed) {
      if (token.length >= 16) out = out.split(token).join('[token]');
    }
    if (recipientDigits && recipientDigits.length >= 7) {
      out = out.split(recipientDigits).join(maskPhone(recipientDigits));
    }
    out = maskPhonesIn(out);
    return out.length > MAX_MESSAGE_LENGTH ? `${out.slice(0, MAX_MESSAGE_LENGTH)}…` : out;
  }

  async function call(
    method: 'GET' | 'POST',
    url: URL | ((token: string) => URL),
    body?: string,
  ): Promise<Transport> {
    const token = await currentToken();
    const started = performance.now();
    const elapsed = () => Math.round(performance.now() - started);
    if (token === undefined) {
      return { kind: 'network', networkError: 'token_unavailable', latencyMs: 0 };
    }
    try {
      const res = await send(
        method,
        typeof url === 'function' ? url(token) : url,
        {
          authorization: `Bearer ${token}`,
          accept: 'application/json',
          ...(body === undefined
            ? {}
            : {
                'content-type': 'application/json',
                'content-length': String(Buffer.byteLength(body)),
              }),
        },
        body,
      );
      const text = res.text;
      let parsed: unknown;
      try {
        parsed = text.length > 0 ? JSON.parse(text) : undefined;
      } catch {
        parsed = undefined;
      }
      tokenRefused =
        res.status >= 400 &&
        classifyGraphError({ httpStatus: res.status, code: readMetaError(parsed)?.code }) ===
          'auth';
      return { kind: 'answer', status: res.status, body: parsed, latencyMs: elapsed() };
    } catch (error) {
      return { kind: 'network', networkError: networkErrorName(error), latencyMs: elapsed() };
    }
  }

  function failure(answer: Transport, recipientDigits?: string): GraphFailureResult {
    if (answer.kind === 'network') {
      const message =
        answer.networkError === 'timeout'
          ? `no answer within ${timeoutMs} ms`
          : `network error ${answer.networkError}`;
      return {
        ok: false,
        errorClass: classifyGraphError({ networkError: answer.networkError }),
        networkError: answer.networkError,
        message,
        latencyMs: answer.latencyMs,
      };
    }
    const meta = readMetaError(answer.body);
    const code = meta?.code;
    const errorClass = classifyGraphError({ httpStatus: answer.status, code });
    let message: string;
    if (meta?.message) {
      const details = meta.details && !meta.message.includes(meta.details) ? meta.details : '';
      message = details ? `${meta.message}: ${details}` : meta.message;
    } else if (answer.status >= 200 && answer.status < 300) {
      message = `HTTP ${answer.status} with an unexpected body`;
    } else {
      message = `HTTP ${answer.status}${answer.body === undefined ? ' with no readable body' : ''}`;
    }
    return {
      ok: false,
      errorClass,
      code,
      subcode: meta?.subcode,
      httpStatus: answer.status,
      fbtraceId: meta?.fbtraceId,
      message: scrub(message, recipientDigits),
      latencyMs: answer.latencyMs,
    };
  }

  function graphUrl(path: string, query?: Record<string, string>): URL {
    const url = new URL(`${version}/${path}`, base);
    for (const [key, value] of Object.entries(query ?? {})) url.searchParams.set(key, value);
    return url;
  }

  function messageBody(message: OutboundMessage, to: string): string {
    if (message.kind === 'template') {
      const template: Record<string, unknown> = {
        name: message.template.name,
        // deterministic: Meta must use exactly this language, not fall back to another one.
        language: { code: message.template.language, policy: 'deterministic' },
      };
      if (message.template.components?.length) template.components = message.template.components;
      return JSON.stringify({
        messaging_product: 'whatsapp',
        recipient_type: 'individual',
        to,
        type: 'template',
        template,
        ...callback(message),
      });
    }
    return JSON.stringify({
      messaging_product: 'whatsapp',
      recipient_type: 'individual',
      to,
      type: 'text',
      text: { body: message.text.body, preview_url: message.text.previewUrl ?? false },
      ...callback(message),
    });
  }

  function callback(message: OutboundMessage) {
    return message.callbackData ? { biz_opaque_callback_data: message.callbackData } : {};
  }

  const messagesUrl = graphUrl(`${config.phoneNumberId}/messages`);

  async function sendMessage(message: OutboundMessage): Promise<SendResult> {
    const to = toDigits(message.to);
    const answer = await call('POST', messagesUrl, messageBody(message, to));
    if (answer.kind === 'answer' && answer.status >= 200 && answer.status < 300) {
      const body = answer.body;
      const first =
        isRecord(body) && Array.isArray(body.messages) && isRecord(body.messages[0])
          ? body.messages[0]
          : undefined;
      if (first && typeof first.id === 'string' && first.id.length > 0) {
        return {
          ok: true,
          wamid: first.id,
          messageStatus:
            typeof first.message_status === 'string' ? first.message_status : 'accepted',
          latencyMs: answer.latencyMs,
        };
      }
    }
    return failure(answer, to);
  }

  async function probe(): Promise<ProbeResult> {
    // The tier field was renamed in v24.0; asking a version for the other name is an error.
    const tierField =
      Number(version.replace(/^v/, '').split('.')[0]) >= 24
        ? 'whatsapp_business_manager_messaging_limit'
        : 'messaging_limit_tier';
    const answer = await call(
      'GET',
      graphUrl(config.phoneNumberId, {
        fields: `display_phone_number,quality_rating,throughput,status,${tierField}`,
      }),
    );
    if (answer.kind === 'answer' && answer.status >= 200 && answer.status < 300) {
      const body = isRecord(answer.body) ? answer.body : {};
      const throughput = isRecord(body.throughput) ? body.throughput : {};
      const text = (value: unknown) => (typeof value === 'string' ? value : undefined);
      return {
        ok: true,
        httpStatus: answer.status,
        qualityRating: text(body.quality_rating),
        throughputLevel: text(throughput.level),
        messagingLimit: text(body[tierField]),
        status: text(body.status),
        latencyMs: answer.latencyMs,
      };
    }
    const failed = failure(answer);
    return {
      ok: false,
      errorClass: failed.errorClass,
      code: failed.code,
      httpStatus: failed.httpStatus,
      latencyMs: failed.latencyMs,
    };
  }

  async function listTemplates(options: ListTemplatesOptions = {}): Promise<TemplatesResult> {
    if (!config.wabaId) {
      return {
        ok: false,
        errorClass: 'invalid_request',
        message: 'wabaId is not configured',
        latencyMs: 0,
      };
    }
    const templates: TemplateInfo[] = [];
    let latencyMs = 0;
    let url: URL | undefined = graphUrl(`${config.wabaId}/message_templates`, {
      fields: options.full
        ? 'id,name,language,status,category,components,parameter_format,quality_score,rejected_reason'
        : 'name,language,status,category',
      limit: '100',
    });
    const maxPages = options.maxPages ?? MAX_TEMPLATE_PAGES;
    for (let page = 0; page < maxPages && url; page++) {
      const answer = await call('GET', url);
      latencyMs += answer.latencyMs;
      if (answer.kind !== 'answer' || answer.status < 200 || answer.status >= 300) {
        return { ...failure(answer), latencyMs };
      }
      const body = isRecord(answer.body) ? answer.body : {};
      for (const item of Array.isArray(body.data) ? body.data : []) {
        if (!isRecord(item) || typeof item.name !== 'string') continue;
        templates.push({
          name: item.name,
          language: typeof item.language === 'string' ? item.language : '',
          status: typeof item.status === 'string' ? item.status : 'UNKNOWN',
          category: typeof item.category === 'string' ? item.category : undefined,
          id: typeof item.id === 'string' ? item.id : undefined,
          ...(options.full ? fullTemplateFields(item) : {}),
        });
      }
      url = nextPage(body);
    }
    return { ok: true, templates, truncated: url !== undefined, latencyMs };
  }

  /** Follows `paging.next` only on the API's own origin: the bearer token goes with each page. */
  function nextPage(body: Record<string, unknown>): URL | undefined {
    const paging = isRecord(body.paging) ? body.paging : undefined;
    if (typeof paging?.next !== 'string') return undefined;
    try {
      const next = new URL(paging.next);
      return next.origin === base.origin ? next : undefined;
    } catch {
      return undefined;
    }
  }

  async function tokenStatus(): Promise<TokenStatusResult> {
    const answer = await call('GET', (token) => graphUrl('debug_token', { input_token: token }));
    if (answer.kind === 'answer' && answer.status >= 200 && answer.status < 300) {
      const data = isRecord(answer.body) && isRecord(answer.body.data) ? answer.body.data : {};
      const expires = typeof data.expires_at === 'number' ? data.expires_at : 0;
      return {
        ok: true,
        valid: data.is_valid === true,
        expiresAt: expires > 0 ? new Date(expires * 1000) : null,
        scopes: Array.isArray(data.scopes)
          ? data.scopes.filter((s): s is string => typeof s === 'string')
          : [],
        data,
        latencyMs: answer.latencyMs,
      };
    }
    return failure(answer);
  }

  return {
    sendMessage,
    probe,
    listTemplates,
    tokenStatus,
    async close() {
      agent.destroy();
    },
  };
}
