import { Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { describe, expect, it } from 'vitest';
import { STAGES } from '../../lib/config.ts';
import { builtStage } from './stages.ts';

/** Every cdk-nag acknowledgement in the tree: where, which finding, and why. */
function acknowledgements(root: IConstruct): { path: string; id: string; reason: string }[] {
  const found: { path: string; id: string; reason: string }[] = [];
  for (const construct of root.node.findAll()) {
    for (const entry of construct.node.metadata) {
      if (entry.type !== Validations.ACKNOWLEDGED_RULES_METADATA_KEY) continue;
      for (const [key, reason] of Object.entries(entry.data as Record<string, string>)) {
        const id = key.replace(/^annotation::/i, '');
        // aws-cdk-lib acknowledges some of its own CloudFormation validation rules.
        if (id.startsWith('AwsSolutions-')) found.push({ path: construct.node.path, id, reason });
      }
    }
  }
  return found;
}

describe.each(STAGES)('cdk-nag AWS Solutions checks on the %s stack', (stage) => {
  const { stack } = builtStage(stage);

  it('reports no violation that is not acknowledged', () => {
    const report = new AwsSolutionsChecks().validateScope(stack);

    const violations = report.violations.map(
      (v) => `${v.ruleName}: ${v.violatingResources.map((r) => r.constructPath).join(', ')}`,
    );
    expect(violations).toEqual([]);
    expect(report.success).toBe(true);
  });

  it('acknowledges one finding at a time, each with a reason', () => {
    const acks = acknowledgements(stack);

    expect(acks.length).toBeGreaterThan(0);
    for (const ack of acks) {
      expect(ack.id).toMatch(/^AwsSolutions-[A-Z]+\d+(\[[^\]]+\])?$/);
      expect(ack.reason.length, `${ack.id} on ${ack.path}`).toBeGreaterThan(60);
    }
    // Whole-stack acknowledgements would hide findings on resources added later.
    expect(acks.filter((a) => a.path === stack.node.path)).toEqual([]);
  });
});

describe('stage-specific acknowledgements', () => {
  it('accepts a single-AZ, unprotected database in dev only', () => {
    const ids = (stage: 'dev' | 'prod') =>
      acknowledgements(builtStage(stage).stack).map((a) => a.id);

    expect(ids('dev')).toEqual(expect.arrayContaining(['AwsSolutions-RDS3', 'AwsSolutions-RDS10']));
    expect(ids('prod')).not.toContain('AwsSolutions-RDS3');
    expect(ids('prod')).not.toContain('AwsSolutions-RDS10');
  });
});
