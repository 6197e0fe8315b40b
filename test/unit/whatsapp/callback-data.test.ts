/** The callback data a send carries: read back only when it is exactly what we wrote. */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { decodeCallbackData, encodeCallbackData } from '#core/whatsapp/callback-data.ts';

const id = randomUUID();

describe('callback data', () => {
  it('reads back the notification id and attempt it was written with', () => {
    // act
    const value = encodeCallbackData({ notificationId: id, attempt: 3 });

    // assess
    expect(value.length).toBeLessThanOrEqual(64);
    expect(decodeCallbackData(value)).toEqual({ notificationId: id, attempt: 3 });
  });

  it.each([
    ['absent', undefined],
    ['empty', ''],
    ['another format version', `wn2:${id}:1`],
    ['a bare id', id],
    ['an id that is not a uuid', 'wn1:order-1234:1'],
    ['attempt zero', `wn1:${id}:0`],
    ['a negative attempt', `wn1:${id}:-1`],
    ['a fractional attempt', `wn1:${id}:1.5`],
    ['a leading zero', `wn1:${id}:01`],
    ['a huge attempt', `wn1:${id}:99999999`],
    ['a trailing field', `wn1:${id}:1:x`],
    ['a long value', `wn1:${id}:1${' '.repeat(100)}`],
  ])('refuses %s', (_, value) => {
    expect(decodeCallbackData(value)).toBeUndefined();
  });
});
