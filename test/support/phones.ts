/**
 * The one source of recipient numbers for tests: valid Colombian mobiles outside the sandbox's
 * test-number block (+5730000000xx). Each test process counts on from a random point of the seven
 * last digits: no number comes twice in one file, and two files running side by side meet only
 * if their random starts fall within the few hundred numbers each uses.
 */
import { randomInt } from 'node:crypto';

const LAST_DIGITS = 10_000_000;
let next = randomInt(0, LAST_DIGITS);

/** A mobile under `prefix` (`+57` and three digits) that this process has not handed out before. */
export function uniqueMobile(prefix = '+57316'): string {
  if (!/^\+573\d\d$/.test(prefix)) throw new Error(`expected +573xx, got ${prefix}`);
  next = (next + 1) % LAST_DIGITS;
  return `${prefix}${String(next).padStart(7, '0')}`;
}

/** The API tests' recipients, under a prefix of their own. */
export function uniqueRecipient(): string {
  return uniqueMobile('+57310');
}

/** Sandbox stats are keyed by the recipient's digits. */
export const digits = (e164: string) => e164.slice(1);
