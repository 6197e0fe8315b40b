/**
 * Hostile input for POST /v1/notifications: near-valid bodies with one field replaced by something
 * nasty, raw bytes in any encoding, and random headers. Never a 500, never a row written on a 4xx,
 * never a stack trace or a phone number in the answer.
 */
import fc from 'fast-check';
import { describe, expect } from 'vitest';
import { apiEvent } from '../support/api.ts';
import { apiTest } from '../support/fixtures.ts';
import {
  anyString,
  assessAnswer,
  deepJson,
  hostileNumber,
  hostileString,
  hostileValue,
  nextRecipient,
} from './hostile.ts';

interface HostilePost {
  body?: unknown;
  rawBody?: string;
  headers?: Record<string, string>;
  isBase64Encoded?: boolean;
  recipient?: unknown;
}

/** The file's API test with `postAndAssess`: posts and checks the invariants; returns the status. */
const it = apiTest.extend(
  'postAndAssess',
  { scope: 'file' },
  ({ app, key, rowCount }) =>
    async (input: HostilePost): Promise<number> => {
      const before = await rowCount();
      const event = apiEvent({
        method: 'POST',
        path: '/v1/notifications',
        headers: { 'X-API-Key': key, ...input.headers },
        ...(input.rawBody !== undefined ? { rawBody: input.rawBody } : { body: input.body }),
      });
      if (input.isBase64Encoded) event.isBase64Encoded = true;
      const response = await app(event);
      const problems = assessAnswer(response, { recipient: input.recipient });
      const written = (await rowCount()) - before;
      if (response.statusCode >= 400 && written !== 0) {
        problems.push(`${written} row(s) written on a ${response.statusCode}`);
      }
      if (response.statusCode === 202 && written !== 1) problems.push(`${written} rows on a 202`);
      expect(problems, `${response.statusCode} ${response.body}`).toEqual([]);
      return response.statusCode;
    },
);

const validBody = () => ({
  to: nextRecipient(),
  template: {
    name: 'appointment_reminder',
    language: 'es',
    components: [{ type: 'body', parameters: [{ type: 'text', text: 'Ana' }] }],
  },
  metadata: { orderId: 'A-1' },
});

/** Each mutation replaces or adds one part of a valid body. */
const mutation = fc.oneof(
  fc.record({ path: fc.constant(['to']), value: fc.oneof(hostileValue, hostileString) }),
  fc.record({
    path: fc.constant(['to']),
    // Numbers that look right: spaces, no plus, too long, landlines, other countries.
    value: fc.constantFrom(
      '+57 300 123 4567',
      '573001234567',
      '+5730012345678901',
      '+5716012345',
      '+14155552671',
      '+447700900123',
      '+0',
      '+',
      '',
    ),
  }),
  fc.record({ path: fc.constant(['template']), value: hostileValue }),
  fc.record({ path: fc.constant(['template', 'name']), value: hostileValue }),
  fc.record({ path: fc.constant(['template', 'language']), value: hostileValue }),
  fc.record({ path: fc.constant(['template', 'components']), value: hostileValue }),
  fc.record({
    path: fc.constant(['template', 'components']),
    value: fc.array(
      fc.record({
        type: fc.constantFrom('header', 'body', 'button', 'footer'),
        parameters: fc.array(fc.dictionary(hostileString, hostileValue, { maxKeys: 3 }), {
          maxLength: 3,
        }),
      }),
      { maxLength: 3 },
    ),
  }),
  fc.record({ path: fc.constant(['text']), value: fc.record({ body: hostileString }) }),
  fc.record({ path: fc.constant(['priority']), value: hostileValue }),
  fc.record({
    path: fc.constant(['sendAt']),
    value: fc.oneof(
      hostileValue,
      fc
        .date({ min: new Date('1970-01-01'), max: new Date('2200-01-01'), noInvalidDate: true })
        .map((d) => d.toISOString()),
      fc.constantFrom(
        '2026-02-30T10:00:00Z',
        '2999-12-31T23:59:59+14:00',
        '0000-01-01T00:00:00Z',
        '+275760-09-13T00:00:00.000Z',
        '2026-13-01T00:00:00Z',
      ),
    ),
  }),
  fc.record({ path: fc.constant(['metadata']), value: hostileValue }),
  fc.record({
    path: fc.constant(['metadata']),
    value: fc.dictionary(hostileString, hostileValue, { maxKeys: 5 }),
  }),
  // An unknown field; a phone-like name is pinned by a named example (its echo is a known bug).
  fc.record({
    path: fc.tuple(hostileString.filter((k) => !/\d{7,}/.test(k))),
    value: hostileValue,
  }),
);

