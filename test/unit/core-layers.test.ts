/**
 * The core's groups are layers (README, "Project layout"): a lower group never imports a higher
 * one, so the folder list shows the architecture and a change to a rule cannot reach down into
 * the plumbing it stands on.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../lib/notif-function.ts';

const CORE = join(PROJECT_ROOT, 'lambdas', 'core');
const LAYER: Record<string, number> = {
  platform: 0,
  model: 1,
  db: 2,
  whatsapp: 2,
  notifications: 3,
  delivery: 4,
  callbacks: 4,
  admin: 5,
};

function coreFiles(): string[] {
  return readdirSync(CORE, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts'))
    .map((f) => join(CORE, f));
}

describe('the core layers', () => {
  it('keeps every core file in one of the groups', () => {
    const loose = coreFiles()
      .map((f) => relative(CORE, f).split('/')[0]!)
      .filter((group) => !(group in LAYER));
    expect(loose).toEqual([]);
  });

  it('has no import from a lower group into a higher one', () => {
    const upward: string[] = [];
    for (const file of coreFiles()) {
      const group = relative(CORE, file).split('/')[0]!;
      const source = readFileSync(file, 'utf8');
      for (const match of source.matchAll(/from '#core\/([a-z-]+)\/([^']+)'/g)) {
        const target = match[1]!;
        if ((LAYER[target] ?? -1) > LAYER[group]!) {
          upward.push(`${relative(CORE, file)} imports #core/${target}/${match[2]}`);
        }
      }
      // Relative paths would hide a layer crossing from this check and from a reader.
      expect(source, relative(CORE, file)).not.toMatch(/from '\.\.\/\.\.\//);
    }
    expect(upward).toEqual([]);
  });
});
