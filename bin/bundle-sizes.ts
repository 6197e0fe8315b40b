/**
 * Bundles every Lambda entry exactly as the stack does (lib/bundling.ts), prints the sizes and
 * fails when one is over the 1 MB budget of DESIGN §10. `npm run bundle-sizes`.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { esbuildOptions, LAMBDA_ENTRIES, MAX_BUNDLE_BYTES } from '../lib/bundling.ts';
import { PROJECT_ROOT } from '../lib/notif-function.ts';

const kib = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`;

const outdir = await mkdtemp(join(tmpdir(), 'whatsapp-notif-bundles-'));
const rows: { name: string; code: string; map: string; verdict: string }[] = [];
let failed = false;
try {
  for (const [name, entry] of Object.entries(LAMBDA_ENTRIES)) {
    const source = join(PROJECT_ROOT, entry);
    if (!existsSync(source)) {
      rows.push({ name, code: '-', map: '-', verdict: `missing ${entry}` });
      failed = true;
      continue;
    }
    const outfile = join(outdir, name, 'index.mjs');
    await build(esbuildOptions(source, outfile));
    const code = (await stat(outfile)).size;
    const map = existsSync(`${outfile}.map`) ? (await stat(`${outfile}.map`)).size : 0;
    const over = code > MAX_BUNDLE_BYTES;
    failed ||= over;
    rows.push({ name, code: kib(code), map: kib(map), verdict: over ? 'OVER BUDGET' : 'ok' });
  }
} finally {
  await rm(outdir, { recursive: true, force: true });
}

const header = { name: 'function', code: 'bundle', map: 'source map', verdict: '' };
const width = (key: keyof typeof header) =>
  Math.max(header[key].length, ...rows.map((r) => r[key].length));
for (const row of [header, ...rows]) {
  console.log(
    `${row.name.padEnd(width('name'))}  ${row.code.padStart(width('code'))}  ${row.map.padStart(width('map'))}  ${row.verdict}`,
  );
}
console.log(
  `budget: ${kib(MAX_BUNDLE_BYTES)} of bundled code per function (source maps not counted)`,
);
if (failed) process.exitCode = 1;
