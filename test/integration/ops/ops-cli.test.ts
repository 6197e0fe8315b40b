/**
 * The ops CLI as on-call runs it: `node bin/ops.ts ...` as a child process against the real local
 * stack (worker on, sandbox as Meta), reading its output and exit codes.
 */
import { randomUUID } from 'node:crypto';
import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDatabase } from '#core/db/connect.ts';
import { addOptOut } from '#core/notifications/opt-outs.ts';
import type { LocalStack } from '../../../bin/local/stack.ts';
import { COMMANDS, runCli } from '../../../bin/ops/cli.ts';
import { testSqsClient } from '../../support/api.ts';
import { type OwnStack, runOps, startOwnStack } from '../../support/ops-stack.ts';

let own: OwnStack;
let stack: LocalStack;
let sqs: SQSClient;
let target: string[];

beforeAll(async () => {
  own = await startOwnStack({ worker: true, workerConcurrency: 1 });
  stack = own.stack;
  sqs = testSqsClient(stack.sqsEndpoint);
  target = ['--url', stack.baseUrl, '--api-key', stack.apiKey];
});

afterAll(async () => {
  sqs?.destroy();
  await own?.stop();
});

const ops = (...args: string[]) => runOps([...args, ...target]);
const json = async (...args: string[]) => {
  const result = await ops(...args, '--json');
  expect(result.stderr, result.stderr).toBe('');
  expect(result.code).toBe(0);
  return JSON.parse(result.stdout);
};

