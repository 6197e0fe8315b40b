/** The benchmark's command line: the callbacks-dead phase and its rounds are chosen as documented. */
import { describe, expect, it } from 'vitest';
import { parseBenchOptions } from '../../bin/bench/options.ts';

describe('bench options', () => {
  it('selects the callbacks-dead phase alone with --phases, with the rounds asked for', () => {
    const options = parseBenchOptions(['--phases', 'callbacks-dead', '--callback-rounds', '5'], {});
    expect([...options.phases]).toEqual(['callbacks-dead']);
    expect(options.callbackRounds).toBe(5);
  });

  it('leaves callbacks-dead out of the default phases', () => {
    const phases = parseBenchOptions([], {}).phases;
    expect(phases.has('delivery')).toBe(true);
    expect(phases.has('callbacks-dead')).toBe(false);
  });

  it('reads the rounds from BENCH_CALLBACK_ROUNDS and defaults to three', () => {
    expect(parseBenchOptions([], { BENCH_CALLBACK_ROUNDS: '2' }).callbackRounds).toBe(2);
    expect(parseBenchOptions([], {}).callbackRounds).toBe(3);
  });

  it('refuses zero rounds and an unknown phase with a message naming the flag', () => {
    expect(() => parseBenchOptions(['--callback-rounds', '0'], {})).toThrow(/--callback-rounds/);
    expect(() => parseBenchOptions(['--phases', 'callbacks-slow'], {})).toThrow(
      /unknown phase callbacks-slow/,
    );
  });
});
