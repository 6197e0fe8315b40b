/**
 * The whole local stack (bin/local/stack.ts) in the test's process, on a database of its own in the
 * suite's PostgreSQL: admin tests flip global switches (rollout, panic mode) and read exact queue
 * depths, which must not leak into other files' tests. Also runs the ops CLI as a child process.
 */
import { execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import pg from 'pg';
import type { LocalStack, LocalStackOptions } from '../../bin/local/stack.ts';

function adminUrl(): string {
  const url = process.env.TEST_PG_ADMIN_URL;
  if (!url) throw new Error('TEST_PG_ADMIN_URL is not set: run the tests through vitest');
  return url;
}

async function admin(statement: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl() });
  await client.connect();
  try {
    await client.query(statement);
  } finally {
    await client.end();
  }
}

export interface OwnStack {
  stack: LocalStack;
  stop(): Promise<void>;
}

/**
 * Starts the stack on a fresh database (migrated by the stack itself). The stack writes its
 * configuration into process.env, as Lambda would give it; each test file runs in its own process.
 */
export async function startOwnStack(options: Partial<LocalStackOptions> = {}): Promise<OwnStack> {
  const name = `ops_${randomUUID().replaceAll('-', '')}`;
  await admin(`CREATE DATABASE ${name}`);
  const url = new URL(adminUrl());
  url.pathname = `/${name}`;
  const { startLocalStack } = await import('../../bin/local/stack.ts');
  const stack = await startLocalStack({
    port: 0,
    databaseUrl: url.toString(),
    worker: false,
    // One run at start (so there is a last run to report), then none during the test.
    schedulerIntervalSeconds: 3600,
    ...options,
  });
  return {
    stack,
    async stop() {
      await stack.stop();
      await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    },
  };
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

const OPS_ENTRY = join(import.meta.dirname, '..', '..', 'bin', 'ops.ts');

/** `node bin/ops.ts ...args` as a user runs it; the target comes from the arguments or `env`. */
export function runOps(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [OPS_ENTRY, ...args],
      {
        // Only what the CLI needs: no WN_* from the developer's shell, no AWS profile.
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
        // A ceiling for a busy machine, where starting node and the SDK alone can take seconds.
        timeout: 110_000,
      },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/**
 * `node bin/ops.ts ...args` whose stdout is closed by its reader early, as `| head -n <lines>` does:
 * after `lines` lines have arrived (0: before anything arrives), the pipe is destroyed. Answers
 * the lines read, everything on stderr and the exit code.
 */
export function runOpsClosingStdout(
  args: string[],
  lines: number,
  env: Record<string, string> = {},
): Promise<{ code: number | null; signal: string | null; head: string[]; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [OPS_ENTRY, ...args], {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const head: string[] = [];
    let pending = '';
    let stderr = '';
    if (lines === 0) child.stdout.destroy();
    child.stdout.on('data', (chunk: Buffer) => {
      pending += chunk.toString();
      const parts = pending.split('\n');
      pending = parts.pop() ?? '';
      for (const line of parts) if (head.length < lines) head.push(line);
      if (head.length >= lines) child.stdout.destroy();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, head, stderr }));
  });
}
