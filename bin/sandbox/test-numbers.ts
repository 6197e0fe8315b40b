/** The sandbox's test recipients: numbers that always answer the same way, for tests, the local stack and demos. */
import type { ErrorClass } from '#core/model/error-class.ts';

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
