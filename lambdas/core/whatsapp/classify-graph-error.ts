/** Turns a failed Graph API call (HTTP status, Graph error code, network error) into an error class. */
import type { ErrorClass } from '#core/model/error-class.ts';

export interface GraphFailure {
  httpStatus?: number;
  /** `error.code` from Meta's error body. */
  code?: number;
  /** A transport failure instead of an answer: 'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'timeout'… */
  networkError?: string;
}

const CODE_CLASS = new Map<number, ErrorClass>([
  // Throughput of the sender number, app call limit, WABA rate limit.
  [130429, 'rate_limited'],
  [4, 'rate_limited'],
  [80007, 'rate_limited'],
  // Graph's generic throttling codes (user, page and hourly call limits): a 400 must not make
  // them permanent failures.
  [17, 'rate_limited'],
  [32, 'rate_limited'],
  [613, 'rate_limited'],
  [131056, 'pair_rate_limited'],
  [1, 'upstream'],
  [2, 'upstream'],
  [131000, 'upstream'],
  [131016, 'upstream'],
  [131057, 'upstream'],
  [190, 'auth'],
  [368, 'account_blocked'],
  [131031, 'account_blocked'],
  [131042, 'account_blocked'],
  [131048, 'account_blocked'],
  [131026, 'invalid_recipient'],
  [131049, 'invalid_recipient'],
  [131050, 'opted_out'],
  [131047, 'outside_window'],
  [100, 'invalid_request'],
  [131008, 'invalid_request'],
  [131009, 'invalid_request'],
  [131051, 'invalid_request'],
]);

function classifyCode(code: number): ErrorClass | undefined {
  const known = CODE_CLASS.get(code);
  if (known) return known;
  if (code >= 132000 && code <= 132016) return 'template';
  // Permission errors (10, 200–299): like an invalid token, every send from this app would fail.
  if (code === 10 || (code >= 200 && code <= 299)) return 'auth';
  return undefined;
}

function classifyStatus(httpStatus: number): ErrorClass {
  if (httpStatus === 429) return 'rate_limited';
  if (httpStatus === 401 || httpStatus === 403) return 'auth';
  if (httpStatus >= 500) return 'upstream';
  if (httpStatus >= 400) return 'invalid_request';
  // A 2xx or 3xx that still failed (unreadable body, redirect) says nothing about our request.
  return 'upstream';
}

/**
 * Decides on the Graph error code first and on the HTTP status only when the code is missing or
 * unknown, because Meta sends the same code with different statuses (131056 as 400 or 429).
 */
export function classifyGraphError(input: GraphFailure): ErrorClass {
  if (input.code !== undefined) {
    const byCode = classifyCode(input.code);
    if (byCode) return byCode;
  }
  if (input.networkError) return 'upstream';
  if (input.httpStatus !== undefined) return classifyStatus(input.httpStatus);
  // Neither an answer nor a named transport error: treat as transient, the DLQ bounds retries.
  return 'upstream';
}
