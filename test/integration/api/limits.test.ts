/**
 * The bounds of one notification hold whichever route carries it (issue 16, finding 6): what
 * POST /v1/notifications refuses alone, POST /v1/notifications/batch refuses as a batch of one;
 * metadata, template parameters, sendAt and X-Request-ID are bounded; template parameters are the
 * types Meta documents, with media by https link or media id.
 */
import fc from 'fast-check';
import { describe, expect } from 'vitest';
import { MAX_BODY_BYTES } from '#core/model/notification-request.ts';
import { apiEvent } from '../../support/api.ts';
import { apiTest } from '../../support/fixtures.ts';
import { uniqueMobile } from '../../support/phones.ts';

/** The file's API test with `single` and `batchOfOne`: each posts and returns the item's status. */
const it = apiTest
  .extend('single', { scope: 'file' }, ({ asClient }) => async (body: unknown, headers = {}) => {
    const response = await asClient({ method: 'POST', path: '/v1/notifications', body, headers });
    return { status: response.statusCode, body: JSON.parse(response.body), response };
  })
  .extend('batchOfOne', { scope: 'file' }, ({ asClient }) => async (body: unknown) => {
    const response = await asClient({
      method: 'POST',
      path: '/v1/notifications/batch',
      body: { notifications: [body] },
    });
    const answer = JSON.parse(response.body);
    // A refused envelope (400) or the item's own status inside a 202/207.
    return response.statusCode === 400 ? 400 : (answer.results[0].status as number);
  });

const to = () => uniqueMobile('+57317');

const withParameters = (parameters: unknown[]) => ({
  to: to(),
  template: {
    name: 'appointment_reminder',
    language: 'es',
    components: [{ type: 'body', parameters }],
  },
});

