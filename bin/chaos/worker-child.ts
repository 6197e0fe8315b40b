/**
 * Starts bin/chaos/worker-process.ts (or its bundle) as a child process and talks to it: wait until
 * it polls, ask for its counters, stop it cleanly or SIGKILL it. Used by the benchmark and the chaos run.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { WorkerStats } from './worker-process.ts';

export const WORKER_PROCESS_SCRIPT = fileURLToPath(new URL('./worker-process.ts', import.meta.url));

export interface WorkerChildOptions {
  /** The stack's environment (DATABASE_URL, queue URLs, WHATSAPP_*); process.env by default. */
  env?: NodeJS.ProcessEnv;
  /** Pollers per queue. */
  concurrency: number;
  countQueries?: boolean;
  /** A bundled worker-process to run instead of the TypeScript source. */
  script?: string;
  /** Where the child's stdout and stderr go: a file descriptor, or 'ignore' (default), or 'inherit'. */
  output?: number | 'ignore' | 'inherit';
  execArgv?: string[];
}

export interface WorkerChild {
  pid: number;
  process: ChildProcess;
  /** Resolves when the event sources are polling. */
  ready: Promise<void>;
  /** Resolves with the exit code or signal. */
  exited: Promise<string>;
  stats(timeoutMs?: number): Promise<WorkerStats | undefined>;
  reset(): void;
  /** Stops polling after the batches in hand, then waits for the exit. */
  stop(): Promise<void>;
  /** SIGKILL: the batches in hand are cut off wherever they are. */
  kill(): Promise<void>;
}

export function startWorkerChild(options: WorkerChildOptions): WorkerChild {
  const output = options.output ?? 'ignore';
  const child = fork(options.script ?? WORKER_PROCESS_SCRIPT, [], {
    env: {
      ...(options.env ?? process.env),
      WORKER_CONCURRENCY: String(options.concurrency),
      WORKER_COUNT_QUERIES: options.countQueries ? '1' : '0',
    },
    stdio: ['ignore', output, output, 'ipc'],
    execArgv: options.execArgv ?? [],
  });
  const exited = new Promise<string>((resolve) =>
    child.once('exit', (code, signal) => resolve(signal ?? String(code))),
  );
  const ready = new Promise<void>((resolve, reject) => {
    const onMessage = (message: { type?: string }) => {
      if (message?.type === 'ready') {
        child.off('message', onMessage);
        resolve();
      }
    };
    child.on('message', onMessage);
    void exited.then((how) => reject(new Error(`worker process exited before polling (${how})`)));
  });
  // A kill before ready must not surface as an unhandled rejection.
  ready.catch(() => {});

  const alive = () => child.exitCode === null && child.signalCode === null && child.connected;
  return {
    pid: child.pid!,
    process: child,
    ready,
    exited,
    stats(timeoutMs = 5_000) {
      if (!alive()) return Promise.resolve(undefined);
      return new Promise((resolve) => {
        const timer = setTimeout(() => {
          child.off('message', onMessage);
          resolve(undefined);
        }, timeoutMs);
        const onMessage = (message: WorkerStats) => {
          if (message?.type !== 'stats') return;
          clearTimeout(timer);
          child.off('message', onMessage);
          resolve(message);
        };
        child.on('message', onMessage);
        child.send({ type: 'stats' });
      });
    },
    reset() {
      if (alive()) child.send({ type: 'reset' });
    },
    async stop() {
      if (alive()) child.send({ type: 'stop' });
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      await exited;
      clearTimeout(timer);
    },
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}
