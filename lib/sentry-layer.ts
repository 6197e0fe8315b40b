/**
 * Sentry's published Lambda layer, added to every function when the deploy sets a DSN: the
 * functions load @sentry/aws-serverless from it (lambdas/core/platform/sentry.ts) rather than
 * carrying the SDK in each bundle.
 */
import { Stack } from 'aws-cdk-lib';
import {
  type ILayerVersion,
  type Function as LambdaFunction,
  LayerVersion,
} from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';

/**
 * Sentry publishes its Node layer from this account, one layer per SDK major
 * (`SentryNodeServerlessSDKv10` for @sentry/aws-serverless 10.x), in every commercial Region.
 * The layer puts the SDK in nodejs/node_modules, which Lambda mounts at /opt/nodejs/node_modules.
 */
export const SENTRY_LAYER_ACCOUNT = '943013980633';
export const SENTRY_LAYER_NAME = 'SentryNodeServerlessSDKv10';

export function sentryLayerArn(region: string, version: number): string {
  return `arn:aws:lambda:${region}:${SENTRY_LAYER_ACCOUNT}:layer:${SENTRY_LAYER_NAME}:${version}`;
}

export interface SentryLayerProps {
  /** The layer version (lib/config.ts DEFAULT_SENTRY_LAYER_VERSION or `-c sentryLayerVersion=`). */
  version: number;
  functions: readonly LambdaFunction[];
}

export class SentryLayer extends Construct {
  readonly layer: ILayerVersion;

  constructor(scope: Construct, id: string, props: SentryLayerProps) {
    super(scope, id);
    // The stack's own Region (a token for an environment-agnostic stack): the layer must be in
    // the Region of the function that uses it.
    this.layer = LayerVersion.fromLayerVersionArn(
      this,
      'Layer',
      sentryLayerArn(Stack.of(this).region, props.version),
    );
    for (const fn of props.functions) fn.addLayers(this.layer);
  }
}
