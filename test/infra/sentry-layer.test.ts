/** `-c sentryDsn=…` alone turns Sentry on: every function gets the DSN and Sentry's layer for its Region. */
import { describe, expect, it } from 'vitest';
import { LAYER_PATHS } from '#core/platform/sentry.ts';
import { DEFAULT_SENTRY_LAYER_VERSION } from '../../lib/config.ts';
import { SENTRY_LAYER_ACCOUNT, SENTRY_LAYER_NAME } from '../../lib/sentry-layer.ts';
import { builtStage, logicalId } from './stages.ts';

const DSN = 'https://public@o0.ingest.sentry.io/1';

function functionsOf(context: Record<string, unknown>) {
  const { stack, template } = builtStage('dev', context);
  const resources = template.toJSON().Resources;
  const { api, webhook, worker, scheduler, migrate } = stack.functions;
  return [api, webhook, worker, scheduler, migrate].map(
    (fn) => resources[logicalId(stack, fn)].Properties,
  );
}

/** The layer ARN as CloudFormation gets it: a join with the stack's Region. */
function layerArn(version: number) {
  return {
    'Fn::Join': [
      '',
      [
        'arn:aws:lambda:',
        { Ref: 'AWS::Region' },
        `:${SENTRY_LAYER_ACCOUNT}:layer:${SENTRY_LAYER_NAME}:${version}`,
      ],
    ],
  };
}

describe("Sentry's Lambda layer", () => {
  it('is added to every function with the DSN, at the pinned version for the Region', () => {
    for (const props of functionsOf({ sentryDsn: DSN })) {
      expect(props.Environment.Variables.SENTRY_DSN).toBe(DSN);
      expect(props.Layers).toEqual([layerArn(DEFAULT_SENTRY_LAYER_VERSION)]);
    }
  });

  it('takes another version from context', () => {
    for (const props of functionsOf({ sentryDsn: DSN, sentryLayerVersion: '42' })) {
      expect(props.Layers).toEqual([layerArn(42)]);
    }
  });

  it('is absent without a DSN, and so is SENTRY_DSN', () => {
    for (const props of functionsOf({})) {
      expect(props.Layers).toBeUndefined();
      expect(props.Environment.Variables.SENTRY_DSN).toBeUndefined();
    }
  });

  it('is where the functions look for the SDK: Lambda mounts a layer at /opt, its nodejs/node_modules there', () => {
    expect(LAYER_PATHS).toContain('/opt/nodejs/node_modules');
  });

  it('refuses a version that is not a whole number', () => {
    expect(() => functionsOf({ sentryDsn: DSN, sentryLayerVersion: 'latest' })).toThrow(
      /sentryLayerVersion: "latest" is not a layer version/,
    );
  });
});
