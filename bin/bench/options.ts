/** The benchmark's settings: command-line flags, each with a BENCH_* environment fallback. */
import { parseArgs } from 'node:util';

export interface BenchOptions {
  /** Notifications queued before the worker starts (delivery phase). */
  notifications: number;
  /** Pollers per queue in the worker process, like the event source's maximum concurrency. */
  workerConcurrency: number;
  /** The event source's batching window in the worker process, ms (0: none, as the stack runs). */
  batchWindowMs: number;
  /** Run the worker from its esbuild bundle (as Lambda does) or from the TypeScript source. */
  workerRuntime: 'bundle' | 'ts';
  ceilingSeconds: number;
  /**
   * Phases: delivery (a queued backlog drained by the worker), callbacks-dead (that drain with the
   * client's callback endpoint dead, next to it without one), ingest (the API alone at a fixed
   * rate, worker off), saturation (the API alone, closed loop), live (the fixed rate again with the
   * worker and the status webhooks running: API latency under the whole pipeline, end to end).
   */
  /** Offered rate of the fixed-rate phases, requests/s, and their length. */
  rate: number;
  rateSeconds: number;
  /** Unrecorded load before each ingest phase, so the figures are of warm handlers. */
  warmupSeconds: number;
  /** Connections of the saturation phase, and its length. */
  saturateConnections: number;
  /** The batch phase: notifications per POST /v1/notifications/batch, and its connections. */
  batchSize: number;
  batchConnections: number;
  saturateSeconds: number;
  /** How long to wait for the rows of an ingest phase to reach `read`. */
  e2eWaitSeconds: number;
  coldStartRuns: number;
  /** Drains per receiver in the callbacks-dead phase (the median is reported). */
  callbackRounds: number;
  /** Phases to run; DEFAULT_PHASES unless chosen. */
  phases: Set<Phase>;
  /** Also drain a second batch with the sandbox's status webhooks switched off. */
  diagnostics: boolean;
  /** Write CPU profiles of the stack process and the worker into the results folder. */
  profile: boolean;
  logLevel: string;
  /** How long to wait at the start for other work on the machine to stop. */
  quietWaitSeconds: number;
  outDir: string;
  keepData: boolean;
}

export const PHASES = [
  'bundles',
  'ceiling',
  'delivery',
  'callbacks-dead',
  'ingest',
  'saturation',
  'batch',
  'live',
] as const;
export type Phase = (typeof PHASES)[number];
/**
 * What runs without --phases: all but callbacks-dead, whose twelve drains (and the post timeouts
 * a hanging receiver makes it wait out) would add several minutes to every run.
 */
export const DEFAULT_PHASES: readonly Phase[] = PHASES.filter((p) => p !== 'callbacks-dead');

const HELP = `npm run bench -- [options]

  --notifications N         queued notifications drained by the worker (5000)
  --worker-concurrency N    pollers per queue in the worker process (4)
  --worker-runtime R        bundle | ts: run the worker's esbuild bundle or its source (bundle)
  --batch-window-ms N       the event source's batching window in the worker (0, as the stack)
  --ceiling-seconds S       length of the sandbox-alone measurement (3)
  --rate R                  offered rate of the fixed-rate phases (ingest, live), req/s (200)
  --rate-seconds S          their length (10)
  --warmup-seconds S        unrecorded load before each ingest phase (2)
  --saturate-connections N  connections of the saturation phase (32)
  --batch-size N            notifications per request of the batch phase (100)
  --batch-connections N     connections of the batch phase (4)
  --saturate-seconds S      its length (6)
  --e2e-wait-seconds S      longest wait for the live phase's rows to be read (30)
  --cold-start-runs N       fresh processes per bundle for the import time (3)
  --callback-rounds N       callbacks-dead: drains with no endpoint, an answering one, a
                            hanging one and a refusing one, N of each (3)
  --phases a,b              some of ${PHASES.join(', ')}
                            (all but callbacks-dead)
  --diagnostics             also drain with status webhooks off, to show their cost
  --profile                 write .cpuprofile files of the stack and the worker
  --log-level L             POWERTOOLS_LOG_LEVEL of the handlers (INFO, as deployed)
  --quiet-wait-seconds S    wait this long at most for the machine to be idle first (120)
  --out DIR                 results folder (bench-results)
  --keep-data               keep the embedded database folder under .local/

Each flag also reads BENCH_<NAME> from the environment (BENCH_NOTIFICATIONS=20000).`;

