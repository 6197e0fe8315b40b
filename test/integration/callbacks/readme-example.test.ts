/**
 * The README's receiver example, run as written: extracted from the README, imported as a module,
 * and used to verify real posts from the dispatcher, including a tampered body and an old timestamp.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it, onTestFinished } from 'vitest';
import { callbackHeaders } from '#core/callbacks/signature.ts';
import { PROJECT_ROOT } from '../../../lib/notif-function.ts';

type Verify = (raw: string, header: string, secret: string, nowSeconds?: number) => boolean;

async function readmeVerifier(): Promise<{ verify: Verify; lines: number }> {
  const readme = await readFile(join(PROJECT_ROOT, 'README.md'), 'utf8');
  const match = /<!-- callback-receiver-example -->\n```js\n([\s\S]*?)```/.exec(readme);
  if (!match) throw new Error('README has no callback receiver example');
  const dir = await mkdtemp(join(tmpdir(), 'readme-example-'));
  onTestFinished(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'verify.mjs');
  await writeFile(file, match[1]!);
  const module = (await import(pathToFileURL(file).href)) as { verifyWebhook: Verify };
  return { verify: module.verifyWebhook, lines: match[1]!.trim().split('\n').length };
}

describe("the README's callback receiver example", () => {
  it('accepts a post signed by the dispatcher and refuses a tampered, stale or foreign one', async () => {
    // prepare
    const { verify, lines } = await readmeVerifier();
    const body = JSON.stringify({ id: 'evt', type: 'notification.sent', sequence: 2 });
    const now = Math.floor(Date.now() / 1000);
    const sign = (secrets: string[], timestamp = now) =>
      callbackHeaders({ eventId: 'evt', body, secrets, timestamp })['Webhook-Signature']!;

    // act + assess
    expect(lines).toBeLessThanOrEqual(12);
    expect(verify(body, sign(['whsec_a']), 'whsec_a')).toBe(true);
    expect(verify(`${body} `, sign(['whsec_a']), 'whsec_a')).toBe(false);
    expect(verify(body, sign(['whsec_a'], now - 600), 'whsec_a')).toBe(false);
    expect(verify(body, sign(['whsec_b']), 'whsec_a')).toBe(false);
    // During a rotation either secret verifies.
    expect(verify(body, sign(['whsec_new', 'whsec_old']), 'whsec_old')).toBe(true);
    expect(verify(body, sign(['whsec_new', 'whsec_old']), 'whsec_new')).toBe(true);
    expect(verify(body, 't=abc,v1=00', 'whsec_a')).toBe(false);
  });
});
