/** The real Graph client against a real sandbox over HTTP: answers, classes, faults and signed webhooks. */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import {
  createGraphClient,
  type GraphClientConfig,
  type OutboundMessage,
} from '#core/whatsapp/graph-client.ts';
import { parseWebhookPayload } from '#core/whatsapp/webhook-payload.ts';
import { verifyWebhookSignature } from '#core/whatsapp/webhook-signature.ts';
import { type SandboxOptions, startSandbox } from '../../../bin/sandbox/server.ts';
import {
  describeSandboxTestNumbers,
  SANDBOX_TEST_NUMBERS,
  sandboxBsuid,
} from '../../../bin/sandbox/test-numbers.ts';
import { uniqueMobile } from '../../support/phones.ts';

const TOKEN = 'sandbox-token-0123456789abcdef';
const APP_SECRET = 'sandbox-app-secret';
const PHONE_NUMBER_ID = '106540352242922';
const CLIENT_TIMEOUT_MS = 300;

function template(to: string): OutboundMessage {
  return { kind: 'template', to, template: { name: 'hello_world', language: 'en_US' } };
}

async function startTestSandbox(
  overrides: Partial<SandboxOptions> = {},
  clientOverrides: Partial<GraphClientConfig> = {},
) {
  const sandbox = await startSandbox({
    port: 0,
    accessToken: TOKEN,
    appSecret: APP_SECRET,
    phoneNumberId: PHONE_NUMBER_ID,
    statusDelaysMs: { sent: 10, delivered: 20, read: 30 },
    ...overrides,
  });
  onTestFinished(() => sandbox.stop());
  const client = createGraphClient({
    apiUrl: sandbox.url,
    graphVersion: 'v25.0',
    phoneNumberId: PHONE_NUMBER_ID,
    accessToken: TOKEN,
    timeoutMs: CLIENT_TIMEOUT_MS,
    wabaId: '102290129340398',
    ...clientOverrides,
  });
  onTestFinished(() => client.close());
  return { sandbox, client };
}

interface ReceivedWebhook {
  raw: string;
  signature: string | undefined;
}