describe('help and usage', () => {
  it('prints help for the CLI and for a command, exit code 0', async () => {
    const top = await runOps(['--help']);
    expect(top.code).toBe(0);
    for (const command of COMMANDS) expect(top.stdout).toContain(command.name);
    const one = await runOps(['dlq', 'redrive', '--help']);
    expect(one.code).toBe(0);
    expect(one.stdout).toMatch(/Usage: npm run ops -- dlq redrive[\s\S]*--rate <n>/);
  });

  it.each(COMMANDS.map((c) => c.name))('has --help for %s', async (name) => {
    // In process (the dispatcher the child processes run), to keep this file fast.
    let stdout = '';
    const code = await runCli([...name.split(' '), '--help'], {
      stdout: (text) => {
        stdout += text;
      },
      stderr: () => {},
      env: {},
    });
    expect(code).toBe(0);
    expect(stdout).toContain(`Usage: npm run ops -- ${name}`);
    expect(stdout).toContain('--json');
  });

  it('exits 2 for an unknown command, an unknown flag, a missing target or a missing argument', async () => {
    const results = await Promise.all([
      runOps(['frobnicate']),
      ops('panic', 'status', '--loud'),
      runOps(['panic', 'status']),
      ops('panic', 'enable'),
      ops('keys', 'revoke'),
      ops('rollout', 'set'),
      runOps([]),
      runOps(['keys']),
    ]);
    for (const result of results) expect(result.code, result.stderr).toBe(2);
    expect(results[2]!.stderr).toContain('WN_API_URL');
    expect(results[3]!.stderr).toContain('--reason is required');
  });

  it('exits 1 when the service refuses the key, naming the status', async () => {
    const result = await runOps([
      'status',
      '--url',
      stack.baseUrl,
      '--api-key',
      'wn_000000000000_nope',
    ]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('HTTP 401 unauthorized');
  });

  it('takes the target from WN_API_URL and WN_API_KEY', async () => {
    const result = await runOps(['panic', 'status'], {
      WN_API_URL: stack.baseUrl,
      WN_API_KEY: stack.apiKey,
    });
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('Panic mode is OFF');
  });
});

describe('status, queue status, templates, token status', () => {
  it('answers the first questions of an incident', async () => {
    const [status, queues, templates, token] = await Promise.all([
      ops('status'),
      ops('queue', 'status'),
      ops('templates'),
      ops('token', 'status'),
    ]);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(
      /Last 24 hours[\s\S]*Queues[\s\S]*Panic mode is OFF[\s\S]*Rate limiter[\s\S]*Scheduler[\s\S]*Recent WhatsApp events[\s\S]*Webhook items refused/,
    );
    expect(queues.stdout).toMatch(/^QUEUE\s+VISIBLE\s+IN FLIGHT\s+DELAYED\s+OLDEST/m);
    expect(queues.stdout).toContain('high-dlq');
    expect(templates.stdout).toMatch(/hello_world\s+en_US\s+APPROVED/);
    expect(templates.stdout).toMatch(/not APPROVED/);
    expect(token.code).toBe(0);
    expect(token.stdout).toMatch(/valid:\s+yes/);
  });

  it('gives scripts JSON', async () => {
    const status = await json('status');
    expect(status.queues.map((q: { name: string }) => q.name)).toEqual([
      'high',
      'high-dlq',
      'bulk',
      'bulk-dlq',
    ]);
    const token = await json('token', 'status');
    expect(token).toMatchObject({ valid: true, missingScopes: [] });
  });
});

describe('panic and rollout', () => {
  it('enables and disables panic mode with a reason, audited under the key prefix', async () => {
    const on = await ops('panic', 'enable', '--reason', 'INC-7 Meta outage');
    expect(on.code).toBe(0);
    expect(on.stdout).toContain('Panic mode is now ON for sender 100000000000001');
    const status = await json('panic', 'status');
    expect(status).toMatchObject({
      active: true,
      senders: [{ reason: 'INC-7 Meta outage', openedBy: `key:${stack.apiKeyPrefix}` }],
    });
    const off = await ops('panic', 'disable', '--reason', 'INC-7 recovered');
    expect(off.stdout).toContain('Panic mode is now OFF');
    const audit = await json('audit', 'tail', '--action', 'panic.', '--limit', '2');
    expect(
      audit.entries.map((e: { action: string; actor: string }) => [e.action, e.actor]),
    ).toEqual([
      ['panic.enable', `key:${stack.apiKeyPrefix}`],
      ['panic.disable', `key:${stack.apiKeyPrefix}`],
    ]);
  });

  it('gets and sets rollout switches, showing what changed', async () => {
    const set = await ops('rollout', 'set', '--daily', '500', '--pilot', '+57300,+52');
    expect(set.code).toBe(0);
    expect(set.stdout).toMatch(/dailyCap\s+none\s+500/);
    expect(set.stdout).toMatch(/pilotPrefixes\s+none\s+\+57300,\+52/);
    const get = await ops('rollout', 'get');
    expect(get.stdout).toMatch(/daily cap:\s+500/);
    const reset = await json('rollout', 'set', '--daily', 'none', '--pilot', 'none');
    expect(reset.rollout).toMatchObject({ dailyCap: null, pilotPrefixes: [] });
    const bad = await ops('rollout', 'set', '--delivery', 'maybe');
    expect(bad.code).toBe(2);
  });
});

describe('keys', () => {
  it('creates (key shown once), lists, rotates and revokes a key', async () => {
    const created = await json(
      'keys',
      'create',
      '--name',
      'cli-test',
      '--scopes',
      'notifications:read',
    );
    expect(created.key).toMatch(/^wn_[0-9a-f]{12}_/);
    const human = await ops('keys', 'create', '--name', 'cli-human');
    expect(human.stdout).toMatch(/X-API-Key: wn_[0-9a-f]{12}_\S+/);
    expect(human.stdout).toContain('shown only this once');

    const list = await ops('keys', 'list');
    expect(list.stdout).toMatch(
      new RegExp(`${created.prefix}\\s+cli-test\\s+notifications:read\\s+active`),
    );
    expect(list.stdout).not.toContain(created.key);

    const rotated = await json('keys', 'rotate', created.prefix, '--grace', '0');
    expect(rotated).toMatchObject({ previousPrefix: created.prefix });
    const oldKey = await runOps(['templates', '--url', stack.baseUrl, '--api-key', created.key]);
    expect(oldKey.code).toBe(1);
    expect(oldKey.stderr).toContain('401');

    const revoked = await ops('keys', 'revoke', rotated.prefix);
    expect(revoked.code).toBe(0);
    expect(revoked.stdout).toContain(`Revoked ${rotated.prefix}`);
    const again = await ops('keys', 'revoke', rotated.prefix);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('HTTP 404');
  });

  it('sets and clears a client default fallback, audited; status counts fallbacks', async () => {
    const created = await json('keys', 'create', '--name', 'cli-fallback');

    const set = await ops('keys', 'fallback', created.clientId, '--after', '15m');
    const cleared = await json('keys', 'fallback', created.clientId, '--off');
    const neither = await ops('keys', 'fallback', created.clientId);
    const status = await ops('status');

    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout).toContain(
      'cli-fallback: notifications that name no fallback get one after 900s.',
    );
    expect(cleared).toEqual({
      clientId: created.clientId,
      name: 'cli-fallback',
      fallbackAfterSeconds: null,
    });
    expect(neither.code).toBe(2);
    expect(neither.stderr).toContain('give either --after or --off');
    expect(status.stdout).toMatch(/^cancelled:\s+\d+$/m);
    expect(status.stdout).toMatch(/^fallbacks required:\s+\d+/m);
    const audit = await json('audit', 'tail', '--action', 'client.fallback', '--limit', '2');
    expect(audit.entries.map((e: { detail: unknown }) => e.detail)).toEqual([
      { clientId: created.clientId, fallbackAfterSeconds: 900 },
      { clientId: created.clientId, fallbackAfterSeconds: null },
    ]);
  });
});

