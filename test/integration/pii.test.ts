/**
 * No full phone number leaves the service: the whole local stack runs in this process (API,
 * worker, webhook, scheduler, sandbox as Meta) and every flow it can drive — accepted, each sandbox
 * failure number, the DLQ, status and inbound STOP webhooks, a forged webhook, bad requests, the
 * admin routes, the ops CLI — while every stdout/stderr line, every answer body and the CLI's
 * output are kept. The test fails if any of them holds the digits of a number it used.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalStack } from '../../bin/local/stack.ts';
import { type CliResult, type OwnStack, runOps, startOwnStack } from '../support/ops-stack.ts';

const NORMAL = '+573001234567';
const OPTED_OUT_BY_KEYWORD = '+573001234599';
const IN_A_REASON = '+573001234588';
const INVALID = '+5730012';
const FINAL_FAILURES = [
  '+573000000001',
  '+573000000002',
  '+573000000003',
  '+573000000007',
  '+573000000012',
  '+573000000013',
];
const RETRIED_THEN_READ = ['+573000000004', '+573000000005', '+573000000006', '+573000000010'];
const TO_DLQ = '+573000000011';
const OPENS_CIRCUIT = ['+573000000009', '+573000000008'];
const USED = [
  NORMAL,
  OPTED_OUT_BY_KEYWORD,
  IN_A_REASON,
  ...FINAL_FAILURES,
  ...RETRIED_THEN_READ,
  TO_DLQ,
  ...OPENS_CIRCUIT,
];

/** Everything that left the service: log lines, answer bodies and headers, CLI output. */
const captured: string[] = [];
const answers: string[] = [];
const cliRuns: CliResult[] = [];
const originalWrite = { out: process.stdout.write, err: process.stderr.write };

let own: OwnStack;
let stack: LocalStack;
let traceAnswer: Record<string, unknown> | undefined;

function capture(stream: NodeJS.WriteStream, into: string[]) {
  stream.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
    into.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
    const done = rest.find((r) => typeof r === 'function') as (() => void) | undefined;
    done?.();
    return true;
  }) as typeof stream.write;
}

beforeAll(async () => {
  Object.assign(process.env, {
    // Every line the functions can write, and fast retries so the DLQ fills within the test.
    POWERTOOLS_LOG_LEVEL: 'DEBUG',
    BACKOFF_BASE_SECONDS: '1',
    BACKOFF_CAP_SECONDS: '1',
    CIRCUIT_FAILURE_THRESHOLD: '100',
    WHATSAPP_TIMEOUT_MS: '1000',
  });
  capture(process.stdout, captured);
  capture(process.stderr, captured);
  own = await startOwnStack({
    worker: true,
    workerConcurrency: 2,
    schedulerIntervalSeconds: 2,
    log: (line) => captured.push(`${line}\n`),
  });
  stack = own.stack;
});

afterAll(async () => {
  await own?.stop();
  process.stdout.write = originalWrite.out;
  process.stderr.write = originalWrite.err;
});

async function call(
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; json: Record<string, unknown> }> {
  const response = await fetch(`${stack.baseUrl}${path}`, {
    method,
    headers: {
      'x-api-key': stack.apiKey,
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...headers,
    },
    ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
  });
  const text = await response.text();
  answers.push(text, JSON.stringify([...response.headers]));
  return { status: response.status, json: text ? JSON.parse(text) : {} };
}

async function send(to: string, headers: Record<string, string> = {}): Promise<string> {
  const answer = await call(
    'POST',
    '/v1/notifications',
    { to, template: { name: 'hello_world', language: 'en_US' } },
    headers,
  );
  expect(answer.status).toBe(202);
  if (headers['x-request-id']) traceAnswer = answer.json;
  return answer.json.id as string;
}

