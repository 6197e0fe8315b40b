/**
 * Lambda bundles: each handler bundled exactly as the stack ships it (lib/bundling.ts), its size,
 * and its cold-start import time in fresh Node processes started as Lambda starts them
 * (NODE_OPTIONS=--enable-source-maps, which NotifFunction sets).
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { esbuildOptions, type FunctionName, LAMBDA_ENTRIES } from '../../lib/bundling.ts';
import { median } from './stats.ts';

export interface BundleFigures {
  name: FunctionName | 'worker-process';
  entry: string;
  bytes: number;
  mapBytes: number;
  /** Time to `await import()` the bundle in a fresh process, ms, one value per run. */
  importMs: number[];
  importMedianMs: number;
  /** Whole process: spawn to exit after the import, ms, median. */
  processMedianMs: number;
}

/** Bundles one entry with the shared options; returns the output file. */
export async function bundleEntry(entry: string, outfile: string): Promise<string> {
  await build(esbuildOptions(resolve(entry), outfile));
  return outfile;
}

function coldStart(file: string): Promise<{ importMs: number; processMs: number }> {
  const script = `const t = performance.now(); await import(${JSON.stringify(pathToFileURL(file).href)}); process.stdout.write(String(performance.now() - t));`;
  const started = performance.now();
  return new Promise((done, fail) => {
    execFile(
      process.execPath,
      ['--enable-source-maps', '--input-type=module', '-e', script],
      // Only what Lambda's runtime gives a function before its own configuration.
      { env: { PATH: process.env.PATH ?? '', AWS_REGION: 'us-east-1', TZ: 'UTC' } },
      (error, stdout, stderr) => {
        if (error) fail(new Error(`importing ${file} failed: ${stderr || error.message}`));
        else done({ importMs: Number(stdout), processMs: performance.now() - started });
      },
    );
  });
}

export async function measureBundles(outDir: string, runs: number): Promise<BundleFigures[]> {
  const figures: BundleFigures[] = [];
  // Outside the project, as in Lambda: no node_modules above the bundle to hide a missing package.
  const isolated = await mkdtemp(join(tmpdir(), 'whatsapp-notif-cold-'));
  try {
    for (const [name, entry] of Object.entries(LAMBDA_ENTRIES) as [FunctionName, string][]) {
      if (!existsSync(entry)) continue;
      figures.push(await measureBundle(name, entry, outDir, isolated, runs));
    }
  } finally {
    await rm(isolated, { recursive: true, force: true });
  }
  return figures;
}

async function measureBundle(
  name: FunctionName,
  entry: string,
  outDir: string,
  isolated: string,
  runs: number,
): Promise<BundleFigures> {
  const built = await bundleEntry(entry, join(outDir, name, 'index.mjs'));
  const outfile = join(isolated, name, 'index.mjs');
  await mkdir(join(isolated, name), { recursive: true });
  await copyFile(built, outfile);
  if (existsSync(`${built}.map`)) await copyFile(`${built}.map`, `${outfile}.map`);
  const bytes = (await stat(outfile)).size;
  const mapBytes = existsSync(`${outfile}.map`) ? (await stat(`${outfile}.map`)).size : 0;
  const samples: { importMs: number; processMs: number }[] = [];
  for (let i = 0; i < runs; i++) samples.push(await coldStart(outfile));
  return {
    name,
    entry,
    bytes,
    mapBytes,
    importMs: samples.map((s) => s.importMs),
    importMedianMs: median(samples.map((s) => s.importMs)),
    processMedianMs: median(samples.map((s) => s.processMs)),
  };
}
