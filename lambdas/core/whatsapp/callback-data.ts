/**
 * The `biz_opaque_callback_data` every send carries and every status webhook echoes: which
 * notification and which claim (attempt) a message belongs to, so the webhook can settle a send
 * whose worker died before it stored the wamid, instead of the row being sent a second time.
 */
import { isUuid } from '#core/platform/ids.ts';

/** Version prefix: a value we did not write (another sender's, a newer format) is not ours. */
const PREFIX = 'wn1';
/** Attempts are counted by the claim; far below this in practice, bounded so a parse stays cheap. */
const MAX_ATTEMPT = 1_000_000;

export interface SendTag {
  notificationId: string;
  attempt: number;
}

export function encodeCallbackData(tag: SendTag): string {
  return `${PREFIX}:${tag.notificationId}:${tag.attempt}`;
}

/**
 * The tag in an echoed value, or undefined for anything we did not write. A well-formed value is
 * only a claim to check: the caller matches it against a row (see apply-status-update.ts), since
 * any sender on the same business account can put any text in this field.
 */
export function decodeCallbackData(value: string | undefined): SendTag | undefined {
  if (!value || value.length > 64) return undefined;
  const [prefix, id, attempt, ...rest] = value.split(':');
  if (prefix !== PREFIX || rest.length > 0 || !id || !attempt) return undefined;
  if (!isUuid(id) || !/^[1-9]\d{0,6}$/.test(attempt)) return undefined;
  const n = Number(attempt);
  return n <= MAX_ATTEMPT ? { notificationId: id, attempt: n } : undefined;
}
