/** Retry delays: "full jitter" exponential backoff, so retries of a failed burst spread out instead of colliding. */

export interface BackoffPolicy {
  baseSeconds: number;
  capSeconds: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { baseSeconds: 5, capSeconds: 300 };

/** SQS refuses a visibility timeout above 12 hours. */
export const MAX_VISIBILITY_SECONDS = 12 * 60 * 60;

/** `random(0, min(cap, base · 2^attempt))`, in whole seconds; `attempt` counts from 1. */
export function nextBackoffDelay(
  attempt: number,
  policy: BackoffPolicy,
  random: () => number = Math.random,
): number {
  const exponent = Math.min(Math.max(attempt, 0), 30);
  const ceiling = Math.min(policy.capSeconds, policy.baseSeconds * 2 ** exponent);
  return Math.min(MAX_VISIBILITY_SECONDS, Math.floor(random() * ceiling));
}
