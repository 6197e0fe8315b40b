/** The shape of one ops CLI command, and the helpers commands use to read their flags. */
import type { ParseArgsOptionsConfig } from 'node:util';
import type { ApiClient } from './api-client.ts';
import type { Output } from './output.ts';
import { OpsError, type Target, UsageError } from './target.ts';

export type FlagValue = string | boolean | (string | boolean)[] | undefined;

export interface CommandContext {
  flags: Record<string, FlagValue>;
  positionals: string[];
  out: Output;
  /** Resolved on first use, so `--help` and usage errors need no target. */
  target(): Promise<Target>;
  api(): Promise<ApiClient>;
}

export interface Command {
  /** The words that select it: `keys create`, `templates`. */
  name: string;
  summary: string;
  /** What follows the name in the usage line: `<prefix> [--grace 24h]`. */
  usage?: string;
  description?: string;
  options?: ParseArgsOptionsConfig;
  /** `[flag, what it does]` rows for --help. */
  optionsHelp?: [string, string][];
  /** How many positionals the command takes (default none). */
  positionals?: { min: number; max: number; names: string };
  examples?: string[];
  /** Returns the exit code (default 0). */
  run(ctx: CommandContext): Promise<number | undefined>;
}

export function stringFlag(ctx: CommandContext, name: string): string | undefined {
  const value = ctx.flags[name];
  return typeof value === 'string' ? value : undefined;
}

export function requiredFlag(ctx: CommandContext, name: string, hint: string): string {
  const value = stringFlag(ctx, name);
  if (value === undefined || value.trim() === '')
    throw new UsageError(`--${name} is required: ${hint}`);
  return value;
}

export function intFlag(
  ctx: CommandContext,
  name: string,
  range: { min: number; max: number },
): number | undefined {
  const raw = stringFlag(ctx, name);
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < range.min || value > range.max) {
    throw new UsageError(`--${name} must be a whole number from ${range.min} to ${range.max}`);
  }
  return value;
}

export function positiveNumberFlag(ctx: CommandContext, name: string): number | undefined {
  const raw = stringFlag(ctx, name);
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0)
    throw new UsageError(`--${name} must be a number above 0`);
  return value;
}

/** `90`, `90s`, `15m`, `24h`, `7d` → seconds. */
export function parseDuration(raw: string, flag: string): number {
  const match = /^(\d+)([smhd]?)$/.exec(raw.trim());
  if (!match) throw new UsageError(`--${flag} must be a duration such as 90s, 15m, 24h or 7d`);
  const unit = { '': 1, s: 1, m: 60, h: 3600, d: 86_400 }[match[2] as '' | 's' | 'm' | 'h' | 'd'];
  return Number(match[1]) * unit;
}

export function boolFlag(ctx: CommandContext, name: string): boolean {
  return ctx.flags[name] === true;
}

/**
 * A secret the service shows once (an API key, a callback signing secret): first of all a command
 * prints, written at once, so `| head -1` or a terminal closed a moment later still has it; then
 * the note that it is shown once. When stdout is already gone the secret is lost: the command
 * fails with `ifLost`, which says what to do without the secret itself.
 */
export function printOnceOnly(
  ctx: CommandContext,
  text: string,
  ifLost: string,
  storeNote: string,
): void {
  if (!ctx.out.secret(text)) throw new OpsError(ifLost);
  ctx.out.line(storeNote);
  ctx.out.line();
}