function apply(body: Record<string, unknown>, path: readonly string[], value: unknown) {
  let target: Record<string, unknown> = body;
  for (const part of path.slice(0, -1)) {
    const next = target[part];
    if (typeof next !== 'object' || next === null) return;
    target = next as Record<string, unknown>;
  }
  // defineProperty, so a key named __proto__ becomes an own property, as JSON.parse makes it.
  Object.defineProperty(target, path[path.length - 1]!, {
    value,
    enumerable: true,
    writable: true,
    configurable: true,
  });
}

const template = { name: 'hello_world', language: 'en_US' };

describe('POST /v1/notifications under hostile input', () => {
  // Counterexamples the properties below found, kept as named examples. PostgreSQL's jsonb refuses
  // U+0000 and unpaired surrogates, and JSON.stringify overflows the stack on ~4,000 levels of
  // nesting; each one is a 500 today where a 400 naming the field is due (see the report).
  it.for<[string, Record<string, unknown>]>([
    ['a NUL character in text.body', { text: { body: 'a\u0000b' } }],
    ['an unpaired surrogate in text.body', { text: { body: 'a\ud800b' } }],
    ['a NUL character in a metadata key', { template, metadata: { 'k\u0000': 1 } }],
    ['an unpaired surrogate in a metadata value', { template, metadata: { k: '\udfff' } }],
    [
      'a NUL character in a template parameter',
      {
        template: {
          ...template,
          components: [{ type: 'body', parameters: [{ type: 'text', text: '\u0000' }] }],
        },
      },
    ],
  ])('answers %s with a 400 and writes nothing', async ([_name, fields], { postAndAssess }) => {
    const recipient = nextRecipient();
    const status = await postAndAssess({ body: { to: recipient, ...fields }, recipient });
    expect(status).toBe(400);
  });

  // The 400 for an unknown field repeats its name: a phone number sent as a field name comes back.
  it('does not repeat a phone number sent as an unknown field name', async ({ postAndAssess }) => {
    const recipient = nextRecipient();
    const status = await postAndAssess({
      body: { to: recipient, template, '+573001234567': 'x' },
      recipient,
    });
    expect(status).toBe(400);
  });

  it('answers near-valid bodies with 202 or a 4xx that writes nothing', async ({
    postAndAssess,
  }) => {
    const seen: Record<number, number> = {};
    await fc.assert(
      // No mutation at all is drawn too: most single mutations are refused since the request bounds
      // and parameter types were tightened, and the check below needs the accepting side as well.
      fc.asyncProperty(fc.array(mutation, { minLength: 0, maxLength: 3 }), async (mutations) => {
        const body = validBody();
        for (const m of mutations) apply(body, m.path, m.value);
        const status = await postAndAssess({ body, recipient: body.to });
        seen[status] = (seen[status] ?? 0) + 1;
        expect([202, 400]).toContain(status);
      }),
      { numRuns: 250 },
    );
    // Both sides of the line were exercised, not only rejections.
    expect(seen[202] ?? 0, JSON.stringify(seen)).toBeGreaterThan(10);
    expect(seen[400] ?? 0, JSON.stringify(seen)).toBeGreaterThan(10);
  });

  it('answers raw bytes in any encoding without a 500', async ({ postAndAssess }) => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          anyString,
          fc.json(),
          fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b).toString('base64')),
          fc.constantFrom(
            '',
            'null',
            '[]',
            '"x"',
            '{"to":',
            '{"to":"+573001234567","template":{"name":"a","language":"es"},"to":"+573001234568"}',
            '{"__proto__":{"isAdmin":true},"to":"+573001234567","text":{"body":"hi"}}',
          ),
        ),
        fc.boolean(),
        fc.constantFrom('application/json', 'text/plain', 'application/octet-stream', ''),
        async (raw, base64, contentType) => {
          await postAndAssess({
            rawBody: raw,
            isBase64Encoded: base64,
            headers: { 'content-type': contentType },
          });
        },
      ),
      { numRuns: 200 },
    );
  });

  it('answers deeply nested JSON without a 500', async ({ postAndAssess }) => {
    for (const kind of ['array', 'object'] as const) {
      // A whole body nested this deep is not an object: a plain 400.
      await postAndAssess({ rawBody: deepJson(20_000, kind) });
      for (const depth of [100, 1_000, 2_000]) {
        const nested = deepJson(depth, kind);
        const recipient = nextRecipient();
        await postAndAssess({
          rawBody: `{"to":"${recipient}","text":{"body":"hi"},"metadata":{"deep":${nested}}}`,
          recipient,
        });
        await postAndAssess({
          rawBody: `{"to":"${recipient}","template":{"name":"a","language":"es","components":[{"type":"body","parameters":[{"deep":${nested}}]}]}}`,
          recipient,
        });
      }
    }
  });

  // JSON.stringify (the metadata size check, the row's message column) overflows the stack at a few
  // thousand levels, inside a 64 KiB body: a 500 today, a 400 is due (see the report).
  it.for<[string, (nested: string) => string]>([
    ['metadata', (nested: string) => `"text":{"body":"hi"},"metadata":{"deep":${nested}}`],
    [
      'a template parameter',
      (nested: string) =>
        `"template":{"name":"a","language":"es","components":[{"type":"body","parameters":[{"deep":${nested}}]}]}`,
    ],
  ])(
    'answers 5,000 levels of nesting in %s with a 400',
    async ([_where, fields], { postAndAssess }) => {
      const recipient = nextRecipient();
      const status = await postAndAssess({
        rawBody: `{"to":"${recipient}",${fields(deepJson(5_000, 'array'))}}`,
        recipient,
      });
      expect(status).toBe(400);
    },
  );

  it('answers random headers without a 500, and never echoes the presented key', async ({
    app,
  }) => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          hostileString,
          fc.constant(undefined),
          fc.stringMatching(/^wn_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$/),
          fc.constant(`${'wn_'}${'0'.repeat(12)}_${'A'.repeat(43)}`),
        ),
        fc.option(hostileString, { nil: undefined }),
        fc.option(hostileString, { nil: undefined }),
        fc.constantFrom('X-API-Key', 'x-api-key', 'X-Api-Key'),
        async (presented, requestId, idempotencyKey, keyHeader) => {
          const headers: Record<string, string> = {};
          if (presented !== undefined) headers[keyHeader] = presented;
          if (requestId !== undefined) headers['X-Request-ID'] = requestId;
          if (idempotencyKey !== undefined) headers['Idempotency-Key'] = idempotencyKey;
          const event = apiEvent({
            method: 'POST',
            path: '/v1/notifications',
            headers,
            body: validBody(),
          });
          const response = await app(event);
          const problems = assessAnswer(response, {
            ...(requestId !== undefined ? { clientRequestId: requestId } : {}),
          });
          if (presented && presented.length >= 8 && response.body.includes(presented)) {
            problems.push('the presented key is in the answer');
          }
          expect(problems, `${response.statusCode} ${response.body}`).toEqual([]);
          expect([400, 401]).toContain(response.statusCode);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('answers random numbers in every numeric-looking place without a 500', async ({
    postAndAssess,
  }) => {
    await fc.assert(
      fc.asyncProperty(hostileNumber, hostileNumber, async (index, extra) => {
        const body = {
          to: nextRecipient(),
          template: {
            name: 'hello_world',
            language: 'en_US',
            components: [{ type: 'button', sub_type: 'url', index, parameters: [{ n: extra }] }],
          },
          metadata: { n: extra },
        };
        await postAndAssess({ body, recipient: body.to });
      }),
      { numRuns: 100 },
    );
  });
});