describe('keys with limits and an expiry (issue 16)', () => {
  it('creates one, lists its limits and expiry, warns of it in status, and refuses a second rotation', async () => {
    const created = await json(
      'keys',
      'create',
      '--name',
      'cli-limited',
      '--rate',
      '5/s',
      '--daily',
      '100',
      '--max-priority',
      'bulk',
      '--expires',
      '3d',
    );
    expect(created.limits).toEqual({ ratePerSecond: 5, dailyQuota: 100, maxPriority: 'bulk' });
    expect(created.expiresAt).not.toBeNull();

    const list = await ops('keys', 'list');
    expect(list.stdout).toMatch(/PREFIX\s+NAME\s+SCOPES\s+STATE\s+CREATED\s+LIMITS/);
    expect(list.stdout).toMatch(
      new RegExp(`${created.prefix}\\s+cli-limited\\s.*5/s, 100/day, bulk only`),
    );
    const status = await ops('status');
    expect(status.stdout).toMatch(/WARNING: \d+ API key\(s\) expire within 14 days/);
    expect(status.stdout).toContain(created.prefix);

    const badRate = await ops('keys', 'create', '--name', 'x', '--rate', 'fast');
    expect(badRate.code).toBe(2);
    const badExpiry = await ops('keys', 'create', '--name', 'x', '--expires', 'someday');
    expect(badExpiry.code).toBe(1);
    expect(badExpiry.stderr).toContain('expires');

    const rotated = await json('keys', 'rotate', created.prefix, '--grace', '1h');
    expect(rotated.expiresAt).not.toBeNull();
    const again = await ops('keys', 'rotate', created.prefix);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('HTTP 409');
  });

  it('changes a client’s limits later, printing what changed, and refuses bad flags before calling', async () => {
    const created = await json('keys', 'create', '--name', 'cli-relimit', '--daily', '100');

    const changed = await ops(
      'keys',
      'limits',
      created.clientId,
      '--rate',
      '2/s',
      '--daily',
      'none',
      '--max-priority',
      'bulk',
    );
    const asJson = await json('keys', 'limits', created.clientId, '--rate', 'none');
    const nothing = await ops('keys', 'limits', created.clientId);
    const badDaily = await ops('keys', 'limits', created.clientId, '--daily', 'lots');
    const unknown = await ops('keys', 'limits', randomUUID(), '--daily', '5');

    expect(changed.code, changed.stderr).toBe(0);
    expect(changed.stdout).toContain('cli-relimit: limits changed.');
    expect(changed.stdout).toMatch(/^rate:\s+none → 2\/s$/m);
    expect(changed.stdout).toMatch(/^daily quota:\s+100\/day → none$/m);
    expect(changed.stdout).toMatch(/^max priority:\s+none → bulk$/m);
    expect(asJson).toEqual({
      clientId: created.clientId,
      name: 'cli-relimit',
      limits: { ratePerSecond: null, dailyQuota: null, maxPriority: 'bulk' },
      previousLimits: { ratePerSecond: 2, dailyQuota: null, maxPriority: 'bulk' },
    });
    expect(nothing.code).toBe(2);
    expect(nothing.stderr).toContain('give at least one of --rate, --daily, --max-priority');
    expect(badDaily.code).toBe(2);
    expect(badDaily.stderr).toContain('--daily');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('HTTP 404');
    const list = await ops('keys', 'list');
    expect(list.stdout).toMatch(new RegExp(`${created.prefix}\\s+cli-relimit\\s.*bulk only`));
  });
});