/** A small webhook endpoint that records raw bodies; `answer` decides each response's status. */
async function startReceiver(answer: (index: number) => number = () => 200) {
  const received: ReceivedWebhook[] = [];
  let index = 0;
  const server = http.createServer((req, res) => {
    let raw = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      raw += chunk;
    });
    req.on('end', () => {
      const status = answer(index++);
      if (status === 200) {
        received.push({ raw, signature: req.headers['x-hub-signature-256'] as string | undefined });
      }
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  onTestFinished(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  );
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/webhook/whatsapp`, received, requests: () => index };
}

describe('graph client against the sandbox', () => {
  it('sends a template and gets a wamid back', async () => {
    // prepare
    const { sandbox, client } = await startTestSandbox();
    const to = uniqueMobile();

    // act
    const result = await client.sendMessage(template(to));

    // assess
    expect(result).toMatchObject({ ok: true, messageStatus: 'accepted' });
    expect(result.ok && result.wamid).toMatch(/^wamid\./);
    expect(sandbox.stats()).toMatchObject({ sendsReceived: 1, accepted: 1, rejected: 0 });
    expect(sandbox.stats().byRecipient).toEqual({ [to.slice(1)]: 1 });
  });

  it('sends free text too', async () => {
    const { client } = await startTestSandbox();

    const result = await client.sendMessage({
      kind: 'text',
      to: uniqueMobile(),
      text: { body: 'Your code is 1234', previewUrl: false },
    });

    expect(result.ok).toBe(true);
  });

  it.each(Object.entries(SANDBOX_TEST_NUMBERS).filter(([, t]) => t.errorClass !== undefined))(
    'gives %s its documented class on the first attempt',
    async (number, expected) => {
      // prepare
      const { client } = await startTestSandbox();

      // act
      const first = await client.sendMessage(template(number));
      const second = await client.sendMessage(template(number));

      // assess
      expect(first).toMatchObject({
        ok: false,
        errorClass: expected.errorClass,
        ...(expected.code === undefined ? {} : { code: expected.code }),
        ...(expected.httpStatus === undefined ? {} : { httpStatus: expected.httpStatus }),
      });
      expect(second.ok).toBe(expected.once);
      const digits = number.slice(1);
      expect(JSON.stringify(first)).not.toContain(digits);
    },
  );

  it('cuts a request that never answers at the client timeout and calls it upstream', async () => {
    const { client } = await startTestSandbox();

    const result = await client.sendMessage(template('+573000000006'));

    expect(result).toMatchObject({ ok: false, errorClass: 'upstream', networkError: 'timeout' });
    expect(result.latencyMs).toBeGreaterThanOrEqual(CLIENT_TIMEOUT_MS - 20);
    expect(result.latencyMs).toBeLessThan(CLIENT_TIMEOUT_MS + 700);
  });

  it('gives auth for a wrong token, without the token in the message', async () => {
    const { sandbox } = await startTestSandbox();
    const wrongToken = 'wrong-token-abcdefghijklmnop';
    const client = createGraphClient({
      apiUrl: sandbox.url,
      graphVersion: 'v25.0',
      phoneNumberId: PHONE_NUMBER_ID,
      accessToken: wrongToken,
    });
    onTestFinished(() => client.close());

    const send = await client.sendMessage(template(uniqueMobile()));
    const probe = await client.probe();

    expect(send).toMatchObject({ ok: false, errorClass: 'auth', code: 190, httpStatus: 401 });
    expect(JSON.stringify(send)).not.toContain(wrongToken);
    expect(probe).toMatchObject({ ok: false, errorClass: 'auth', code: 190 });
  });

  it('gives invalid_request for another phone number id', async () => {
    const { sandbox } = await startTestSandbox();
    const client = createGraphClient({
      apiUrl: sandbox.url,
      graphVersion: 'v25.0',
      phoneNumberId: '999999999999999',
      accessToken: TOKEN,
    });
    onTestFinished(() => client.close());

    const result = await client.sendMessage(template(uniqueMobile()));

    expect(result).toMatchObject({ ok: false, errorClass: 'invalid_request', code: 100 });
  });

  it('answers a malformed body with a Meta-shaped 400 code 100', async () => {
    const { sandbox } = await startTestSandbox();

    const res = await fetch(`${sandbox.url}/v25.0/${PHONE_NUMBER_ID}/messages`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ messaging_product: 'whatsapp', to: '+573001234567', type: 'text' }),
    });
    const body = (await res.json()) as { error: Record<string, unknown> };

    expect(res.status).toBe(400);
    expect(body.error).toMatchObject({ code: 100, type: 'OAuthException' });
    expect(body.error.fbtrace_id).toEqual(expect.any(String));
    expect(sandbox.stats()).toMatchObject({ sendsReceived: 1, accepted: 0, rejected: 1 });
  });

  it('posts signed status webhooks in the order sent, delivered, read', async () => {
    // prepare
    const receiver = await startReceiver();
    const { sandbox, client } = await startTestSandbox({ webhookUrl: receiver.url });
    const to = uniqueMobile();

    // act
    const result = await client.sendMessage(template(to));
    await vi.waitFor(() => expect(receiver.received).toHaveLength(3), { timeout: 15_000 });

    // assess
    expect(result.ok).toBe(true);
    const updates = receiver.received.map((hook) => {
      expect(verifyWebhookSignature(hook.raw, hook.signature, APP_SECRET)).toBe(true);
      const parsed = parseWebhookPayload(JSON.parse(hook.raw));
      if (!parsed.ok) throw new Error(parsed.error);
      return parsed.statuses[0];
    });
    expect(updates.map((u) => u?.status)).toEqual(['sent', 'delivered', 'read']);
    for (const u of updates) {
      expect(u).toMatchObject({
        wamid: result.ok ? result.wamid : '',
        recipientId: to.slice(1),
        phoneNumberId: PHONE_NUMBER_ID,
      });
    }
    expect(sandbox.stats()).toMatchObject({ webhooksSent: 3, webhooksFailed: 0 });
  });

  it('puts the statuses of many sends due together into fewer signed POSTs, each message in order', async () => {
    // prepare
    const receiver = await startReceiver();
    const { client } = await startTestSandbox({ webhookUrl: receiver.url, webhookBatchMs: 20 });
    const recipients = Array.from({ length: 20 }, () => uniqueMobile());

    // act
    const results = await Promise.all(recipients.map((to) => client.sendMessage(template(to))));
    const statusCount = () =>
      receiver.received.reduce((n, hook) => {
        const parsed = parseWebhookPayload(JSON.parse(hook.raw));
        return n + (parsed.ok ? parsed.statuses.length : 0);
      }, 0);
    await vi.waitFor(() => expect(statusCount()).toBe(60), { timeout: 15_000 });

    // assess
    expect(receiver.received.length).toBeLessThan(60);
    const byWamid = new Map<string, string[]>();
    for (const hook of receiver.received) {
      expect(verifyWebhookSignature(hook.raw, hook.signature, APP_SECRET)).toBe(true);
      const parsed = parseWebhookPayload(JSON.parse(hook.raw));
      if (!parsed.ok) throw new Error(parsed.error);
      for (const u of parsed.statuses)
        byWamid.set(u.wamid, [...(byWamid.get(u.wamid) ?? []), u.status]);
    }
    for (const result of results) {
      expect(byWamid.get(result.ok ? result.wamid : '')).toEqual(['sent', 'delivered', 'read']);
    }
  });

  it('fails +573000000012 later through a failed status webhook with 131026', async () => {
    const receiver = await startReceiver();
    const { client } = await startTestSandbox({ webhookUrl: receiver.url });

    const result = await client.sendMessage(template('+573000000012'));
    await vi.waitFor(() => expect(receiver.received).toHaveLength(1), { timeout: 15_000 });
    await new Promise((resolve) => setTimeout(resolve, 80));

    expect(result.ok).toBe(true);
    expect(receiver.received).toHaveLength(1);
    const parsed = parseWebhookPayload(JSON.parse(receiver.received[0]!.raw));
    expect(parsed.ok && parsed.statuses).toEqual([
      expect.objectContaining({
        status: 'failed',
        errors: [expect.objectContaining({ code: 131026 })],
      }),
    ]);
  });

  it('retries a webhook the receiver refused and delivers it once', async () => {
    const receiver = await startReceiver((index) => (index === 0 ? 500 : 200));
    const { sandbox, client } = await startTestSandbox({ webhookUrl: receiver.url });

    await client.sendMessage(template(uniqueMobile()));
    await vi.waitFor(() => expect(receiver.received).toHaveLength(3), { timeout: 15_000 });

    expect(receiver.requests()).toBe(4);
    expect(sandbox.stats()).toMatchObject({ webhooksSent: 3, webhooksFailed: 0 });
  });

  it('counts a webhook failed after its last retry', async () => {
    const receiver = await startReceiver(() => 500);
    const { sandbox, client } = await startTestSandbox({ webhookUrl: receiver.url });

    await client.sendMessage(template(uniqueMobile()));
    await vi.waitFor(() => expect(sandbox.stats().webhooksFailed).toBeGreaterThanOrEqual(1), {
      timeout: 15_000,
    });

    expect(receiver.requests()).toBeGreaterThanOrEqual(3);
    expect(sandbox.stats().webhooksSent).toBe(0);
  });

  it('slips a malformed item among the statuses under the malformed_item fault, the rest intact', async () => {
    const receiver = await startReceiver();
    const { client } = await startTestSandbox({
      webhookUrl: receiver.url,
      faultRate: 1,
      faultKinds: ['malformed_item'],
    });

    const result = await client.sendMessage(template(uniqueMobile()));
    await vi.waitFor(() => expect(receiver.received).toHaveLength(3), { timeout: 3000 });

    // A webhook fault never fails the send itself.
    expect(result.ok).toBe(true);
    const parsed = receiver.received.map((hook) => parseWebhookPayload(JSON.parse(hook.raw)));
    expect(parsed.map((p) => p.ok && [p.statuses.length, p.rejects.length])).toEqual([
      [1, 1],
      [1, 1],
      [1, 1],
    ]);
  });

  it('posts every status body twice under redeliver, and newest first under out_of_order', async () => {
    const twice = await startReceiver();
    const { client: first } = await startTestSandbox({
      webhookUrl: twice.url,
      faultRate: 1,
      faultKinds: ['redeliver'],
    });
    const reversed = await startReceiver();
    const { client: second } = await startTestSandbox({
      webhookUrl: reversed.url,
      faultRate: 1,
      faultKinds: ['out_of_order'],
    });

    await Promise.all([
      first.sendMessage(template(uniqueMobile())),
      second.sendMessage(template(uniqueMobile())),
    ]);
    await vi.waitFor(() => expect(twice.received).toHaveLength(6), { timeout: 3000 });
    await vi.waitFor(() => expect(reversed.received).toHaveLength(3), { timeout: 3000 });

    const statuses = (hooks: { raw: string }[]) =>
      hooks.map((hook) => {
        const parsed = parseWebhookPayload(JSON.parse(hook.raw));
        return parsed.ok ? parsed.statuses[0]?.status : undefined;
      });
    expect(statuses(twice.received)).toEqual([
      'sent',
      'sent',
      'delivered',
      'delivered',
      'read',
      'read',
    ]);
    expect(statuses(reversed.received)).toEqual(['read', 'delivered', 'sent']);
  });

  it.each([
    ['message_template_status_update', { event: 'PAUSED' }, 'PAUSED'],
    ['message_template_quality_update', undefined, 'YELLOW'],
    ['template_category_update', undefined, 'COMPLETED'],
    ['phone_number_quality_update', undefined, 'THROUGHPUT_UPGRADE'],
    ['account_update', { event: 'DISABLED_UPDATE' }, 'DISABLED_UPDATE'],
    ['errors', undefined, 'error_130429'],
  ])('posts a signed %s event on POST /_sandbox/events', async (field, value, event) => {
    const receiver = await startReceiver();
    const { sandbox } = await startTestSandbox({ webhookUrl: receiver.url });

    const answer = await fetch(`${sandbox.url}/_sandbox/events`, {
      method: 'POST',
      body: JSON.stringify({ field, ...(value ? { value } : {}) }),
    });

    expect(answer.status).toBe(200);
    expect(receiver.received).toHaveLength(1);
    const hook = receiver.received[0]!;
    expect(verifyWebhookSignature(hook.raw, hook.signature, APP_SECRET)).toBe(true);
    const parsed = parseWebhookPayload(JSON.parse(hook.raw));
    expect(parsed.ok && parsed.events.map((e) => e.event)).toEqual([event]);
  });

  it('refuses POST /_sandbox/events for a field it cannot send', async () => {
    const { sandbox } = await startTestSandbox();

    const answer = await fetch(`${sandbox.url}/_sandbox/events`, {
      method: 'POST',
      body: JSON.stringify({ field: 'messages' }),
    });

    expect(answer.status).toBe(400);
  });

  it('posts a signed inbound text message', async () => {
    const receiver = await startReceiver();
    const { sandbox } = await startTestSandbox({ webhookUrl: receiver.url });

    const delivered = await sandbox.sendInboundText({ from: '+573001234567', text: 'STOP' });

    expect(delivered).toBe(true);
    const hook = receiver.received[0]!;
    expect(verifyWebhookSignature(hook.raw, hook.signature, APP_SECRET)).toBe(true);
    const parsed = parseWebhookPayload(JSON.parse(hook.raw));
    expect(parsed.ok && parsed.inbound[0]).toMatchObject({ from: '573001234567', text: 'STOP' });
  });

  it('names the username test number only by its BSUID in statuses', async () => {
    const receiver = await startReceiver();
    const { client } = await startTestSandbox({ webhookUrl: receiver.url });

    const result = await client.sendMessage(template('+573000000014'));
    await vi.waitFor(() => expect(receiver.received.length).toBeGreaterThanOrEqual(3), {
      timeout: 3000,
    });

    expect(result.ok).toBe(true);
    for (const hook of receiver.received) {
      const status = JSON.parse(hook.raw).entry[0].changes[0].value.statuses[0];
      expect(status).not.toHaveProperty('recipient_id');
      expect(status.recipient_user_id).toBe(sandboxBsuid('+573000000014'));
      const parsed = parseWebhookPayload(JSON.parse(hook.raw));
      expect(parsed.ok && parsed.statuses[0]?.wamid).toBe(result.ok && result.wamid);
    }
  });

  it('posts a username user STOP, user_preferences and changed-number messages on request', async () => {
    const receiver = await startReceiver();
    const { sandbox } = await startTestSandbox({ webhookUrl: receiver.url });
    const post = (path: string, body: unknown) =>
      fetch(`${sandbox.url}/_sandbox/${path}`, { method: 'POST', body: JSON.stringify(body) });

    const answers = [
      await post('inbound', { from: '', userId: 'CO.SANDBOX1', text: 'STOP' }),
      await post('preferences', { from: '+573001234567', value: 'stop' }),
      await post('identity', {
        type: 'user_changed_number',
        from: '+573001234567',
        newNumber: '+573007654321',
        newUserId: 'CO.SANDBOX2',
      }),
      await post('preferences', { value: 'later' }),
    ];

    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 400]);
    const [stop, preference, identity] = receiver.received.map((hook) => {
      expect(verifyWebhookSignature(hook.raw, hook.signature, APP_SECRET)).toBe(true);
      const parsed = parseWebhookPayload(JSON.parse(hook.raw));
      if (!parsed.ok) throw new Error(parsed.error);
      return parsed;
    });
    expect(stop!.inbound[0]).toMatchObject({ from: undefined, fromUserId: 'CO.SANDBOX1' });
    expect(preference!.preferences).toEqual([
      expect.objectContaining({ waId: '573001234567', value: 'stop' }),
    ]);
    expect(identity!.inbound[0]).toMatchObject({
      from: '573001234567',
      system: { type: 'user_changed_number', waId: '573007654321', userId: 'CO.SANDBOX2' },
    });
  });

  it('turns every send into an upstream failure under a 5xx fault rate of 1, probes included', async () => {
    const { sandbox, client } = await startTestSandbox({ faultRate: 1, faultKinds: ['5xx'] });

    const sends = await Promise.all(
      Array.from({ length: 10 }, () => client.sendMessage(template(uniqueMobile()))),
    );
    const probe = await client.probe();

    expect(sends.every((r) => !r.ok && r.errorClass === 'upstream')).toBe(true);
    expect(probe).toMatchObject({ ok: false, errorClass: 'upstream' });
    expect(sandbox.stats()).toMatchObject({ sendsReceived: 10, accepted: 0, rejected: 10 });
  });

  it('classifies injected 429s as rate_limited and resets as upstream', async () => {
    const { sandbox, client } = await startTestSandbox({ faultRate: 1, faultKinds: ['429'] });

    const limited = await client.sendMessage(template(uniqueMobile()));
    sandbox.setFaults({ rate: 1, kinds: ['reset'] });
    const reset = await client.sendMessage(template(uniqueMobile()));

    expect(limited).toMatchObject({ ok: false, errorClass: 'rate_limited', code: 130429 });
    expect(reset).toMatchObject({ ok: false, errorClass: 'upstream', networkError: 'ECONNRESET' });
  });

  it('mixes failures and successes at a fault rate of one half', async () => {
    const { sandbox, client } = await startTestSandbox({ faultRate: 0.5, faultKinds: ['5xx'] });

    const sends = await Promise.all(
      Array.from({ length: 60 }, () => client.sendMessage(template(uniqueMobile()))),
    );

    const failed = sends.filter((r) => !r.ok).length;
    expect(failed).toBeGreaterThan(0);
    expect(failed).toBeLessThan(60);
    expect(sandbox.stats()).toMatchObject({ sendsReceived: 60, accepted: 60 - failed });
  });

  it('takes faults and resets through its control endpoints', async () => {
    const { sandbox, client } = await startTestSandbox();

    const set = await fetch(`${sandbox.url}/_sandbox/faults`, {
      method: 'POST',
      body: JSON.stringify({ rate: 1, kinds: ['5xx'] }),
    });
    const failed = await client.sendMessage(template(uniqueMobile()));
    const stats = (await (await fetch(`${sandbox.url}/_sandbox/stats`)).json()) as Record<
      string,
      unknown
    >;
    await fetch(`${sandbox.url}/_sandbox/reset`, { method: 'POST' });
    const after = await client.sendMessage(template(uniqueMobile()));
    const bad = await fetch(`${sandbox.url}/_sandbox/faults`, {
      method: 'POST',
      body: JSON.stringify({ rate: 2 }),
    });

    expect(set.status).toBe(200);
    expect(failed.ok).toBe(false);
    expect(stats).toMatchObject({ sendsReceived: 1, rejected: 1 });
    expect(after.ok).toBe(true);
    expect(sandbox.stats()).toMatchObject({ sendsReceived: 1, accepted: 1 });
    expect(bad.status).toBe(400);
  });

  it('faults only the next N sends when the window is counted in sends, then switches itself off', async () => {
    const { sandbox, client } = await startTestSandbox();
    sandbox.setFaults({ rate: 1, kinds: ['5xx'], nextSends: 3 });

    const results = [];
    for (let i = 0; i < 5; i++) results.push(await client.sendMessage(template(uniqueMobile())));

    expect(results.map((r) => r.ok)).toEqual([false, false, false, true, true]);
    expect(sandbox.stats()).toMatchObject({ sendsReceived: 5, rejected: 3, faulted: 3 });
    expect(sandbox.faults()).toMatchObject({ rate: 0, nextSends: null });
  });

  it('keeps faults on until N sends failed because of them, however many sends that takes', async () => {
    const { sandbox, client } = await startTestSandbox();
    // One send in two draws a fault, so the window ends after a number of sends nobody fixed.
    sandbox.setFaults({ rate: 0.5, kinds: ['5xx'], untilFailed: 4 });

    let sends = 0;
    while (sandbox.faults().rate > 0 && sends < 500) {
      await client.sendMessage(template(uniqueMobile()));
      sends += 1;
    }
    const atEnd = sandbox.stats();
    const after = await client.sendMessage(template(uniqueMobile()));

    expect(atEnd.faulted).toBe(4);
    expect(atEnd.rejected).toBe(4);
    expect(atEnd.sendsReceived).toBe(sends);
    expect(after.ok).toBe(true);
    expect(sandbox.faults()).toMatchObject({ rate: 0, untilFailed: null });
  });

  it('counts a timed-out send as failed by its fault only once the client gives up', async () => {
    const { sandbox, client } = await startTestSandbox({ timeoutHoldMs: 10_000 });
    sandbox.setFaults({ rate: 1, kinds: ['timeout'], untilFailed: 1 });

    const cut = await client.sendMessage(template(uniqueMobile()));
    await expect.poll(() => sandbox.stats().faulted, { timeout: 10_000 }).toBe(1);

    expect(cut).toMatchObject({ ok: false, errorClass: 'upstream' });
    expect(sandbox.faults().rate).toBe(0);
  });

  it('takes a counted fault window through its control endpoint and refuses a bad count', async () => {
    const { sandbox, client } = await startTestSandbox();

    const set = await fetch(`${sandbox.url}/_sandbox/faults`, {
      method: 'POST',
      body: JSON.stringify({ rate: 1, kinds: ['429'], nextSends: 2 }),
    });
    const first = await client.sendMessage(template(uniqueMobile()));
    const state = (await (await fetch(`${sandbox.url}/_sandbox/stats`)).json()) as {
      faults: unknown;
    };
    const bad = await fetch(`${sandbox.url}/_sandbox/faults`, {
      method: 'POST',
      body: JSON.stringify({ rate: 1, untilFailed: 0 }),
    });

    expect(set.status).toBe(200);
    expect(await set.json()).toEqual({ rate: 1, kinds: ['429'], nextSends: 2, untilFailed: null });
    expect(first).toMatchObject({ ok: false, errorClass: 'rate_limited' });
    expect(state.faults).toEqual({ rate: 1, kinds: ['429'], nextSends: 1, untilFailed: null });
    expect(bad.status).toBe(400);
  });

  it('answers probes, template statuses and token status like Graph API', async () => {
    const { client } = await startTestSandbox();

    const probe = await client.probe();
    const templates = await client.listTemplates();
    const token = await client.tokenStatus();

    expect(probe).toMatchObject({ ok: true, qualityRating: 'GREEN', throughputLevel: 'STANDARD' });
    expect(templates.ok && templates.templates.map((t) => t.status)).toEqual(
      expect.arrayContaining(['APPROVED', 'PAUSED', 'REJECTED']),
    );
    expect(token).toMatchObject({ ok: true, valid: true, expiresAt: null });
  });

  it('forgets first attempts on reset, so a once-number fails again', async () => {
    const { sandbox, client } = await startTestSandbox();
    await client.sendMessage(template('+573000000004'));

    sandbox.reset();
    const again = await client.sendMessage(template('+573000000004'));

    expect(again).toMatchObject({ ok: false, errorClass: 'rate_limited' });
  });

  it('returns a classified failure, not a throw, when nothing listens', async () => {
    const { sandbox } = await startTestSandbox();
    await sandbox.stop();
    const client = createGraphClient({
      apiUrl: sandbox.url,
      graphVersion: 'v25.0',
      phoneNumberId: PHONE_NUMBER_ID,
      accessToken: TOKEN,
    });
    onTestFinished(() => client.close());

    const result = await client.sendMessage(template(uniqueMobile()));

    expect(result).toMatchObject({
      ok: false,
      errorClass: 'upstream',
      networkError: 'ECONNREFUSED',
    });
  });

  it('documents every test number in a markdown table', () => {
    const table = describeSandboxTestNumbers();

    for (const number of Object.keys(SANDBOX_TEST_NUMBERS)) expect(table).toContain(number);
  });
});
