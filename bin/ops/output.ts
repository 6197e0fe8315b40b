/** How the ops CLI writes: aligned tables and key/value blocks for people, JSON for scripts, a progress bar on stderr. */
import { writeSync } from 'node:fs';

export interface Column<T> {
  title: string;
  value: (row: T) => unknown;
  align?: 'left' | 'right';
}

export function cell(value: unknown): string {
  if (value === null || value === undefined || value === '') return '-';
  if (Array.isArray(value)) return value.length ? value.map(cell).join(',') : '-';
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

/** An aligned text table; an empty list prints `emptyText` instead. */
export function table<T>(
  rows: readonly T[],
  columns: readonly Column<T>[],
  emptyText = '(none)',
): string {
  if (rows.length === 0) return emptyText;
  const cells = rows.map((row) => columns.map((c) => cell(c.value(row))));
  const widths = columns.map((c, i) => Math.max(c.title.length, ...cells.map((r) => r[i]!.length)));
  const line = (values: string[]) =>
    values
      .map((v, i) =>
        columns[i]!.align === 'right' ? v.padStart(widths[i]!) : v.padEnd(widths[i]!),
      )
      .join('  ')
      .trimEnd();
  return [line(columns.map((c) => c.title)), ...cells.map(line)].join('\n');
}

/** `label: value` lines with the values aligned. */
export function keyValues(entries: readonly (readonly [string, unknown])[]): string {
  const width = Math.max(...entries.map(([k]) => k.length));
  return entries.map(([k, v]) => `${`${k}:`.padEnd(width + 1)} ${cell(v)}`).join('\n');
}

/** 75 → `1m15s`, 7300 → `2h01m`; null → `-`. */
export function formatAge(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined) return '-';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  if (s < 86_400)
    return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  return `${Math.floor(s / 86_400)}d${String(Math.floor((s % 86_400) / 3600)).padStart(2, '0')}h`;
}

/** An ISO time shown as `2026-11-22 23:35:01Z`, short enough for a table. */
export function formatTime(iso: string | null | undefined): string {
  if (!iso) return '-';
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}Z`;
}

export function sinceIso(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return '-';
  return `${formatAge((now - Date.parse(iso)) / 1000)} ago`;
}

export interface Output {
  json: boolean;
  /** A human line on stdout (nothing in --json mode). */
  line(text?: string): void;
  /** The one JSON document of a --json run. */
  data(value: unknown): void;
  /** A note for people on stderr (kept out of stdout, which scripts read). */
  note(text: string): void;
  /**
   * A value shown only this once (a new API key), written to stdout at once and before anything
   * else of the command; false when it could not be written (stdout closed), so the command can
   * say the value is lost. In --json mode it is part of data() instead.
   */
  secret(text: string): boolean;
}

export interface Writers {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** Writes now or throws (the process writers); defaults to stdout. */
  secret?: (text: string) => void;
}

/**
 * Set once stdout is gone (`ops status | head -1`, a closed terminal): what is left to print is
 * dropped quietly and the command ends normally instead of dying on an EPIPE stack.
 */
const closed = { stdout: false, stderr: false };

/** Installs the quiet handling of a closed stdout or stderr; bin/ops.ts calls it once at start. */
export function handleClosedOutput(): void {
  for (const name of ['stdout', 'stderr'] as const) {
    process[name].on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EPIPE' || error.code === 'ERR_STREAM_DESTROYED') {
        closed[name] = true;
        return;
      }
      throw error;
    });
  }
}

function writeTo(name: 'stdout' | 'stderr', text: string): void {
  if (closed[name] || process[name].destroyed) return;
  process[name].write(text);
}

/** A synchronous write to fd 1, so a closed pipe is known before the command goes on. */
function writeNow(text: string): void {
  if (closed.stdout || process.stdout.destroyed) throw new Error('stdout is closed');
  let buffer = Buffer.from(text);
  while (buffer.length > 0) {
    try {
      buffer = buffer.subarray(writeSync(1, buffer));
    } catch (error) {
      // A full non-blocking pipe: try again; anything else (EPIPE) means the reader is gone.
      if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') {
        closed.stdout = true;
        throw error;
      }
    }
  }
}

export const processWriters: Writers = {
  stdout: (text) => writeTo('stdout', text),
  stderr: (text) => writeTo('stderr', text),
  secret: writeNow,
};

export function createOutput(json: boolean, writers: Writers = processWriters): Output {
  return {
    json,
    line(text = '') {
      if (!json) writers.stdout(`${text}\n`);
    },
    data(value) {
      if (json) writers.stdout(`${JSON.stringify(value, null, 2)}\n`);
    },
    note(text) {
      writers.stderr(`${text}\n`);
    },
    secret(text) {
      if (json) return true;
      try {
        (writers.secret ?? writers.stdout)(`${text}\n`);
        return true;
      } catch {
        return false;
      }
    },
  };
}

/**
 * A progress bar on stderr: redrawn in place on a terminal, otherwise one line per step of 10%
 * (and the last), so logs and tests see progress without a wall of carriage returns.
 */
export function progressBar(
  label: string,
  total: number,
  stream: NodeJS.WriteStream = process.stderr,
) {
  const started = Date.now();
  const tty = Boolean(stream.isTTY);
  let lastDecile = -1;
  let current = 0;
  let currentTotal = total;
  const render = (done: number, extra: string) => {
    const width = 24;
    const ratio = currentTotal > 0 ? Math.min(1, done / currentTotal) : 1;
    const filled = Math.round(ratio * width);
    const elapsed = (Date.now() - started) / 1000;
    const rate = elapsed > 0 ? done / elapsed : 0;
    const bar = `${'#'.repeat(filled)}${'.'.repeat(width - filled)}`;
    return `${label} [${bar}] ${done}/${currentTotal} ${rate.toFixed(1)}/s${extra ? ` ${extra}` : ''}`;
  };
  return {
    update(done: number, extra = '') {
      current = done;
      if (done > currentTotal) currentTotal = done;
      if (tty) {
        stream.write(`\r${render(done, extra)}\x1b[K`);
        return;
      }
      const decile = currentTotal > 0 ? Math.floor((done / currentTotal) * 10) : 10;
      // Without a terminal: the start, then a line per 10% step.
      if (decile > lastDecile) {
        lastDecile = decile;
        stream.write(`${render(done, extra)}\n`);
      }
    },
    finish(extra = '') {
      if (tty) stream.write(`\r${render(current, extra)}\x1b[K\n`);
      else if (lastDecile < 10) stream.write(`${render(current, extra)}\n`);
    },
  };
}
