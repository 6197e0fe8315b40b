/**
 * The Node preflight the npm scripts run first: one line naming the required Node, the one found
 * and how to get it on an old Node; silence and exit 0 on a recent one.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { nodeVersionProblem } from '../../bin/check-node.mjs';

const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as {
  engines: { node: string };
  scripts: Record<string, string>;
};

describe('nodeVersionProblem', () => {
  it('names the required version, the one found and both ways to get it on Node 20', () => {
    const line = nodeVersionProblem('20.19.0', '>=24', '24');
    expect(line).toBeDefined();
    expect(line).not.toContain('\n');
    expect(line).toContain('Node >=24');
    expect(line).toContain('.nvmrc 24');
    expect(line).toContain('this is Node 20.19.0');
    expect(line).toContain('nvm use');
    expect(line).toContain('npm install --prefix .tools/node24 node@24');
    expect(line).toContain('.tools/node24/node_modules/.bin');
  });

  it.each([
    ['24.0.0', '>=24'],
    ['v24.11.1', '>=24'],
    ['25.2.0', '>=24'],
    ['24.3.0', '>=24.3'],
    ['24.3.1', '>=24.3.1'],
  ])('accepts Node %s for %s', (found, required) => {
    expect(nodeVersionProblem(found, required)).toBeUndefined();
  });

  it.each([
    ['23.11.0', '>=24'],
    ['v22.0.0', '>=24'],
    ['24.2.9', '>=24.3'],
    ['24.3.0', '>=24.3.1'],
    ['not a version', '>=24'],
  ])('refuses Node %s for %s', (found, required) => {
    expect(nodeVersionProblem(found, required)).toMatch(/^whatsapp-notif needs Node >=24/);
  });

  it('says so when engines.node is not a range it can read', () => {
    expect(nodeVersionProblem('24.0.0', '^24 || ^26')).toContain('expected a ">=N" range');
  });

  it('agrees with .nvmrc about the major version', () => {
    const nvmrc = readFileSync('.nvmrc', 'utf8').trim();
    expect(pkg.engines.node).toBe(`>=${nvmrc}`);
  });
});

describe('the preflight in the npm scripts', () => {
  it('runs before every script that starts a TypeScript entry point', () => {
    for (const name of ['start', 'test', 'ops', 'chaos', 'bench', 'openapi', 'bundle-sizes']) {
      expect(pkg.scripts[name], name).toMatch(/^node bin\/check-node\.mjs && /);
    }
  });

  it('prints nothing and exits 0 on this Node', () => {
    const out = execFileSync(process.execPath, ['bin/check-node.mjs'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    expect(out).toBe('');
  });
});
