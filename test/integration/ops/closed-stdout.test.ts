/**
 * The ops CLI when its reader goes away (`npm run ops -- status | head -1`, a closed terminal): no
 * EPIPE stack, and a key shown only once is the first thing printed, or the command says it is lost.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalStack } from '../../../bin/local/stack.ts';
import {
  type OwnStack,
  runOps,
  runOpsClosingStdout,
  startOwnStack,
} from '../../support/ops-stack.ts';

let own: OwnStack;
let stack: LocalStack;
let target: string[];

beforeAll(async () => {
  own = await startOwnStack();
  stack = own.stack;
  target = ['--url', stack.baseUrl, '--api-key', stack.apiKey];
});

afterAll(async () => {
  await own?.stop();
});

describe('a closed stdout', () => {
  it('ends `status` quietly when stdout closes before anything is written', async () => {
    const run = await runOpsClosingStdout(['status', ...target], 0);
    expect(run.stderr).not.toMatch(/EPIPE|Error|at /);
    expect(run.code).toBe(0);
  });

  it('ends `status | head -1` quietly after the first line', async () => {
    const run = await runOpsClosingStdout(['status', ...target], 1);
    expect(run.head[0]).toMatch(/^Last \d+ hours/);
    expect(run.stderr).not.toMatch(/EPIPE|Error|at /);
    expect(run.code).toBe(0);
  });

  it('prints a rotated key before anything else, so `| head -1` keeps it', async () => {
    const created = JSON.parse(
      (await runOps(['keys', 'create', '--name', 'epipe-client', '--json', ...target])).stdout,
    ) as { prefix: string };
    const run = await runOpsClosingStdout(['keys', 'rotate', created.prefix, ...target], 1);
    expect(run.head[0]).toMatch(/^X-API-Key: wn_[0-9a-f]{12}_/);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
  });

  it('prints a callback signing secret before anything else, so `| head -1` keeps it', async () => {
    const created = JSON.parse(
      (await runOps(['keys', 'create', '--name', 'epipe-callbacks', '--json', ...target])).stdout,
    ) as { clientId: string };
    // `callbacks add` has a --url of its own: the API comes from the environment.
    const api = { WN_API_URL: stack.baseUrl, WN_API_KEY: stack.apiKey };
    const add = [
      'callbacks',
      'add',
      '--client',
      created.clientId,
      '--url',
      'http://127.0.0.1:9/hook',
    ];
    const run = await runOpsClosingStdout(add, 1, api);
    expect(run.head[0]).toMatch(/^Signing secret: whsec_/);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const lost = await runOpsClosingStdout(add, 0, api);
    expect(lost.code).toBe(1);
    expect(lost.stderr).toMatch(/could not be printed \(stdout was closed\).*rotate-secret/);
    expect(lost.stderr).not.toMatch(/whsec_/);
  });

  it('fails `keys create` and names the lost key by prefix when stdout is already closed', async () => {
    const run = await runOpsClosingStdout(['keys', 'create', '--name', 'lost-key', ...target], 0);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(
      /the new key [0-9a-f]{12} could not be printed \(stdout was closed\).*ops keys revoke [0-9a-f]{12}/,
    );
    expect(run.stderr).not.toMatch(/wn_[0-9a-f]{12}_/);
  });
});
