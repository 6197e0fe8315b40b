/**
 * The sandbox's fault plan on its own: windows counted in sends (the next N, or until N failed)
 * end themselves, read-only calls draw faults without using up a count, the webhook kinds are
 * drawn only for webhooks, and a bad plan is refused.
 */
import { describe, expect, it } from 'vitest';
import { createFaults, faultPlanProblem } from '../../../bin/sandbox/faults.ts';

/** A random source that answers the given values in turn, so every draw is known. */
const sequence = (...values: number[]) => {
  let i = 0;
  return () => values[i++ % values.length]!;
};

describe('counted fault windows', () => {
  it('faults the next N sends, counting the ones that drew no fault, then switches off', () => {
    // Draws alternate: below the rate (a fault) then above it (none).
    const faults = createFaults({ rate: 0 }, sequence(0.1, 0, 0.9));
    faults.set({ rate: 0.5, kinds: ['5xx'], nextSends: 3 });

    const drawn = Array.from({ length: 5 }, () => faults.forSend());

    expect(drawn).toEqual(['5xx', undefined, '5xx', undefined, undefined]);
    expect(faults.state()).toEqual({ rate: 0, kinds: ['5xx'], nextSends: null, untilFailed: null });
  });

  it('stays on until N sends failed, whatever the number of sends between', () => {
    const faults = createFaults({ rate: 0 }, () => 0);
    faults.set({ rate: 1, kinds: ['429'], untilFailed: 2 });

    expect(faults.forSend()).toBe('429');
    faults.sendFailed();
    expect(faults.forSend()).toBe('429');
    expect(faults.state().untilFailed).toBe(1);
    faults.sendFailed();

    expect(faults.forSend()).toBeUndefined();
    expect(faults.state()).toMatchObject({ rate: 0, untilFailed: null });
  });

  it('lets read-only calls draw faults without using up the send count', () => {
    const faults = createFaults({ rate: 0 }, () => 0);
    faults.set({ rate: 1, kinds: ['timeout'], nextSends: 1 });

    expect([faults.forRead(), faults.forRead()]).toEqual(['timeout', 'timeout']);
    expect(faults.state().nextSends).toBe(1);
  });

  it('keeps the kinds in force when a plan names none, and reset restores the start', () => {
    const faults = createFaults({ rate: 0.2, kinds: ['slow'] });
    faults.set({ rate: 1, kinds: ['reset'] });
    faults.set({ rate: 0.5 });
    expect(faults.state()).toMatchObject({ rate: 0.5, kinds: ['reset'] });

    faults.reset();
    expect(faults.state()).toEqual({
      rate: 0.2,
      kinds: ['slow'],
      nextSends: null,
      untilFailed: null,
    });
  });
});

describe('webhook fault kinds', () => {
  it('never gives a send or a read a webhook kind, and draws a webhook kind only when it is set', () => {
    const faults = createFaults({ rate: 1, kinds: ['redeliver', '429'] }, () => 0);

    expect(Array.from({ length: 4 }, () => faults.forSend())).toEqual(['429', '429', '429', '429']);
    expect(faults.forRead()).toBe('429');
    expect(faults.forWebhook('redeliver')).toBe(true);
    expect(faults.forWebhook('out_of_order')).toBe(false);
  });

  it('faults no send when only webhook kinds are set, and no webhook at rate 0', () => {
    const faults = createFaults({ rate: 1, kinds: ['malformed_item'] }, () => 0);
    expect(faults.forSend()).toBeUndefined();
    expect(faults.forWebhook('malformed_item')).toBe(true);

    faults.set({ rate: 0 });
    expect(faults.forWebhook('malformed_item')).toBe(false);
  });
});

describe('faultPlanProblem', () => {
  it.each([
    [{ rate: 0.5 }],
    [{ rate: 1, kinds: ['5xx', 'reset'] }],
    [{ rate: 0.2, kinds: ['malformed_item', 'redeliver', 'out_of_order', '429'] }],
    [{ rate: 1, nextSends: 20 }],
    [{ rate: 1, untilFailed: 5 }],
  ])('accepts %j', (body) => {
    expect(faultPlanProblem(body)).toBeUndefined();
  });

  it.each([
    [{}],
    [{ rate: 2 }],
    [{ rate: 1, kinds: ['boom'] }],
    [{ rate: 1, nextSends: 0 }],
    [{ rate: 1, untilFailed: 1.5 }],
    [{ rate: 1, nextSends: '3' }],
  ])('refuses %j, naming the shape it expects', (body) => {
    expect(faultPlanProblem(body)).toMatch(/nextSends\?: N, untilFailed\?: N/);
  });
});
