/** Runs `npm start`'s entry point as a real process and talks to it over HTTP, as a user would. */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testSqsClient } from '../support/api.ts';

let child: ChildProcess;
let dataDir: string;
let output = '';
let baseUrl: string;
let apiKey: string;
let sqsEndpoint: string;

function waitForBanner(): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no banner in time:\n${output}`)), 150_000);
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (/READY http/.test(output)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.once('exit', (code) =>
      reject(new Error(`local stack exited early (${code}):\n${output}`)),
    );
  });
}

beforeAll(async () => {
  // Under the project, not /tmp: PostgreSQL runs as its own user and needs to reach the folder.
  dataDir = join(process.cwd(), '.local', `e2e-${process.pid}`);
  await mkdir(dataDir, { recursive: true });
  child = spawn(process.execPath, ['bin/local.ts'], {
    env: {
      ...process.env,
      PORT: '0',
      LOCAL_DATA_DIR: dataDir,
      DATABASE_URL: '',
      LOCAL_WORKER: 'off',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  await waitForBanner();
  baseUrl = /READY (\S+)/.exec(output)![1]!;
  apiKey = /^X-API-Key: (\S+)$/m.exec(output)![1]!;
  sqsEndpoint = /SQS emulator:\s+(\S+)/.exec(output)![1]!;
});

afterAll(async () => {
  if (child.exitCode === null) child.kill('SIGKILL');
  await rm(dataDir, { recursive: true, force: true });
});

describe('npm start', () => {
  it('prints a banner with the key and a curl that answers 202', async () => {
    expect(output).toContain('X-API-Key: wn_');
    const curl = /curl -sS -X POST[\s\S]*?-d '.*'/.exec(output)?.[0];
    expect(curl).toBeDefined();
    const body = /-d '(.*)'/.exec(curl!)![1]!;

    const response = await fetch(`${baseUrl}/v1/notifications`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': apiKey },
      body,
    });
    expect(response.status).toBe(202);
    const created = (await response.json()) as { id: string; status: string };

    const read = await fetch(`${baseUrl}/v1/notifications/${created.id}`, {
      headers: { 'x-api-key': apiKey },
    });
    expect(((await read.json()) as { status: string }).status).toBe('queued');

    const sqs = testSqsClient(sqsEndpoint);
    const queueUrl = `${sqsEndpoint}/000000000000/whatsapp-notif-local-high`;
    const received = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 1,
      }),
    );
    expect(received.Messages?.map((m) => m.Body)).toContain(created.id);
  });

  it('stops cleanly on Ctrl-C and leaves no PostgreSQL behind', async () => {
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    child.kill('SIGINT');
    expect(await exited).toBe(0);
    const { execFileSync } = await import('node:child_process');
    const left = (() => {
      try {
        return execFileSync('pgrep', ['-f', dataDir]).toString().trim();
      } catch {
        return '';
      }
    })();
    expect(left).toBe('');
  });
});
