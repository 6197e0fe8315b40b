/** The error classes of a failed send and what the worker does with each (DESIGN §4). */

export const ERROR_CLASSES = [
  'rate_limited',
  'pair_rate_limited',
  'upstream',
  'auth',
  'account_blocked',
  'invalid_recipient',
  'opted_out',
  'template',
  'outside_window',
  'invalid_request',
] as const;

export type ErrorClass = (typeof ERROR_CLASSES)[number];

export type ErrorAction =
  /** Try again later on the queue; the send may succeed. */
  | 'retry'
  /** Every send from this sender would fail: open the circuit and park the row as deferred. */
  | 'open_circuit'
  /** The message can never be delivered as it is: mark it failed and drop the queue message. */
  | 'fail';

export interface ErrorClassPolicy {
  action: ErrorAction;
  /** Whether a failure of this class counts toward the consecutive-failure circuit threshold. */
  countsTowardCircuit: boolean;
}

export const ERROR_CLASS_POLICY: Record<ErrorClass, ErrorClassPolicy> = {
  rate_limited: { action: 'retry', countsTowardCircuit: false },
  pair_rate_limited: { action: 'retry', countsTowardCircuit: false },
  upstream: { action: 'retry', countsTowardCircuit: true },
  auth: { action: 'open_circuit', countsTowardCircuit: true },
  account_blocked: { action: 'open_circuit', countsTowardCircuit: true },
  invalid_recipient: { action: 'fail', countsTowardCircuit: false },
  opted_out: { action: 'fail', countsTowardCircuit: false },
  template: { action: 'fail', countsTowardCircuit: false },
  outside_window: { action: 'fail', countsTowardCircuit: false },
  invalid_request: { action: 'fail', countsTowardCircuit: false },
};

export function isErrorClass(value: unknown): value is ErrorClass {
  return typeof value === 'string' && (ERROR_CLASSES as readonly string[]).includes(value);
}
