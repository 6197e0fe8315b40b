/** The HTTP plumbing the sandbox's parts share: Graph-shaped answers, body reading, ids and timers stop() can clear. */
import { randomBytes } from 'node:crypto';
import type http from 'node:http';

export type Res = http.ServerResponse;
export type Req = http.IncomingMessage;

export interface MetaErrorInput {
  status: number;
  code: number;
  message?: string;
  subcode?: number;
  details?: string;
  type?: string;
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
  132000: 'Number of parameters does not match the expected number of params',
  132001: 'Template name does not exist in the translation',
  132012: 'Parameter format does not match format in the created template',
  132015: 'Template is Paused',
  132016: 'Template is disabled',
};

const MAX_BODY_BYTES = 256 * 1024;

// Cheap unique ids at thousands per second: a random prefix per process plus a counter.
const idPrefix = randomBytes(9).toString('base64url');
let idCounter = 0;
export const nextId = (): string => `${idPrefix}${(idCounter++).toString(36).padStart(7, '0')}`;

export function sendJson(res: Res, status: number, body: unknown): void {
  if (res.destroyed || res.writableEnded) return;
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=UTF-8',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

export function sendMetaError(res: Res, e: MetaErrorInput): void {
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

export function sendEmpty(res: Res, status: number): void {
  if (res.destroyed || res.writableEnded) return;
  res.writeHead(status, { 'content-length': 0 });
  res.end();
}

export function readBody(req: Req, res: Res, then: (text: string) => void): void {
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

/** Every sandbox timer goes through one of these so stop() can clear them all; none start after it. */
export interface Timers {
  later(ms: number, fn: () => void): NodeJS.Timeout | undefined;
  sleep(ms: number): Promise<void>;
  /** Keeps a request open; if the client gives up first, nothing is answered and `onDropped` runs. */
  hold(res: Res, ms: number, then: () => void, onDropped?: () => void): void;
  clear(timer: NodeJS.Timeout | undefined): void;
  readonly stopped: boolean;
  stop(): void;
}

export function createTimers(): Timers {
  const timers = new Set<NodeJS.Timeout>();
  let stopped = false;
  const later = (ms: number, fn: () => void): NodeJS.Timeout | undefined => {
    if (stopped) return undefined;
    const timer = setTimeout(() => {
      timers.delete(timer);
      fn();
    }, ms);
    timers.add(timer);
    return timer;
  };
  const clear = (timer: NodeJS.Timeout | undefined) => {
    if (!timer) return;
    clearTimeout(timer);
    timers.delete(timer);
  };
  return {
    later,
    sleep: (ms) => new Promise((resolve) => later(ms, resolve)),
    hold(res, ms, then, onDropped) {
      const timer = later(ms, () => {
        if (!res.destroyed && !res.writableEnded) then();
      });
      res.once('close', () => {
        clear(timer);
        if (!res.writableEnded) onDropped?.();
      });
    },
    clear,
    get stopped() {
      return stopped;
    },
    stop() {
      stopped = true;
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
    },
  };
}
