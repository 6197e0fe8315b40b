/** Phone numbers: E.164 mobile validation for recipients, and the one masking rule for logs and errors. */
import { parsePhoneNumberFromString } from 'libphonenumber-js/max';

export type PhoneCheck =
  | { ok: true; e164: string }
  | { ok: false; reason: 'not_e164' | 'invalid' | 'not_mobile' };

const E164 = /^\+[1-9]\d{6,14}$/;
const MOBILE_TYPES = new Set(['MOBILE', 'FIXED_LINE_OR_MOBILE']);

/** Accepts only numbers written in E.164 (`+` and digits) that are valid mobiles for their country. */
export function checkRecipient(value: string): PhoneCheck {
  if (!E164.test(value)) return { ok: false, reason: 'not_e164' };
  const parsed = parsePhoneNumberFromString(value);
  if (!parsed?.isValid()) return { ok: false, reason: 'invalid' };
  // Some countries (the US among them) cannot tell mobile from fixed line by number alone.
  const type = parsed.getType();
  if (!type || !MOBILE_TYPES.has(type)) return { ok: false, reason: 'not_mobile' };
  return { ok: true, e164: parsed.number };
}

/** `+573001234567` → `+57******4567`: enough to tell numbers apart in an incident, not to dial. */
export function maskPhone(value: string): string {
  const digits = value.replace(/[^\d]/g, '');
  if (digits.length < 7) return '***';
  return `+${digits.slice(0, 2)}${'*'.repeat(digits.length - 6)}${digits.slice(-4)}`;
}

// A `+` number (E.164, perhaps with spaces), or a bare run of 10–15 digits standing on its own, as
// Meta writes recipients (`573001234567`). Digits inside ARNs, UUIDs, timestamps or ids are left alone.
const PHONE_LIKE = /\+\d[\d ]{5,17}\d|(?<![\w:.\-/+])\d{10,15}(?![\w.\-:])/g;

/** Masks every run that looks like a phone number inside free text (error messages, log lines). */
export function maskPhonesIn(text: string): string {
  return text.replace(PHONE_LIKE, (match) => maskPhone(match));
}
