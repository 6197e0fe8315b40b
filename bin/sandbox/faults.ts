/**
 * The sandbox's injected faults: which share of sends (and read-only calls) gets a 429, a 5xx, a
 * timeout, a slow answer or a reset, and for how long, counted in sends rather than seconds so a
 * run on a starved machine still sees its faults. The webhook kinds (a malformed item, a redelivery,
 * statuses newest first) are opt-in and drawn by webhooks.ts through `forWebhook`.
 */
import { type Req, type Res, sendEmpty, sendMetaError, type Timers } from './http.ts';

/** Faults of a send (or a read-only call): what the HTTP answer does. */
export type SendFault = '429' | '5xx' | 'timeout' | 'slow' | 'reset';

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

export type SandboxFault = SendFault | WebhookFault;

/** The send faults: the default kinds. */
export const SANDBOX_FAULTS: readonly SendFault[] = ['429', '5xx', 'timeout', 'slow', 'reset'];

export const isWebhookFault = (kind: SandboxFault): kind is WebhookFault =>
  (WEBHOOK_FAULTS as readonly string[]).includes(kind);

/**
 * What `setFaults` takes. Without a count the faults stay on until changed; with one they switch
 * themselves off (rate 0) once it is used up, so a test asks for "the next 20 sends" or "until 5
 * sends failed" and gets exactly that however slowly the worker runs.
 */
export interface FaultPlan {
  /** Share of sends and read-only calls that get one of `kinds`, 0..1. */
  rate: number;
  /** Default: the kinds in force (all of them at start). */
  kinds?: SandboxFault[];
  /** Faults apply to the next N sends, whether or not each one draws a fault; then off. */
  nextSends?: number;
  /**
   * Faults stay on until N sends have failed because of one (a slow answer is not a failure; a
   * timeout is once the client gives up); then off. Sends already held may add a few more.
   */
  untilFailed?: number;
}

/** The plan in force, as `/_sandbox/stats` shows it: what is left of each count, or null. */
export interface FaultState {
  rate: number;
  kinds: SandboxFault[];
  nextSends: number | null;
  untilFailed: number | null;
}

export interface Faults {
  set(plan: FaultPlan): void;
  /** Back to the plan given at start. */
  reset(): void;
  /** The fault for an ordinary send, or undefined; uses up one of `nextSends`. */
  forSend(): SendFault | undefined;
  /** The fault for a read-only call (probes fail as sends do); counts nothing. */
  forRead(): SendFault | undefined;
  /** Whether this webhook gets `kind` (drawn with the rate, when the kind is set); counts nothing. */
  forWebhook(kind: WebhookFault): boolean;
  /** A send failed because of its fault; uses up one of `untilFailed`. */
  sendFailed(): void;
  state(): FaultState;
}

export function createFaults(initial: FaultPlan, random: () => number = Math.random): Faults {
  let state: FaultState = fresh(initial, [...SANDBOX_FAULTS]);

  function fresh(plan: FaultPlan, kinds: SandboxFault[]): FaultState {
    return {
      rate: clampRate(plan.rate),
      kinds: plan.kinds?.length ? [...plan.kinds] : kinds,
      nextSends: countOrNull(plan.nextSends),
      untilFailed: countOrNull(plan.untilFailed),
    };
  }

  function draw(): SendFault | undefined {
    const sendKinds = state.kinds.filter((kind): kind is SendFault => !isWebhookFault(kind));
    if (sendKinds.length === 0 || state.rate <= 0 || random() >= state.rate) return undefined;
    return sendKinds[Math.floor(random() * sendKinds.length)];
  }

  function off(): void {
    state = { ...state, rate: 0, nextSends: null, untilFailed: null };
  }

  return {
    set(plan) {
      state = fresh(plan, state.kinds);
    },
    reset() {
      state = fresh(initial, [...SANDBOX_FAULTS]);
    },
    forSend() {
      if (state.rate <= 0) return undefined;
      const fault = draw();
      if (state.nextSends !== null) {
        state.nextSends -= 1;
        if (state.nextSends <= 0) off();
      }
      return fault;
    },
    forRead: draw,
    forWebhook(kind) {
      return state.kinds.includes(kind) && state.rate > 0 && random() < state.rate;
    },
    sendFailed() {
      if (state.untilFailed === null) return;
      state.untilFailed -= 1;
      if (state.untilFailed <= 0) off();
    },
    state: () => ({ ...state, kinds: [...state.kinds] }),
  };
}

/** Why a `/_sandbox/faults` body is refused, or undefined when it is a plan. */
export function faultPlanProblem(body: Record<string, unknown>): string | undefined {
  const kinds = body.kinds;
  const validKinds =
    kinds === undefined ||
    (Array.isArray(kinds) &&
      kinds.every(
        (k) => SANDBOX_FAULTS.includes(k as SendFault) || isWebhookFault(k as SandboxFault),
      ));
  const validCount = (v: unknown) =>
    v === undefined || (typeof v === 'number' && Number.isInteger(v) && v > 0);
  if (
    typeof body.rate !== 'number' ||
    body.rate < 0 ||
    body.rate > 1 ||
    !validKinds ||
    !validCount(body.nextSends) ||
    !validCount(body.untilFailed)
  ) {
    return `expected {rate: 0..1, kinds?: (${[...SANDBOX_FAULTS, ...WEBHOOK_FAULTS].join('|')})[], nextSends?: N, untilFailed?: N}`;
  }
  return undefined;
}

/**
 * Answers with a fault. `proceed` is the normal answer, which the slow and timeout faults give
 * after their delay if the client is still there; `onRejected` runs when the fault failed the call.
 */
export function applyFault(
  fault: SendFault,
  req: Req,
  res: Res,
  timers: Timers,
  timeoutHoldMs: number,
  proceed: () => void,
  onRejected: () => void,
  random: () => number = Math.random,
): void {
  switch (fault) {
    case '429':
      onRejected();
      sendMetaError(res, { status: 429, code: 130429 });
      return;
    case '5xx':
      onRejected();
      if (random() < 0.5) sendEmpty(res, 503);
      else sendMetaError(res, { status: 500, code: 131000, type: 'OAuthException' });
      return;
    case 'timeout':
      timers.hold(res, timeoutHoldMs, proceed, onRejected);
      return;
    case 'slow':
      timers.hold(res, 200 + Math.floor(random() * 600), proceed, onRejected);
      return;
    case 'reset':
      onRejected();
      req.socket.destroy();
      return;
  }
}

function countOrNull(n: number | undefined): number | null {
  return n !== undefined && Number.isFinite(n) && n > 0 ? Math.floor(n) : null;
}

function clampRate(rate: number): number {
  if (!Number.isFinite(rate)) return 0;
  return Math.min(1, Math.max(0, rate));
}
