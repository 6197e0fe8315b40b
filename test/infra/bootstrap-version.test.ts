/** The preflight's minimum CDK bootstrap version is the one the synthesized stack itself enforces. */
import { describe, expect, it } from 'vitest';
import { MIN_BOOTSTRAP_VERSION } from '../../bin/ops/preflight/aws.ts';
import { STAGES } from '../../lib/config.ts';
import { builtStage } from './stages.ts';

describe.each(STAGES)('the %s stack', (stage) => {
  it('refuses exactly the bootstrap versions below the preflight minimum', () => {
    const { template } = builtStage(stage);
    const rule = template.toJSON().Rules.CheckBootstrapVersion;
    const refused: string[] = rule.Assertions[0].Assert['Fn::Not'][0]['Fn::Contains'][0];

    const expected = Array.from({ length: MIN_BOOTSTRAP_VERSION - 1 }, (_, i) => String(i + 1));
    expect(refused).toEqual(expected);
  });
});
