/**
 * CPU time of the processes that make up the local pipeline, read from /proc (Linux), so each
 * phase can say which process was busy: the stack's own thread, the worker, PostgreSQL.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** Kernel clock ticks per second; 100 on every Linux this runs on. */
const TICKS_PER_SECOND = 100;

function readStat(pid: string): { comm: string; cpuMs: number; childrenCpuMs: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const close = stat.lastIndexOf(')');
    const comm = stat.slice(stat.indexOf('(') + 1, close);
    const fields = stat.slice(close + 2).split(' ');
    const ms = (i: number) => (Number(fields[i]) * 1000) / TICKS_PER_SECOND;
    // Fields 14-17 of stat (utime, stime, cutime, cstime) are 11-14 after the command name.
    return { comm, cpuMs: ms(11) + ms(12), childrenCpuMs: ms(13) + ms(14) };
  } catch {
    return undefined;
  }
}

/** CPU time (user + system) of one process, ms; undefined when it is gone or /proc is absent. */
export function processCpuMs(pid: number): number | undefined {
  return readStat(String(pid))?.cpuMs;
}

function readCmdline(pid: string): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
  } catch {
    return '';
  }
}

function parentOf(pid: string): string | undefined {
  try {
    return /^PPid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  } catch {
    return undefined;
  }
}

/** The server processes of the cluster in `dataDir`: its postmaster and the postmaster's children. */
function postgresProcesses(dataDir: string): Map<string, number> | undefined {
  let entries: string[];
  try {
    entries = readdirSync('/proc').filter((e) => /^\d+$/.test(e));
  } catch {
    return undefined;
  }
  const postmaster = entries.find((pid) => {
    const cmdline = readCmdline(pid);
    return /postgres/.test(cmdline) && cmdline.includes(`-D ${dataDir}`);
  });
  if (!postmaster) return undefined;
  const found = new Map<string, number>();
  for (const pid of entries) {
    if (pid !== postmaster && parentOf(pid) !== postmaster) continue;
    const stat = readStat(pid);
    if (stat) found.set(pid, stat.cpuMs);
  }
  return found;
}

export interface CpuMeter {
  /** CPU ms used since the meter started; null where /proc cannot be read. */
  stop(): number | null;
}

/**
 * CPU time of one PostgreSQL cluster's processes (postmaster, backends, WAL writer…) over a span;
 * other clusters on the machine (a test suite's) are not counted. Backends come and go with the
 * pools, so it samples them: a backend that started during the span counts from zero, one that
 * exited counts up to its last sample.
 */
export function startPostgresCpuMeter(dataDir: string, intervalMs = 250): CpuMeter {
  const first = postgresProcesses(dataDir);
  if (!first) return { stop: () => null };
  const last = new Map(first);
  const sample = () => {
    for (const [pid, cpuMs] of postgresProcesses(dataDir) ?? []) last.set(pid, cpuMs);
  };
  const timer = setInterval(sample, intervalMs);
  timer.unref();
  return {
    stop() {
      clearInterval(timer);
      sample();
      let total = 0;
      for (const [pid, cpuMs] of last) total += cpuMs - (first.get(pid) ?? 0);
      return total;
    },
  };
}

function machineTicks(): { busy: number; total: number } | undefined {
  try {
    const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1);
    const values = fields.map(Number);
    const total = values.slice(0, 8).reduce((a, b) => a + b, 0);
    // idle and iowait are not busy.
    return { busy: total - (values[3] ?? 0) - (values[4] ?? 0), total };
  } catch {
    return undefined;
  }
}

/** CPU ms all processes on the machine used over a span (every core): to see what else ran. */
export function startMachineCpuMeter(): CpuMeter {
  const first = machineTicks();
  return {
    stop() {
      const last = machineTicks();
      if (!first || !last) return null;
      return ((last.busy - first.busy) * 1000) / TICKS_PER_SECOND;
    },
  };
}

interface ProcessSample {
  cpuMs: number;
  parent: string | undefined;
  name: string;
}

function processTable(): Map<string, ProcessSample> {
  const table = new Map<string, ProcessSample>();
  let entries: string[];
  try {
    entries = readdirSync('/proc').filter((e) => /^\d+$/.test(e));
  } catch {
    return table;
  }
  for (const pid of entries) {
    const stat = readStat(pid);
    if (!stat) continue;
    table.set(pid, { cpuMs: stat.cpuMs, parent: parentOf(pid), name: stat.comm });
  }
  return table;
}

export interface OtherProcesses {
  /** CPU ms of every process that is not this one or one of its descendants. */
  cpuMs: number;
  /** The busiest of them: `name (pid) ms`. */
  top: string[];
}

/**
 * CPU of the processes outside this one's family (other users' test runs, builds) over a span,
 * sampled so that processes starting meanwhile count too.
 */
export function startOthersMeter(intervalMs = 500): { stop(): OtherProcesses | null } {
  const self = String(process.pid);
  const first = processTable();
  if (first.size === 0) return { stop: () => null };
  const last = new Map(first);
  const sample = () => {
    for (const [pid, entry] of processTable()) last.set(pid, entry);
  };
  const timer = setInterval(sample, intervalMs);
  timer.unref();
  return {
    stop() {
      clearInterval(timer);
      sample();
      const isOurs = (pid: string): boolean => {
        for (let p: string | undefined = pid, hops = 0; p && hops < 64; hops++) {
          if (p === self) return true;
          p = last.get(p)?.parent;
        }
        return false;
      };
      const used: { pid: string; name: string; cpuMs: number }[] = [];
      for (const [pid, entry] of last) {
        if (isOurs(pid)) continue;
        const cpuMs = entry.cpuMs - (first.get(pid)?.cpuMs ?? 0);
        if (cpuMs > 0) used.push({ pid, name: entry.name, cpuMs });
      }
      used.sort((a, b) => b.cpuMs - a.cpuMs);
      return {
        cpuMs: used.reduce((sum, u) => sum + u.cpuMs, 0),
        top: used.slice(0, 3).map((u) => `${u.name} (${u.pid}) ${Math.round(u.cpuMs)} ms`),
      };
    },
  };
}
