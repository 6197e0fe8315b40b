/**
 * Callback signatures: `Webhook-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`,
 * one `v1` per secret that signs (two during a rotation's grace period), so a receiver that knows
 * either secret accepts the post, and the timestamp inside the signature stops a replay.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const SIGNATURE_HEADER = 'Webhook-Signature';
export const ID_HEADER = 'Webhook-Id';
export const TIMESTAMP_HEADER = 'Webhook-Timestamp';

/** How far a receiver should let `t` drift from its clock; the README example uses the same. */
export const SIGNATURE_TOLERANCE_SECONDS = 300;

function hmacHex(secret: string, timestamp: number, body: string): string {
  return createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex');
}

/** The three headers of one post. `secrets` is the current secret first, then any still in grace. */
export function callbackHeaders(input: {
  eventId: string;
  body: string;
  secrets: readonly string[];
  timestamp: number;
}): Record<string, string> {
  const v1 = input.secrets.map((s) => `v1=${hmacHex(s, input.timestamp, input.body)}`);
  return {
    [SIGNATURE_HEADER]: [`t=${input.timestamp}`, ...v1].join(','),
    [ID_HEADER]: input.eventId,
    [TIMESTAMP_HEADER]: String(input.timestamp),
  };
}

/**
 * What a receiver does (the README shows the same steps): any `v1` must match the HMAC of
 * "<t>.<raw body>" with its secret, and `t` must be recent.
 */
export function verifyCallbackSignature(input: {
  header: string | undefined;
  body: string;
  secret: string;
  nowSeconds: number;
  toleranceSeconds?: number;
}): boolean {
  if (!input.header) return false;
  const parts = input.header.split(',').map((p) => p.trim().split('=', 2) as [string, string]);
  const t = Number(parts.find(([k]) => k === 't')?.[1]);
  if (!Number.isInteger(t)) return false;
  if (Math.abs(input.nowSeconds - t) > (input.toleranceSeconds ?? SIGNATURE_TOLERANCE_SECONDS)) {
    return false;
  }
  const expected = Buffer.from(hmacHex(input.secret, t, input.body), 'hex');
  return parts.some(([k, v]) => {
    if (k !== 'v1' || !v || v.length !== expected.length * 2) return false;
    return timingSafeEqual(Buffer.from(v, 'hex'), expected);
  });
}
