/**
 * The scheduler's time budget: a panic-mode probe starts only when its wait, its worst case and the
 * reserve for the rest of the run fit in what is left of the invocation, and the deployed timeout
 * leaves room for every probe of a run at the Graph timeout.
 */
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_SCHEDULER_OPTIONS,
  probeFits,
  type SchedulerOptions,
} from '#core/delivery/scheduler.ts';
import { builtStage, logicalId } from '../../infra/stages.ts';

const options: SchedulerOptions = {
  ...DEFAULT_SCHEDULER_OPTIONS,
  probeIntervalMs: 15_000,
  graphCallMaxMs: 10_000,
  reserveMs: 25_000,
};

describe('probeFits', () => {
  it('starts the first probe when the probe and the reserve fit, without a wait', () => {
    expect(probeFits(35_000, true, options)).toBe(true);
    expect(probeFits(34_999, true, options)).toBe(false);
  });

  it('counts the wait before a later probe', () => {
    expect(probeFits(50_000, false, options)).toBe(true);
    expect(probeFits(49_999, false, options)).toBe(false);
  });
});

describe('the scheduler function timeout', () => {
  it('fits a full run of probes at the Graph timeout, their waits, the reserve and time for the run before them', () => {
    // prepare
    const { template, stack } = builtStage('prod');
    const fn = template.toJSON().Resources[logicalId(stack, stack.functions.scheduler)];
    const timeoutMs = (fn.Properties.Timeout as number) * 1000;
    const o = DEFAULT_SCHEDULER_OPTIONS;
    const probing = o.probesPerRun * o.graphCallMaxMs + (o.probesPerRun - 1) * o.probeIntervalMs;
    // The scheduled rows, the outbox sweep and the circuit read come before the probes.
    const beforeProbes = 20_000;

    // assess
    expect(timeoutMs).toBeGreaterThanOrEqual(beforeProbes + probing + o.reserveMs);
    // Under Lambda's ceiling with room, and short enough that a stuck run ends within minutes.
    expect(timeoutMs).toBeLessThanOrEqual(5 * 60_000);
  });
});