async function waitFor(id: string, done: (status: string) => boolean, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  let status = '';
  while (Date.now() < deadline) {
    status = (await call('GET', `/v1/notifications/${id}`)).json.status as string;
    if (done(status)) return status;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return status;
}

async function ops(...args: string[]): Promise<CliResult> {
  const result = await runOps([...args, '--url', stack.baseUrl, '--api-key', stack.apiKey]);
  cliRuns.push(result);
  return result;
}

describe('personal data in logs, answers and the CLI', () => {
  it('drives every flow of the stack', async () => {
    const normal = await send(NORMAL);
    // Each sandbox behaviour, and the always-failing number that ends in the DLQ. The first retried
    // one carries a request id that must reach the worker's lines (a clean send logs none there).
    const finals = await Promise.all(FINAL_FAILURES.map((n) => send(n)));
    const retried = await Promise.all(
      RETRIED_THEN_READ.map((n, i) => send(n, i === 0 ? { 'x-request-id': 'pii-trace-1' } : {})),
    );
    expect(traceAnswer?.requestId).toBe('pii-trace-1');
    const dlq = await send(TO_DLQ);
    // Inbound STOP through the signed webhook, then a send to that recipient.
    expect(await stack.sandbox!.sendInboundText({ from: OPTED_OUT_BY_KEYWORD, text: 'STOP' })).toBe(
      true,
    );
    const optedOut = await send(OPTED_OUT_BY_KEYWORD);
    // Bad input: answers must not echo the number.
    expect(
      (await call('POST', '/v1/notifications', { to: INVALID, text: { body: 'x' } })).status,
    ).toBe(400);
    expect(
      (
        await call('POST', '/v1/notifications', {
          to: NORMAL,
          text: { body: 'x' },
          template: { name: 'a', language: 'es' },
        })
      ).status,
    ).toBe(400);
    expect((await call('POST', '/v1/notifications', `{"to":"${NORMAL}",`)).status).toBe(400);
    // A forged webhook carrying a number.
    const forged = await fetch(`${stack.baseUrl}/webhook/whatsapp`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-hub-signature-256': 'sha256=00' },
      body: JSON.stringify({
        entry: [{ changes: [{ value: { messages: [{ from: NORMAL.slice(1) }] } }] }],
      }),
    });
    answers.push(await forged.text());
    expect(forged.status).toBe(401);

    expect(await waitFor(normal, (s) => s === 'read')).toBe('read');
    const finalStates = await Promise.all(finals.map((id) => waitFor(id, (s) => s === 'failed')));
    expect(finalStates).toEqual(FINAL_FAILURES.map(() => 'failed'));
    await Promise.all(retried.map((id) => waitFor(id, (s) => s === 'read')));
    expect(await waitFor(optedOut, (s) => s === 'skipped' || s === 'failed')).toMatch(
      /skipped|failed/,
    );

    // Admin routes, with a number in a panic reason and in a key name.
    await call('GET', `/v1/admin/notifications/${dlq}`);
    await call('POST', '/v1/admin/panic', {
      enabled: true,
      reason: `customer ${IN_A_REASON} complained`,
    });
    await call('POST', '/v1/admin/panic', { enabled: false, reason: `closed for ${IN_A_REASON}` });
    expect((await call('POST', '/v1/admin/keys', { name: IN_A_REASON })).status).toBe(400);
    await call('GET', '/v1/admin/audit?limit=50');
    await call('GET', '/v1/admin/keys');

    // The DLQ: wait until the always-failing number is there, then list it with the CLI.
    const deadline = Date.now() + 60_000;
    let inDlq = 0;
    while (inDlq === 0 && Date.now() < deadline) {
      const status = (await call('GET', '/v1/admin/status')).json as {
        queues: { name: string; visible: number }[];
      };
      inDlq = status.queues.find((q) => q.name === 'high-dlq')?.visible ?? 0;
      if (inDlq === 0) await new Promise((resolve) => setTimeout(resolve, 500));
    }
    expect(inDlq).toBe(1);
    await Promise.all([ops('status'), ops('dlq', 'list'), ops('audit', 'tail', '--limit', '50')]);
    // Finding a person's notifications answers with the number masked (checked below).
    const found = await ops('notifications', 'find', '--to', NORMAL);
    expect(found.code, found.stderr).toBe(0);
    expect(found.stdout).toContain('+57******4567');
    await ops('status', '--by-client', '--hours', '1');
    expect((await ops('send-test', NORMAL)).code).toBe(0);
    expect((await ops('send-test', INVALID)).code).toBe(1);

    // Last, the numbers that open panic mode (they park everything else as deferred).
    for (const number of OPENS_CIRCUIT) {
      const id = await send(number);
      expect(await waitFor(id, (s) => s === 'deferred')).toBe('deferred');
      await call('POST', '/v1/admin/panic', { enabled: false, reason: 'next test number' });
    }
    await ops('panic', 'status');
  });

  it('captured what the flows wrote, so the check below can fail', () => {
    const logs = captured.join('');
    expect(logs).toContain('"message":"notification accepted"');
    expect(logs).toContain('"message":"send failed permanently"');
    expect(logs).toContain('"message":"status received"');
    expect(logs).toContain('"message":"consent event"');
    expect(logs).toContain('"message":"send failed; will retry"');
    expect(answers.join('')).toContain('+57******4567');
    expect(cliRuns.map((r) => r.stdout).join('')).toContain('+57******4567');
  });

  it('carries the request id from the API to the worker, and the wamid on to the webhook', async () => {
    const lines = captured
      .join('')
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    // One process runs every function here and they share one Logger, so the API's appended
    // request id and `function_name` race between concurrent invocations (never in Lambda, where
    // an environment serves one invocation at a time). The worker's lines name it explicitly, from
    // the SQS message attribute; the answer's requestId is checked when the notification is sent.
    const traced = lines.filter((l) => l.requestId === 'pii-trace-1');
    expect(traced.map((l) => l.message)).toContain('send failed; will retry');
    const ids = new Set(traced.map((l) => l.notificationId).filter(Boolean));
    expect(ids).toEqual(new Set([traceAnswer?.id]));
    // Meta's webhooks name the wamid; the notification (and with it the request id) is one lookup
    // away. A status that beats the worker's bookkeeping is logged `pending` and applied later.
    const { wamid } = (await call('GET', `/v1/notifications/${String(traceAnswer?.id)}`)).json;
    const webhook = lines.filter((l) => l.message === 'status received' && l.wamid === wamid);
    expect(webhook.map((l) => l.status)).toEqual(
      expect.arrayContaining(['sent', 'delivered', 'read']),
    );
    // "Which client?" is answerable from any worker or webhook line about a notification.
    const { clientId } = (await call('GET', `/v1/admin/notifications/${String(traceAnswer?.id)}`))
      .json as { clientId: string };
    expect(clientId).toMatch(/\S/);
    expect(traced.filter((l) => l.notificationId).map((l) => l.clientId)).toEqual(
      traced.filter((l) => l.notificationId).map(() => clientId),
    );
    const applied = webhook.filter((l) => l.outcome === 'applied');
    expect(applied.length).toBeGreaterThan(0);
    expect(applied.map((l) => l.clientId)).toEqual(applied.map(() => clientId));
  });

  it.each(USED.concat(INVALID))('finds no trace of %s anywhere', (number) => {
    const digits = number.replace(/\D/g, '');
    const national = digits.slice(2);
    const everything = [
      ...captured,
      ...answers,
      ...cliRuns.flatMap((r) => [r.stdout, r.stderr]),
    ].join('\n');
    expect(everything.includes(digits), `${digits} leaked`).toBe(false);
    expect(everything.includes(number), `${number} leaked`).toBe(false);
    // Longer numbers only: a short national part could match an unrelated id.
    if (national.length >= 9)
      expect(everything.includes(national), `${national} leaked`).toBe(false);
  });
});