export function parseBenchOptions(argv: string[], env: NodeJS.ProcessEnv): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      notifications: { type: 'string' },
      'worker-concurrency': { type: 'string' },
      'worker-runtime': { type: 'string' },
      'batch-window-ms': { type: 'string' },
      'ceiling-seconds': { type: 'string' },
      rate: { type: 'string' },
      'rate-seconds': { type: 'string' },
      'warmup-seconds': { type: 'string' },
      'saturate-connections': { type: 'string' },
      'batch-size': { type: 'string' },
      'batch-connections': { type: 'string' },
      'saturate-seconds': { type: 'string' },
      'e2e-wait-seconds': { type: 'string' },
      'cold-start-runs': { type: 'string' },
      'callback-rounds': { type: 'string' },
      phases: { type: 'string' },
      diagnostics: { type: 'boolean' },
      profile: { type: 'boolean' },
      'log-level': { type: 'string' },
      'quiet-wait-seconds': { type: 'string' },
      out: { type: 'string' },
      'keep-data': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    console.log(HELP);
    process.exit(0);
  }
  const pick = (name: keyof typeof values): string | undefined => {
    const flag = values[name];
    if (typeof flag === 'string') return flag;
    return env[`BENCH_${String(name).toUpperCase().replace(/-/g, '_')}`];
  };
  const number = (name: keyof typeof values, fallback: number, min = 1): number => {
    const raw = pick(name);
    if (raw === undefined || raw === '') return fallback;
    const value = Number(raw);
    if (!Number.isFinite(value) || value < min) {
      throw new Error(`--${String(name)} must be a number ≥ ${min}, got ${raw}`);
    }
    return value;
  };
  const flag = (name: keyof typeof values): boolean =>
    values[name] === true || ['1', 'true'].includes(pick(name) ?? '');
  const runtime = pick('worker-runtime') ?? 'bundle';
  if (runtime !== 'bundle' && runtime !== 'ts') {
    throw new Error(`--worker-runtime must be bundle or ts, got ${runtime}`);
  }
  const phaseList = (pick('phases') ?? DEFAULT_PHASES.join(','))
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
  for (const phase of phaseList) {
    if (!(PHASES as readonly string[]).includes(phase)) {
      throw new Error(`unknown phase ${phase}; phases are ${PHASES.join(', ')}`);
    }
  }
  return {
    notifications: number('notifications', 5000),
    workerConcurrency: number('worker-concurrency', 4),
    workerRuntime: runtime,
    batchWindowMs: number('batch-window-ms', 0, 0),
    ceilingSeconds: number('ceiling-seconds', 3),
    rate: number('rate', 200),
    rateSeconds: number('rate-seconds', 10),
    warmupSeconds: number('warmup-seconds', 2, 0),
    saturateConnections: number('saturate-connections', 32),
    batchSize: number('batch-size', 100),
    batchConnections: number('batch-connections', 4),
    saturateSeconds: number('saturate-seconds', 6),
    e2eWaitSeconds: number('e2e-wait-seconds', 30),
    coldStartRuns: number('cold-start-runs', 3),
    callbackRounds: number('callback-rounds', 3),
    phases: new Set(phaseList as Phase[]),
    diagnostics: flag('diagnostics'),
    profile: flag('profile'),
    logLevel: pick('log-level') ?? 'INFO',
    quietWaitSeconds: number('quiet-wait-seconds', 120, 0),
    outDir: pick('out') ?? 'bench-results',
    keepData: flag('keep-data'),
  };
}