describe('the bounds of one notification', () => {
  it('refuses a 900 KB notification alone and as a batch of one', async ({
    single,
    batchOfOne,
  }) => {
    const huge = withParameters(
      Array.from({ length: 20 }, () => ({ type: 'text', text: 'x'.repeat(1024) })),
    );
    (huge.template.components as unknown[]).push(
      ...Array.from({ length: 9 }, () => ({
        type: 'body',
        parameters: Array.from({ length: 20 }, () => ({ type: 'text', text: 'y'.repeat(1024) })),
      })),
    );
    const padded = { ...huge, metadata: { note: 'z'.repeat(1_000) } };
    expect(Buffer.byteLength(JSON.stringify(padded))).toBeGreaterThan(MAX_BODY_BYTES);
    const alone = await single(padded);
    expect(alone.status).toBe(400);
    expect(await batchOfOne(padded)).toBe(400);

    // And the oversized text of one parameter, which a batch used to carry whole.
    const oneHugeParameter = withParameters([{ type: 'text', text: 'x'.repeat(900_000) }]);
    expect((await single(oneHugeParameter)).status).toBe(400);
    expect(await batchOfOne(oneHugeParameter)).toBe(400);
  });

  it.for([
    [
      'metadata with too many keys',
      { metadata: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, i])) },
    ],
    ['metadata over 2048 bytes', { metadata: { note: 'n'.repeat(2_100) } }],
    ['a sendAt with a long fraction', { sendAt: `2099-01-01T00:00:00.${'1'.repeat(40)}Z` }],
  ] as const)(
    'refuses %s alone and in a batch, naming the field',
    async ([, extra], { single, batchOfOne }) => {
      const body = { to: to(), text: { body: 'hola' }, ...extra };
      const alone = await single(body);
      expect(alone.status, JSON.stringify(alone.body)).toBe(400);
      expect(alone.body.error.field).toBe(Object.keys(extra)[0]);
      expect(await batchOfOne(body)).toBe(400);
    },
  );

  it.for([
    ['a made-up parameter type', { type: 'script', script: 'x' }],
    ['a media link over http', { type: 'image', image: { link: 'http://example.com/a.png' } }],
    ['a media link to a file URL', { type: 'document', document: { link: 'file:///etc/passwd' } }],
    ['a media id that is not digits', { type: 'video', video: { id: '../../x' } }],
    ['a parameter with an unknown field', { type: 'text', text: 'Ana', extra: 1 }],
    [
      'a currency without a code',
      { type: 'currency', currency: { fallback_value: '$1', amount_1000: 1000 } },
    ],
  ] as const)('refuses %s alone and in a batch', async ([, parameter], { single, batchOfOne }) => {
    const body = withParameters([parameter]);
    const alone = await single(body);
    expect(alone.status, JSON.stringify(alone.body)).toBe(400);
    expect(alone.body.error.field).toMatch(/^template\.components\.0\.parameters\.0/);
    expect(await batchOfOne(body)).toBe(400);
  });

  it.for([
    ['text', { type: 'text', text: 'Ana' }],
    [
      'currency',
      { type: 'currency', currency: { fallback_value: '$10.99', code: 'USD', amount_1000: 10990 } },
    ],
    ['date_time', { type: 'date_time', date_time: { fallback_value: 'March 1, 2027' } }],
    ['an image by https link', { type: 'image', image: { link: 'https://example.com/a.png' } }],
    [
      'a document by media id',
      { type: 'document', document: { id: '1234567890', filename: 'bill.pdf' } },
    ],
    [
      'a location',
      { type: 'location', location: { latitude: 4.6, longitude: -74.08, name: 'Office' } },
    ],
    ['a payload', { type: 'payload', payload: 'CONFIRM' }],
    ['a coupon code', { type: 'coupon_code', coupon_code: 'SAVE10' }],
  ] as const)('accepts %s as a template parameter', async ([, parameter], { single }) => {
    const answer = await single(withParameters([parameter]));
    expect(answer.status, JSON.stringify(answer.body)).toBe(202);
  });

  it('keeps a sane X-Request-ID and replaces one over 128 characters', async ({ app, key }) => {
    const send = async (requestId: string) =>
      app(
        apiEvent({
          method: 'POST',
          path: '/v1/notifications',
          headers: { 'X-API-Key': key, 'X-Request-ID': requestId },
          body: { to: to(), text: { body: 'hola' } },
        }),
      );
    const sane = await send('trace-1');
    const long = await send('a'.repeat(129));
    expect(sane.headers?.['x-request-id']).toBe('trace-1');
    expect(long.headers?.['x-request-id']).not.toBe('a'.repeat(129));
    expect(String(long.headers?.['x-request-id']).length).toBeLessThanOrEqual(128);
  });

  it('answers a notification the same alone and as a batch of one, whatever its sizes', async ({
    single,
    batchOfOne,
  }) => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          textLength: fc.integer({ min: 1, max: 5_000 }),
          metadataKeys: fc.integer({ min: 0, max: 36 }),
          metadataValueLength: fc.integer({ min: 0, max: 40 }),
          parameterCount: fc.integer({ min: 10, max: 22 }),
          parameterLength: fc.oneof(
            fc.integer({ min: 1, max: 1_200 }),
            fc.integer({ min: 3_300, max: 4_000 }),
          ),
          kind: fc.constantFrom('text', 'template'),
        }),
        async (shape) => {
          const metadata = Object.fromEntries(
            Array.from({ length: shape.metadataKeys }, (_, i) => [
              `k${i}`,
              'v'.repeat(shape.metadataValueLength),
            ]),
          );
          const body =
            shape.kind === 'text'
              ? { to: to(), text: { body: 't'.repeat(shape.textLength) }, metadata }
              : {
                  ...withParameters(
                    Array.from({ length: shape.parameterCount }, () => ({
                      type: 'text',
                      text: 'p'.repeat(shape.parameterLength),
                    })),
                  ),
                  metadata,
                };
          const alone = (await single(body)).status;
          const inBatch = await batchOfOne({ ...body, to: to() });
          expect({ alone, inBatch }).toEqual({ alone, inBatch: alone });
          expect([202, 400]).toContain(alone);
        },
      ),
      { numRuns: 40 },
    );
  });
});
