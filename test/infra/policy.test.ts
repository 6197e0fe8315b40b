/**
 * AWS Control Tower's proactive controls, run with cfn-guard on the synthesized template of each
 * stage: every finding is either fixed or accepted, with its reason, in lib/nag.ts.
 */
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { CfnGuardValidator } from '@cdklabs/cdk-validator-cfnguard';
import { afterAll, describe, expect, it } from 'vitest';
import { STAGES } from '../../lib/config.ts';
import { GUARD_EXCEPTIONS, guardRulesDisabledAtSynth } from '../../lib/nag.ts';
import { builtStage, logicalId } from './stages.ts';

const RULES_DIR = join(
  dirname(createRequire(import.meta.url).resolve('@cdklabs/cdk-validator-cfnguard/package.json')),
  'rules',
  'control-tower',
);
const dir = mkdtempSync(join(tmpdir(), 'whatsapp-notif-guard-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** `[CT.SQS.PR.1]: Require ...` → `CT.SQS.PR.1`. */
function controlOf(description: string | undefined): string {
  return /^\[(CT\.[A-Z0-9]+\.PR\.\d+)\]/.exec(description ?? '')?.[1] ?? `? ${description}`;
}

describe.each(STAGES)('Control Tower guard rules on the %s stack', (stage) => {
  const { stack, template } = builtStage(stage);
  const path = join(dir, `${stage}.template.json`);
  writeFileSync(path, JSON.stringify(template.toJSON()));
  const report = new CfnGuardValidator({}).validate({ templatePaths: [path] } as never);
  const findings = report.violations.flatMap((v) =>
    v.violatingResources.map((r) => `${controlOf(v.description)} ${r.resourceLogicalId}`),
  );
  const accepted = GUARD_EXCEPTIONS.filter((e) => !e.stages || e.stages.includes(stage));
  const acceptedFindings = accepted.flatMap((e) =>
    e.resources(stack).map((c) => `${e.control} ${logicalId(stack, c)}`),
  );

  it('reports nothing that is not fixed or accepted with a reason', () => {
    expect(findings.filter((f) => !acceptedFindings.includes(f)).sort()).toEqual([]);
  });

  it('keeps no acceptance that no longer matches a finding', () => {
    expect(acceptedFindings.filter((f) => !findings.includes(f)).sort()).toEqual([]);
    for (const e of accepted) expect(e.reason.length, e.control).toBeGreaterThan(40);
  });

  it('switches off at synth exactly the controls it accepts, each a real rule file', () => {
    const files = readdirSync(RULES_DIR, { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.guard'))
      .map((f) => basename(f, '.guard'));

    for (const rule of guardRulesDisabledAtSynth(stage)) expect(files).toContain(rule);
    expect(guardRulesDisabledAtSynth(stage)).toHaveLength(accepted.length);
  });
});
