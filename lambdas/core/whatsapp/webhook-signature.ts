/**
 * Signs and verifies Meta's `X-Hub-Signature-256` header over the raw webhook body, and compares
 * the subscription's verify token, both in constant time.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

const PREFIX = 'sha256=';
const HEX_SHA256 = /^[0-9a-f]{64}$/i;

function hmac(rawBody: string | Buffer, appSecret: string): Buffer {
  return createHmac('sha256', appSecret).update(rawBody).digest();
}

/** `sha256=<hex>` over the exact bytes that will be sent (a string is taken as UTF-8). */
export function signWebhookBody(rawBody: string | Buffer, appSecret: string): string {
  return `${PREFIX}${hmac(rawBody, appSecret).toString('hex')}`;
}

/**
 * True only when the header carries the HMAC of these raw bytes. Never verify re-serialised JSON:
 * key order and whitespace change the bytes. A missing or malformed header fails closed.
 */
export function verifyWebhookSignature(
  rawBody: string | Buffer,
  header: string | undefined,
  appSecret: string,
): boolean {
  if (!header || !appSecret) return false;
  const value = header.trim();
  if (!value.toLowerCase().startsWith(PREFIX)) return false;
  const hex = value.slice(PREFIX.length);
  if (!HEX_SHA256.test(hex)) return false;
  const given = Buffer.from(hex, 'hex');
  const expected = hmac(rawBody, appSecret);
  // timingSafeEqual throws on different lengths; the regex above already pins it, check anyway.
  if (given.length !== expected.length) return false;
  return timingSafeEqual(given, expected);
}

/**
 * True when the presented verify token equals the configured one, in time that tells nothing about
 * how much of it matched or how long it is: both are hashed to equal-length SHA-256 digests first,
 * because timingSafeEqual needs equal lengths and a length check before it would leak the length.
 * An empty configured token matches nothing.
 */
export function verifyTokenMatches(presented: string, expected: string): boolean {
  if (!expected) return false;
  const digest = (value: string) => createHash('sha256').update(value, 'utf8').digest();
  return timingSafeEqual(digest(presented), digest(expected));
}
