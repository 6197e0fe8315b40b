/**
 * Callbacks on the whole local stack, as a client and on-call meet them: `ops callbacks add`
 * registers a receiver, a notification goes through the API, worker and sandbox webhooks, and the
 * local dispatcher (the Lambda handler, as in AWS) posts signed sent, delivered and read events.
 * Then `deliveries`, `redeliver`, `list`, `rotate-secret` and `remove` through the CLI, and the
 * client-scoped routes with the client's own key.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyCallbackSignature } from '#core/callbacks/signature.ts';
import type { LocalStack } from '../../../bin/local/stack.ts';
import { type CallbackReceiver, startCallbackReceiver } from '../../support/callback-receiver.ts';
import { pollUntil } from '../../support/delivery.ts';
import { type OwnStack, runOps, startOwnStack } from '../../support/ops-stack.ts';
import { uniqueRecipient } from '../../support/phones.ts';

let own: OwnStack;
let stack: LocalStack;
let receiver: CallbackReceiver;
let env: Record<string, string>;

beforeAll(async () => {
  own = await startOwnStack({ worker: true, workerConcurrency: 1 });
  stack = own.stack;
  receiver = await startCallbackReceiver();
  // Through the environment: `callbacks add` has a --url of its own (the callback URL).
  env = { WN_API_URL: stack.baseUrl, WN_API_KEY: stack.apiKey };
}, 120_000);

afterAll(async () => {
  await receiver?.stop();
  await own?.stop();
});

const ops = async (...args: string[]) => {
  const result = await runOps([...args, '--json'], env);
  expect(result.stderr, result.stderr).toBe('');
  expect(result.code).toBe(0);
  return JSON.parse(result.stdout);
};

async function api(method: string, path: string, key: string, body?: unknown) {
  const response = await fetch(`${stack.baseUrl}${path}`, {
    method,
    headers: { 'x-api-key': key, 'content-type': 'application/json' },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

describe('callbacks on the local stack', () => {
  it('delivers signed events a client can verify, and on-call can inspect, redeliver and remove them', async () => {
    // prepare: a client of its own, registered through ops
    const client = await ops('keys', 'create', '--name', 'callback-client');
    const endpoint = await ops(
      'callbacks',
      'add',
      '--client',
      client.clientId,
      '--url',
      receiver.url,
      '--events',
      'notification.sent,notification.delivered,notification.read',
    );
    expect(endpoint).toMatchObject({
      id: expect.any(String),
      secret: expect.stringMatching(/^whsec_/),
    });

    // act: a notification with the client's key; the sandbox reports sent, delivered, read
    const sent = await api('POST', '/v1/notifications', client.key, {
      to: uniqueRecipient(),
      template: { name: 'hello_world', language: 'en_US' },
    });
    expect(sent.status).toBe(202);
    const id = sent.body.id as string;
    const ours = () =>
      receiver.accepted().filter((p) => (p.body.data.notification as { id: string }).id === id);
    await pollUntil(
      async () => ours().map((p) => p.body.type),
      (types) => types.includes('notification.read'),
      60_000,
    );

    // assess: each one verifies with the secret ops printed, in sequence order
    const posts = ours().sort((a, b) => a.body.sequence - b.body.sequence);
    expect(posts.map((p) => p.body.type)).toEqual([
      'notification.sent',
      'notification.delivered',
      'notification.read',
    ]);
    const nowSeconds = Date.now() / 1000;
    for (const p of posts) {
      expect(
        verifyCallbackSignature({
          header: p.signature,
          body: p.rawBody,
          secret: endpoint.secret,
          nowSeconds,
        }),
      ).toBe(true);
    }

    // on-call: the deliveries, a redelivery, the list, then removal
    const { deliveries } = await ops('callbacks', 'deliveries', id);
    expect(deliveries.map((d: { type: string; status: string }) => [d.type, d.status])).toEqual([
      ['notification.sent', 'delivered'],
      ['notification.delivered', 'delivered'],
      ['notification.read', 'delivered'],
    ]);
    expect(deliveries[0].attempts[0]).toMatchObject({ statusCode: 200, error: null });
    await ops('callbacks', 'redeliver', deliveries[0].id);
    await pollUntil(
      async () => receiver.countsById().get(deliveries[0].eventId) ?? 0,
      (n) => n >= 2,
      30_000,
    );
    const { callbacks } = await ops('callbacks', 'list', '--client', client.clientId);
    expect(callbacks).toEqual([expect.objectContaining({ id: endpoint.id, disabledAt: null })]);
    expect(JSON.stringify(callbacks)).not.toContain(endpoint.secret);
    const rotated = await ops('callbacks', 'rotate-secret', endpoint.id, '--grace', '1h');
    expect(rotated.secret).not.toBe(endpoint.secret);
    await ops('callbacks', 'remove', endpoint.id);
    expect((await ops('callbacks', 'list', '--client', client.clientId)).callbacks).toEqual([]);
  }, 120_000);

  it('lets a client register and list only its own endpoints with its key, refusing a bad URL', async () => {
    const client = await ops('keys', 'create', '--name', 'self-service');
    const other = await ops('keys', 'create', '--name', 'someone-else');
    await ops('callbacks', 'add', '--client', other.clientId, '--url', receiver.url);

    const created = await api('POST', '/v1/callbacks', client.key, { url: receiver.url });
    const bad = await api('POST', '/v1/callbacks', client.key, { url: 'ftp://example.com/x' });
    const unknownEvent = await api('POST', '/v1/callbacks', client.key, {
      url: receiver.url,
      events: ['notification.exploded'],
    });
    const listed = await api('GET', '/v1/callbacks', client.key);

    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ clientId: client.clientId, secret: expect.any(String) });
    expect(bad.status).toBe(400);
    expect(unknownEvent.status).toBe(400);
    expect(listed.body.callbacks).toEqual([
      expect.objectContaining({ id: created.body.id, clientId: client.clientId }),
    ]);
  }, 120_000);
});
