/**
 * The Lambda bundles carry everything they import: a Node.js runtime ships an AWS SDK release that
 * AWS does not name, so a bundle leaning on it can fail at init in one Region and not another.
 * Each bundle is built as the stack builds it, its imports are read from esbuild's metafile, and
 * what CDK synthesizes is imported in a fresh process from a folder with no node_modules above it.
 */
import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { isBuiltin } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../lib/app.ts';
import {
  esbuildOptions,
  type FunctionName,
  LAMBDA_ENTRIES,
  MAX_BUNDLE_BYTES,
  OPTIONAL_RUNTIME_REQUIRES,
} from '../../lib/bundling.ts';
import { PROJECT_ROOT } from '../../lib/notif-function.ts';

const FUNCTIONS = Object.keys(LAMBDA_ENTRIES) as FunctionName[];

let workDir: string;
beforeAll(async () => {
  workDir = await mkdtemp(join(tmpdir(), 'whatsapp-notif-bundles-'));
});
afterAll(async () => {
  await rm(workDir, { recursive: true, force: true });
});

/** Imports a bundle in a fresh Node process, with only the environment Lambda sets before init. */
function importInFreshProcess(file: string): Promise<{ ok: boolean; stderr: string }> {
  const script = `await import(${JSON.stringify(pathToFileURL(file).href)});`;
  return new Promise((done) => {
    execFile(
      process.execPath,
      ['--enable-source-maps', '--input-type=module', '-e', script],
      {
        cwd: join(file, '..'),
        env: { PATH: process.env.PATH ?? '', AWS_REGION: 'eu-west-1', TZ: 'UTC' },
        timeout: 60_000,
      },
      (error, _stdout, stderr) => done({ ok: !error, stderr }),
    );
  });
}

describe.each(FUNCTIONS)('the %s bundle', (name) => {
  it('imports nothing at run time but Node built-ins and guarded optional requires', async () => {
    const result = await build({
      ...esbuildOptions(join(PROJECT_ROOT, LAMBDA_ENTRIES[name]), join(workDir, name, 'index.mjs')),
      metafile: true,
    });
    const outputs = Object.values(result.metafile.outputs).filter((o) => o.entryPoint);
    expect(outputs).toHaveLength(1);
    const external = [...new Set(outputs[0]!.imports.filter((i) => i.external).map((i) => i.path))];
    const missing = external.filter((path) => !isBuiltin(path) && !OPTIONAL_RUNTIME_REQUIRES[path]);

    expect(missing).toEqual([]);
    // The SDK is inside: a runtime with an older SDK cannot break the import.
    const inputs = Object.keys(outputs[0]!.inputs);
    expect(inputs.some((i) => i.includes('node_modules/@smithy/core/'))).toBe(true);
    expect(inputs.some((i) => i.includes('node_modules/@aws-sdk/credential-provider-node/'))).toBe(
      false,
    );
  });
});

describe('what CDK synthesizes', () => {
  it('bundles every function under 1 MB and each imports alone, with no node_modules near', async () => {
    const outdir = join(workDir, 'cdk.out');
    const { app, stack } = buildApp({ context: { stage: 'dev' }, nag: false, outdir });
    const assembly = app.synth();
    const template = assembly.getStackByName(stack.stackName).template as {
      Resources: Record<string, { Type: string; Properties: Record<string, unknown> }>;
    };
    const ours = Object.values(template.Resources).filter(
      (r) =>
        r.Type === 'AWS::Lambda::Function' &&
        String(r.Properties.FunctionName ?? '').startsWith('whatsapp-notif-dev-'),
    );
    expect(ours.map((r) => r.Properties.FunctionName).sort()).toEqual(
      FUNCTIONS.map((f) => `whatsapp-notif-dev-${f}`).sort(),
    );

    const isolated = join(workDir, 'isolated');
    for (const fn of ours) {
      const key = String((fn.Properties.Code as { S3Key: string }).S3Key).replace(/\.zip$/, '');
      const assetDir = join(outdir, `asset.${key}`);
      expect(await readdir(assetDir)).toContain('index.mjs');
      const size = (await stat(join(assetDir, 'index.mjs'))).size;
      expect(size, String(fn.Properties.FunctionName)).toBeLessThan(MAX_BUNDLE_BYTES);

      const target = join(isolated, key);
      await mkdir(target, { recursive: true });
      await copyFile(join(assetDir, 'index.mjs'), join(target, 'index.mjs'));
      await copyFile(join(assetDir, 'index.mjs.map'), join(target, 'index.mjs.map'));
      const imported = await importInFreshProcess(join(target, 'index.mjs'));
      expect(imported.stderr, String(fn.Properties.FunctionName)).toBe('');
      expect(imported.ok).toBe(true);
    }
  }, 180_000);
});
