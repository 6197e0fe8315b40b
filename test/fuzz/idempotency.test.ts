/**
 * Idempotency-Key under hostile use: random keys (valid and not), repeats with the same body (in
 * any key order), repeats with another body, races between two requests with one key, the same
 * key for two clients. One row per (client, key), never a 500, never a row on a 4xx.
 */
import fc from 'fast-check';
import { describe, expect } from 'vitest';
import { apiEvent, createTestClient } from '../support/api.ts';
import { apiTest } from '../support/fixtures.ts';
import { anyString, assessAnswer, nextRecipient } from './hostile.ts';

/**
 * The file's API test with a second client (`other`), `rowsFor` (a client's rows, or those under
 * one key) and `post` (a raw body under a key, its answer checked against the invariants).
 */
const it = apiTest
  .extend('other', { scope: 'file' }, ({ db }) => createTestClient(db))
  .extend(
    'rowsFor',
    { scope: 'file' },
    ({ db }) =>
      async (clientId: string, idempotencyKey?: string): Promise<number> => {
        let query = db
          .selectFrom('notifications')
          .select((eb) => eb.fn.countAll<string>().as('n'))
          .where('client_id', '=', clientId);
        if (idempotencyKey !== undefined) {
          query = query.where('idempotency_key', '=', idempotencyKey);
        }
        return Number((await query.executeTakeFirstOrThrow()).n);
      },
  )
  .extend(
    'post',
    { scope: 'file' },
    ({ app }) =>
      async (apiKey: string, idempotencyKey: string, rawBody: string) => {
        const response = await app(
          apiEvent({
            method: 'POST',
            path: '/v1/notifications',
            headers: { 'X-API-Key': apiKey, 'Idempotency-Key': idempotencyKey },
            rawBody,
          }),
        );
        expect(assessAnswer(response), `${response.statusCode} ${response.body}`).toEqual([]);
        return {
          status: response.statusCode,
          body: JSON.parse(response.body) as {
            id?: string;
            error?: { code: string; field?: string };
          },
          replayed: response.headers?.['idempotent-replayed'] === 'true',
        };
      },
  );

/** Visible ASCII, 1 to 255 characters: what the API takes as a key. */
const validKey = fc.string({
  unit: fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)),
  minLength: 1,
  maxLength: 255,
});
const invalidKey = fc.oneof(
  fc.constant(''),
  fc.constant('x'.repeat(256)),
  fc.constantFrom(' ', 'a b', 'tab\there', 'ñandú', 'emoji😀', 'line\nbreak', '\u0000'),
  anyString.filter((s) => s.length > 0 && !/^[\x21-\x7e]{1,255}$/.test(s)),
);

const bodyArb = fc.record({
  template: fc.record({
    name: fc.constantFrom('hello_world', 'appointment_reminder', 'order_shipped'),
    language: fc.constantFrom('en_US', 'es'),
  }),
  priority: fc.constantFrom('high', 'bulk'),
  metadata: fc.dictionary(
    fc.string({ minLength: 1, maxLength: 8 }),
    fc.oneof(fc.integer(), fc.string({ maxLength: 8 }), fc.boolean()),
    { maxKeys: 3 },
  ),
});

/** The same JSON with its keys in another order, at every level. */
function reorder(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(reorder);
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>)
        .reverse()
        .map(([k, v]) => [k, reorder(v)]),
    );
  }
  return value;
}

let keyRun = 0;
/** fast-check repeats keys across runs; a run prefix keeps each run's key its own. */
const scoped = (key: string) => `${(keyRun++).toString(36)}.${key}`.slice(0, 255);

describe('Idempotency-Key', () => {
  it('refuses a malformed key with a 400 on the key and writes nothing', async ({
    post,
    client,
    rowsFor,
  }) => {
    await fc.assert(
      fc.asyncProperty(invalidKey, bodyArb, async (key, body) => {
        const before = await rowsFor(client.clientId);
        const answer = await post(
          client.key,
          key,
          JSON.stringify({ to: nextRecipient(), ...body }),
        );
        expect(answer.status).toBe(400);
        expect(answer.body.error?.field).toBe('Idempotency-Key');
        expect(await rowsFor(client.clientId)).toBe(before);
      }),
      { numRuns: 150 },
    );
  });

  it('replays the same body, refuses another body with a 422, and keeps one row', async ({
    post,
    client,
    rowsFor,
  }) => {
    await fc.assert(
      fc.asyncProperty(validKey, bodyArb, bodyArb, async (rawKey, body, otherBody) => {
        const key = scoped(rawKey);
        const to = nextRecipient();
        const first = await post(client.key, key, JSON.stringify({ to, ...body }));
        expect(first.status).toBe(202);
        const again = await post(client.key, key, JSON.stringify(reorder({ to, ...body })));
        expect(again.status).toBe(202);
        expect(again.body.id).toBe(first.body.id);
        expect(again.replayed).toBe(true);
        const changed = { to: nextRecipient(), ...otherBody };
        const conflict = await post(client.key, key, JSON.stringify(changed));
        expect(conflict.status).toBe(422);
        expect(conflict.body.error?.field).toBe('Idempotency-Key');
        expect(await rowsFor(client.clientId, key)).toBe(1);
      }),
      { numRuns: 120 },
    );
  });

  it('gives two racing requests with one key one row, and answers the loser 202, 409 or 422', async ({
    post,
    client,
    rowsFor,
  }) => {
    await fc.assert(
      fc.asyncProperty(validKey, bodyArb, fc.boolean(), async (rawKey, body, sameBody) => {
        const key = scoped(rawKey);
        const to = nextRecipient();
        const a = JSON.stringify({ to, ...body });
        const b = sameBody ? a : JSON.stringify({ to: nextRecipient(), ...body });
        const answers = await Promise.all([post(client.key, key, a), post(client.key, key, b)]);
        const statuses = answers.map((x) => x.status).sort();
        expect(statuses).toContain(202);
        for (const status of statuses) {
          expect(sameBody ? [202, 409] : [202, 409, 422]).toContain(status);
        }
        const accepted = answers.filter((x) => x.status === 202).map((x) => x.body.id);
        expect(new Set(accepted).size).toBe(1);
        expect(await rowsFor(client.clientId, key)).toBe(1);
      }),
      { numRuns: 100 },
    );
  });

  it('keeps keys per client and tells keys apart by case', async ({
    post,
    client,
    other,
    rowsFor,
  }) => {
    await fc.assert(
      fc.asyncProperty(
        validKey.filter((k) => k.toLowerCase() !== k.toUpperCase()),
        bodyArb,
        async (rawKey, body) => {
          const key = scoped(rawKey);
          const raw = JSON.stringify({ to: nextRecipient(), ...body });
          const mine = await post(client.key, key, raw);
          const theirs = await post(other.key, key, raw);
          const flipped = key === key.toUpperCase() ? key.toLowerCase() : key.toUpperCase();
          const cased = await post(client.key, flipped, raw);
          expect([mine.status, theirs.status, cased.status]).toEqual([202, 202, 202]);
          expect(new Set([mine.body.id, theirs.body.id, cased.body.id]).size).toBe(3);
          expect(await rowsFor(other.clientId, key)).toBe(1);
        },
      ),
      { numRuns: 60 },
    );
  });
});
