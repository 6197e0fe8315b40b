/** The gates a notification passes before a send: opt-out is checked by the worker; these decide the rest. */
import type { NotificationRow } from '#core/db/schema.ts';
import type { ErrorClass } from '#core/model/error-class.ts';

export type GateDecision =
  | { kind: 'send' }
  /** Not sent and never will be: dry run, outside the pilot. */
  | { kind: 'skip'; reason: string }
  /** Parked in the database until its reason passes (circuit open, kill switch, daily cap). */
  | { kind: 'defer'; reason: string; until: Date | null }
  /** Kept on the queue and retried after a delay (rate limits). */
  | { kind: 'delay'; reason: string; seconds: number };

export interface SendReport {
  id: string;
  ok: boolean;
  errorClass?: ErrorClass;
  /**
   * False for an auth or account_blocked answer that failed its notification after it had opened
   * the circuit MAX_CIRCUIT_OPENS_PER_NOTIFICATION times: it must not open it again.
   */
  opensCircuit?: boolean;
}

export interface DeliveryGates {
  /** Decides for each candidate row, in order; may take rate-limit tokens. */
  admit(rows: readonly NotificationRow[], now: Date): Promise<Map<string, GateDecision>>;
  /** Told what the sends did, so the circuit can count consecutive failures or close. */
  report(results: readonly SendReport[], now: Date): Promise<void>;
  /** Gives back what `admit` took for rows it let through that were then not sent (lost claims). */
  release(rows: readonly NotificationRow[], now: Date): Promise<void>;
}

/** Every gate open: what the worker uses until rollout, circuit and rate limits are configured. */
export const openGates: DeliveryGates = {
  admit: async (rows) => new Map(rows.map((r) => [r.id, { kind: 'send' }])),
  report: async () => {},
  release: async () => {},
};
