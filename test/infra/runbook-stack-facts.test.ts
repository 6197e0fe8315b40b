/**
 * What the runbooks tell on-call to run against a deployed stage reads true against the
 * synthesized template: every `$(out Name)` is a stack output, and the log-level and snapshot
 * commands name the environment variable and instance the functions really have.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../lib/notif-function.ts';
import { shellBlocks } from '../support/runbook-shell.ts';
import { builtStage, logicalId } from './stages.ts';

const RUNBOOK_DIR = join(PROJECT_ROOT, 'runbooks');
const runbooks = readdirSync(RUNBOOK_DIR)
  .filter((f) => f.endsWith('.md'))
  .map((file) => ({ file, text: readFileSync(join(RUNBOOK_DIR, file), 'utf8') }));

describe('runbook commands against the template', () => {
  const { stack, template } = builtStage('prod');
  const outputs = Object.keys(template.toJSON().Outputs);

  it('reads only stack outputs that exist', () => {
    const used = new Set<string>();
    for (const { text } of runbooks)
      for (const match of text.matchAll(/\$\(out (\w+)\)/g)) used.add(match[1]!);
    expect(used.size).toBeGreaterThan(5);
    expect([...used].filter((name) => !outputs.includes(name))).toEqual([]);
  });

  it('changes the log level through the variable every function reads', () => {
    const resources = template.toJSON().Resources;
    const { api, webhook, worker, scheduler, migrate } = stack.functions;
    for (const fn of [api, webhook, worker, scheduler, migrate]) {
      expect(
        resources[logicalId(stack, fn)].Properties.Environment.Variables.POWERTOOLS_LOG_LEVEL,
      ).toBe('INFO');
    }
    const blocks = runbooks.flatMap((r) => shellBlocks(r.text).map((b) => b.code)).join('\n');
    expect(blocks).toMatch(/POWERTOOLS_LOG_LEVEL: "DEBUG"/);
    expect(blocks).toMatch(
      /aws rds create-db-snapshot --db-instance-identifier "\$\(out DatabaseInstanceIdentifier\)"/,
    );
  });
});
