/**
 * The AWS SDK's default credential chain, cut to what a Lambda function uses. Lambda puts the
 * execution role's credentials in the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
 * AWS_SESSION_TOKEN) before any code runs, so the chain's first link always answers there; its
 * other links (SSO, shared files, processes, web identity, instance metadata) would only add
 * about 100 KiB to every bundle. lib/bundling.ts substitutes this module for
 * `@aws-sdk/credential-provider-node` in the Lambda bundles only: the local stack, the tests and
 * the ops CLI keep the full chain.
 */
import { fromEnv } from '@aws-sdk/credential-provider-env';
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from '@smithy/types';

/** Credentials that expire within five minutes are refreshed first, as the SDK's own chain does. */
const REFRESH_MARGIN_MS = 5 * 60 * 1000;

export function credentialsWillNeedRefresh(credentials?: AwsCredentialIdentity): boolean {
  return credentials?.expiration !== undefined;
}

export function credentialsTreatedAsExpired(credentials?: AwsCredentialIdentity): boolean {
  return (
    credentials?.expiration !== undefined &&
    credentials.expiration.getTime() - Date.now() < REFRESH_MARGIN_MS
  );
}

/** Same signature as the SDK's `defaultProvider`; reads the environment on every call. */
export function defaultProvider(
  init: Parameters<typeof fromEnv>[0] = {},
): AwsCredentialIdentityProvider {
  return fromEnv(init);
}
