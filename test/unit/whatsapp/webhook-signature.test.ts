/** Tests the X-Hub-Signature-256 check: raw bytes only, constant-time, fail closed. */
import { describe, expect, it } from 'vitest';
import { signWebhookBody, verifyWebhookSignature } from '#core/whatsapp/webhook-signature.ts';

const SECRET = 'app-secret-for-tests';
const RAW = '{"object":"whatsapp_business_account", "entry":[{"id":"1","changes":[]}]}';

describe('verifyWebhookSignature', () => {
  it('accepts the signature of the exact raw body', () => {
    // prepare
    const header = signWebhookBody(RAW, SECRET);

    // act
    const ok = verifyWebhookSignature(RAW, header, SECRET);

    // assess
    expect(header).toMatch(/^sha256=[0-9a-f]{64}$/);
    expect(ok).toBe(true);
  });

  it('accepts a Buffer body signed as a string (the same bytes)', () => {
    const header = signWebhookBody(RAW, SECRET);
    expect(verifyWebhookSignature(Buffer.from(RAW, 'utf8'), header, SECRET)).toBe(true);
  });

  it('rejects a tampered body', () => {
    const header = signWebhookBody(RAW, SECRET);
    const tampered = RAW.replace('"1"', '"2"');
    expect(verifyWebhookSignature(tampered, header, SECRET)).toBe(false);
  });

  it('rejects a signature made with another secret', () => {
    const header = signWebhookBody(RAW, 'another-secret');
    expect(verifyWebhookSignature(RAW, header, SECRET)).toBe(false);
  });

  it('rejects a missing or empty header', () => {
    expect(verifyWebhookSignature(RAW, undefined, SECRET)).toBe(false);
    expect(verifyWebhookSignature(RAW, '', SECRET)).toBe(false);
  });

  it('rejects a digest of the wrong length without throwing', () => {
    const header = signWebhookBody(RAW, SECRET);
    expect(verifyWebhookSignature(RAW, header.slice(0, -2), SECRET)).toBe(false);
    expect(verifyWebhookSignature(RAW, `${header}00`, SECRET)).toBe(false);
  });

  it('rejects a header without the sha256= prefix or with non-hex digits', () => {
    const hex = signWebhookBody(RAW, SECRET).slice('sha256='.length);
    expect(verifyWebhookSignature(RAW, hex, SECRET)).toBe(false);
    expect(verifyWebhookSignature(RAW, `sha1=${hex}`, SECRET)).toBe(false);
    expect(verifyWebhookSignature(RAW, `sha256=${'z'.repeat(64)}`, SECRET)).toBe(false);
  });

  it('rejects the signature once the JSON is parsed and re-serialised', () => {
    // prepare: Meta's bytes keep their spacing; JSON.stringify drops it.
    const header = signWebhookBody(RAW, SECRET);
    const reserialised = JSON.stringify(JSON.parse(RAW));

    // act / assess
    expect(reserialised).not.toBe(RAW);
    expect(verifyWebhookSignature(reserialised, header, SECRET)).toBe(false);
  });

  it('fails closed when the app secret is empty', () => {
    const header = signWebhookBody(RAW, '');
    expect(verifyWebhookSignature(RAW, header, '')).toBe(false);
  });
});
