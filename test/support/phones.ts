/**
 * The one source of recipient numbers for tests: valid Colombian mobiles outside the sandbox's
 * test-number block (+5730000000xx), random in their last seven digits so parallel test files
 * never share a recipient (one chance in ten million per pair).
 */
import { randomInt } from 'node:crypto';

/** A mobile under `prefix` (`+57` and three digits), random in its last seven digits. */
export function uniqueMobile(prefix = '+57316'): string {
  if (!/^\+573\d\d$/.test(prefix)) throw new Error(`expected +573xx, got ${prefix}`);
  return `${prefix}${String(randomInt(0, 10_000_000)).padStart(7, '0')}`;
}

/** The API tests' recipients, under a prefix of their own. */
export function uniqueRecipient(): string {
  return uniqueMobile('+57310');
}

/** Sandbox stats are keyed by the recipient's digits. */
export const digits = (e164: string) => e164.slice(1);