describe('send-test and the DLQ', () => {
  it('shows a recipient’s opt-outs with scope and source, the number masked', async () => {
    const db = createDatabase({ DATABASE_URL: stack.databaseUrl, DB_POOL_MAX: 1 } as never);
    try {
      await addOptOut(db, '+573001112233', 'keyword', new Date('2026-11-01T10:00:00Z'));
      await addOptOut(db, '+573001112233', 'user_preferences', new Date('2026-11-02T10:00:00Z'));
    } finally {
      await db.destroy();
    }

    const human = await ops('opt-outs', 'show', '+573001112233');
    const none = await json('opt-outs', 'show', '+573009998877');
    const bad = await ops('opt-outs', 'show', '573001112233');

    expect(human.code).toBe(0);
    expect(human.stdout).toContain('+57******2233');
    expect(human.stdout).toMatch(/all\s+keyword/);
    expect(human.stdout).toMatch(/marketing\s+user_preferences/);
    expect(human.stdout).not.toContain('3001112233');
    expect(none).toEqual({ recipient: '+57******8877', optOuts: [] });
    expect(bad.code).toBe(2);
  });

  it('erases a recipient only with --yes, keeps their opt-out as a hash, never prints the number', async () => {
    const number = '+573004445566';
    const db = createDatabase({ DATABASE_URL: stack.databaseUrl, DB_POOL_MAX: 1 } as never);
    try {
      await addOptOut(db, number, 'keyword', new Date('2026-11-01T10:00:00Z'));
    } finally {
      await db.destroy();
    }

    const unconfirmed = await ops('recipients', 'erase', number);
    const bad = await ops('recipients', 'erase', '573004445566', '--yes');
    const erased = await json('recipients', 'erase', number, '--yes');
    const human = await ops('recipients', 'erase', number, '--yes');
    const after = await json('opt-outs', 'show', number);

    expect(unconfirmed.code).toBe(2);
    expect(unconfirmed.stderr).toContain('--yes');
    expect(bad.code).toBe(2);
    expect(erased).toMatchObject({ recipient: '+57******5566', erased: { optOuts: 1 } });
    expect(erased.total).toBeGreaterThanOrEqual(1);
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toMatch(/0 row\(s\) erased/);
    expect(after.optOuts).toMatchObject([{ key: 'erased', scope: 'all', source: 'keyword' }]);
    for (const out of [unconfirmed, bad, human]) {
      expect(out.stdout + out.stderr).not.toContain('3004445566');
    }
  });

  it('follows a test message to delivered and prints only the masked number', async () => {
    const result = await ops('send-test', '+573001234567');
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/outcome:\s+delivered/);
    expect(result.stdout).toContain('+57******4567');
    expect(result.stdout + result.stderr).not.toContain('3001234567');
  });

  it('exits 1 when the test message fails, with the error class', async () => {
    const result = await ops('send-test', '+573000000001');
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/error:\s+invalid_recipient 131026/);
  });

  it('lists DLQ messages with their notification, then redrives them at a rate with progress', async () => {
    // A delivered notification's id parked in the DLQ, as after a burst of 5xx: safe to redrive.
    const sent = await json('send-test', '+573001234568');
    const id = sent.notification.id as string;
    await sqs.send(
      new SendMessageCommand({
        QueueUrl: stack.queueUrls.highDlq,
        MessageBody: id,
        MessageAttributes: { requestId: { DataType: 'String', StringValue: 'dlq-cli-test' } },
      }),
    );

    const list = await ops('dlq', 'list');
    expect(list.code).toBe(0);
    expect(list.stdout).toContain('high-dlq: 1 visible');
    expect(list.stdout).toMatch(new RegExp(`${id}\\s+\\S+\\s+(delivered|read)`));
    expect(list.stdout).toContain('dlq-cli-test');

    const dry = await json('dlq', 'redrive', '--dry-run');
    expect(dry.queues).toContainEqual({
      queue: 'high-dlq',
      target: 'high',
      moved: 0,
      failed: 0,
      remaining: 1,
    });

    const redrive = await ops('dlq', 'redrive', '--queue', 'high', '--rate', '5');
    expect(redrive.code, redrive.stderr).toBe(0);
    expect(redrive.stderr).toMatch(/high-dlq → high \[#+\] 1\/1/);
    expect(redrive.stdout).toMatch(/high-dlq\s+high\s+1\s+0\s+0/);
    const after = await json('queue', 'status');
    expect(after.queues.find((q: { name: string }) => q.name === 'high-dlq')).toMatchObject({
      visible: 0,
    });
  });
});
