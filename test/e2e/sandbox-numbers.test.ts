/**
 * The whole local stack in this process (its own embedded PostgreSQL, emulator, sandbox, worker,
 * webhook and scheduler): each documented sandbox test number ends in its documented state, and an
 * ordinary notification reaches `read`, seen through the public API only.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FUNCTION_DATABASE_ROLES } from '#core/db/roles.ts';
import { type LocalStack, startLocalStack } from '../../bin/local/stack.ts';

let stack: LocalStack;
const dataDir = join(process.cwd(), '.local', `e2e-numbers-${process.pid}`);

beforeAll(async () => {
  // Fast retries, and a circuit threshold above what the always-failing number produces, so the
  // DLQ number does not open panic mode for the others.
  Object.assign(process.env, {
    BACKOFF_BASE_SECONDS: '1',
    BACKOFF_CAP_SECONDS: '2',
    CIRCUIT_FAILURE_THRESHOLD: '100',
    WHATSAPP_TIMEOUT_MS: '1500',
    POWERTOOLS_LOG_LEVEL: 'ERROR',
  });
  await rm(dataDir, { recursive: true, force: true });
  stack = await startLocalStack({
    port: 0,
    dataDir,
    workerConcurrency: 2,
    schedulerIntervalSeconds: 2,
  });
});

afterAll(async () => {
  await stack?.stop();
  await rm(dataDir, { recursive: true, force: true });
});

interface View {
  id: string;
  status: string;
  attempts: number;
  wamid: string | null;
  error: { class: string; code: number | null } | null;
}

async function send(to: string): Promise<string> {
  const response = await fetch(`${stack.baseUrl}/v1/notifications`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': stack.apiKey },
    body: JSON.stringify({ to, template: { name: 'hello_world', language: 'en_US' } }),
  });
  expect(response.status).toBe(202);
  return ((await response.json()) as View).id;
}

async function read(id: string): Promise<View> {
  const response = await fetch(`${stack.baseUrl}/v1/notifications/${id}`, {
    headers: { 'x-api-key': stack.apiKey },
  });
  return (await response.json()) as View;
}

async function waitFor(id: string, done: (v: View) => boolean, timeoutMs = 90_000): Promise<View> {
  const deadline = Date.now() + timeoutMs;
  let view = await read(id);
  while (!done(view) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 200));
    view = await read(id);
  }
  return view;
}

describe('the local stack with the WhatsApp sandbox', () => {
  it('takes the banner curl to read, with the wamid and one attempt', async () => {
    const id = await send('+573001234567');
    const view = await waitFor(id, (v) => v.status === 'read', 15_000);
    expect(view).toMatchObject({ status: 'read', attempts: 1, error: null });
    expect(view.wamid).toMatch(/^wamid\./);
  });

  const cases: [string, string, Partial<View>][] = [
    ['+573000000001', 'failed', { error: { class: 'invalid_recipient', code: 131026 } }],
    ['+573000000002', 'failed', { error: { class: 'outside_window', code: 131047 } }],
    ['+573000000003', 'failed', { error: { class: 'template', code: 132001 } }],
    ['+573000000004', 'read', { attempts: 2, error: { class: 'rate_limited', code: 130429 } }],
    ['+573000000005', 'read', { attempts: 2 }],
    ['+573000000006', 'read', { attempts: 2 }],
    ['+573000000007', 'failed', { error: { class: 'opted_out', code: 131050 } }],
    ['+573000000010', 'read', { attempts: 2, error: { class: 'pair_rate_limited', code: 131056 } }],
    ['+573000000012', 'failed', { error: { class: 'invalid_recipient', code: 131026 } }],
    ['+573000000013', 'failed', { error: { class: 'invalid_request', code: 100 } }],
    // A username user: its statuses name only the BSUID and are matched by wamid alone.
    ['+573000000014', 'read', { attempts: 1, error: null }],
  ];

  it('ends each documented test number in its documented state', async () => {
    const ids = await Promise.all(cases.map(([to]) => send(to)));
    const finals = await Promise.all(
      ids.map((id, i) => waitFor(id, (v) => v.status === cases[i]![1], 40_000)),
    );
    finals.forEach((view, i) => {
      const [to, status, expected] = cases[i]!;
      expect({ to, status: view.status }).toEqual({ to, status });
      expect(view).toMatchObject(expected);
    });
  });

  it('retries an always-failing number until the message sits in the DLQ', async () => {
    const id = await send('+573000000011');
    const { ReceiveMessageCommand, SQSClient } = await import('@aws-sdk/client-sqs');
    const sqs = new SQSClient({
      endpoint: stack.sqsEndpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    });
    const deadline = Date.now() + 90_000;
    let inDlq = false;
    while (!inDlq && Date.now() < deadline) {
      const received = await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: stack.queueUrls.highDlq,
          WaitTimeSeconds: 1,
          VisibilityTimeout: 0,
        }),
      );
      inDlq = (received.Messages ?? []).some((m) => m.Body === id);
    }
    sqs.destroy();
    expect(inDlq).toBe(true);
    const view = await read(id);
    expect(view).toMatchObject({
      status: 'queued',
      attempts: 5,
      error: { class: 'upstream', code: 131000 },
    });
  });

  it('opens panic mode on an auth failure and parks the notification as deferred', async () => {
    const id = await send('+573000000008');
    const view = await waitFor(id, (v) => v.status === 'deferred');
    expect(view).toMatchObject({ status: 'deferred', error: { class: 'auth', code: 190 } });
    // The worker records the row's move before it opens the circuit (its bookkeeping step), so a
    // reader can see `deferred` a moment before panic mode shows: wait for it, do not race it.
    // Panic mode is a 200 that reads degraded (not a 5xx): the API itself is fine.
    const deadline = Date.now() + 10_000;
    const readHealth = () =>
      fetch(`${stack.baseUrl}/v1/health`, { headers: { 'x-api-key': stack.apiKey } });
    let health = await readHealth();
    let body = (await health.json()) as {
      status: string;
      checks: { whatsapp: { status: string } };
    };
    while (body.status !== 'degraded' && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      health = await readHealth();
      body = (await health.json()) as typeof body;
    }
    expect(health.status).toBe(200);
    expect(body.status).toBe('degraded');
    expect(body.checks.whatsapp.status).toBe('down');
  });

  it('runs every handler as its own database role, as in AWS, not as the owner', async () => {
    // By now each handler has served this file's tests through its own pool.
    const owner = new pg.Client({ connectionString: stack.databaseUrl });
    await owner.connect();
    try {
      const { rows } = await owner.query<{ usename: string }>(
        'select distinct usename from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()',
      );
      const users = rows.map((r) => r.usename).sort();
      expect(users).toEqual(expect.arrayContaining(Object.values(FUNCTION_DATABASE_ROLES).sort()));
      // Besides the roles, at most the stack's own set-up pool (migrations, the development key).
      const others = users.filter((u) => !u.startsWith('notif_'));
      expect(others.filter((u) => u !== new URL(stack.databaseUrl).username)).toEqual([]);
    } finally {
      await owner.end();
    }
  });
});
