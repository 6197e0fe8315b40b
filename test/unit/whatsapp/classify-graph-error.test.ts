/** Tests that every Graph failure of DESIGN §4 lands in its error class, code before status. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ErrorClass } from '#core/model/error-class.ts';
import { classifyGraphError } from '#core/whatsapp/classify-graph-error.ts';

/** The code column of DESIGN §4, with the HTTP status Meta usually sends it with. */
const CODE_ROWS: [code: number, httpStatus: number, expected: ErrorClass][] = [
  [130429, 400, 'rate_limited'],
  [4, 400, 'rate_limited'],
  [80007, 400, 'rate_limited'],
  [131056, 400, 'pair_rate_limited'],
  [131000, 500, 'upstream'],
  [131016, 503, 'upstream'],
  [131057, 400, 'upstream'],
  [1, 500, 'upstream'],
  [2, 503, 'upstream'],
  [190, 401, 'auth'],
  [368, 400, 'account_blocked'],
  [131031, 400, 'account_blocked'],
  [131042, 400, 'account_blocked'],
  [131048, 400, 'account_blocked'],
  [131026, 400, 'invalid_recipient'],
  [131049, 400, 'invalid_recipient'],
  [131050, 400, 'opted_out'],
  [132000, 400, 'template'],
  [132001, 404, 'template'],
  [132005, 400, 'template'],
  [132007, 400, 'template'],
  [132012, 400, 'template'],
  [132015, 400, 'template'],
  [132016, 400, 'template'],
  [131047, 400, 'outside_window'],
  [100, 400, 'invalid_request'],
  [131008, 400, 'invalid_request'],
  [131009, 400, 'invalid_request'],
  [131051, 400, 'invalid_request'],
];

describe('classifyGraphError', () => {
  it.each(CODE_ROWS)('classifies code %i (HTTP %i) as %s', (code, httpStatus, expected) => {
    // prepare / act
    const result = classifyGraphError({ code, httpStatus });

    // assess
    expect(result).toBe(expected);
  });

  it.each(CODE_ROWS)(
    'classifies code %i the same when the HTTP status is missing',
    (code, _, expected) => {
      expect(classifyGraphError({ code })).toBe(expected);
    },
  );

  it('keeps 131056 pair_rate_limited whether it comes with 400 or 429', () => {
    expect(classifyGraphError({ code: 131056, httpStatus: 400 })).toBe('pair_rate_limited');
    expect(classifyGraphError({ code: 131056, httpStatus: 429 })).toBe('pair_rate_limited');
  });

  it('keeps 130429 rate_limited when it comes with 400 instead of 429', () => {
    expect(classifyGraphError({ code: 130429, httpStatus: 400 })).toBe('rate_limited');
  });

  it('lets the code win over a 5xx status', () => {
    expect(classifyGraphError({ code: 131026, httpStatus: 500 })).toBe('invalid_recipient');
  });

  it('lets the code win over a 401 status', () => {
    expect(classifyGraphError({ code: 131048, httpStatus: 401 })).toBe('account_blocked');
  });

  it.each([
    [429, 'rate_limited'],
    [401, 'auth'],
    [403, 'auth'],
    [500, 'upstream'],
    [502, 'upstream'],
    [503, 'upstream'],
    [504, 'upstream'],
    [400, 'invalid_request'],
    [404, 'invalid_request'],
    [413, 'invalid_request'],
  ] as const)('classifies HTTP %i without a code as %s', (httpStatus, expected) => {
    expect(classifyGraphError({ httpStatus })).toBe(expected);
  });

  it.each(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'timeout', 'EAI_AGAIN'])(
    'classifies the network error %s as upstream',
    (networkError) => {
      expect(classifyGraphError({ networkError })).toBe('upstream');
    },
  );

  it('classifies an unknown code by its status: 5xx upstream, 4xx invalid_request', () => {
    expect(classifyGraphError({ code: 999_999, httpStatus: 502 })).toBe('upstream');
    expect(classifyGraphError({ code: 999_999, httpStatus: 400 })).toBe('invalid_request');
  });

  it('treats a failure with nothing to go on as upstream, so it is retried a bounded number of times', () => {
    expect(classifyGraphError({})).toBe('upstream');
  });

  it('classifies any code of the template range as template, whatever the status', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 132000, max: 132016 }),
        fc.constantFrom(undefined, 400, 404, 429, 500),
        (code, httpStatus) => classifyGraphError({ code, httpStatus }) === 'template',
      ),
    );
  });

  it('never lets the status override a known code', () => {
    const known = CODE_ROWS.map(([code, , expected]) => ({ code, expected }));
    fc.assert(
      fc.property(
        fc.constantFrom(...known),
        fc.integer({ min: 200, max: 599 }),
        ({ code, expected }, httpStatus) => classifyGraphError({ code, httpStatus }) === expected,
      ),
    );
  });
});
