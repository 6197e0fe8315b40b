/**
 * How every Lambda is bundled, written once: the stack turns it into NodejsFunction bundling
 * options and bin/bundle-sizes.ts into esbuild options, so the size check measures what ships.
 */
import type { BuildOptions } from 'esbuild';

/** Entry file of each function, relative to the project root. */
export const LAMBDA_ENTRIES = {
  api: 'lambdas/api/handler.ts',
  webhook: 'lambdas/webhook/handler.ts',
  worker: 'lambdas/worker/handler.ts',
  scheduler: 'lambdas/scheduler/handler.ts',
  migrate: 'lambdas/migrate/handler.ts',
} as const;
export type FunctionName = keyof typeof LAMBDA_ENTRIES;

/** Lambda's hard limit is 250 MB unzipped; ours is a cold-start budget (DESIGN §10). */
export const MAX_BUNDLE_BYTES = 1024 * 1024;

/**
 * The bundling choices. The AWS SDK v3 and its Smithy packages are left out: the Node.js 24 runtime
 * ships them, and bundling them would more than double every function. A package the runtime
 * lacks fails the first cold start, and the migrate trigger is the first cold start of every
 * deploy, so such a mistake stops the deployment instead of reaching traffic.
 */
export const LAMBDA_BUNDLING = {
  target: 'node24',
  format: 'esm',
  minify: true,
  sourceMap: true,
  /** Maps without the sources: stack traces resolve, our code does not ship twice. */
  sourcesContent: false,
  /** Prefer packages' ESM builds so esbuild can drop what is not imported. */
  mainFields: ['module', 'main'],
  // Everything of the SDK that the runtime ships; `@aws-sdk/rds-signer` and
  // `@aws-sdk/credential-providers` are not on that list, so they are bundled (a few KiB).
  externalModules: [
    '@aws-sdk/client-*',
    '@aws-sdk/core',
    '@aws-sdk/credential-provider-*',
    '@aws-sdk/middleware-*',
    '@aws-sdk/nested-clients',
    '@aws-sdk/token-providers',
    '@aws-sdk/types',
    '@aws-sdk/util-*',
    '@aws-sdk/signature-v4-multi-region',
    '@aws-sdk/xml-builder',
    '@smithy/*',
  ],
  /** ESM output still meets CommonJS dependencies (pg, ...) that call require(). */
  banner:
    "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
} as const;

/** The same choices as esbuild build options, for tools that bundle outside CDK. */
export function esbuildOptions(entry: string, outfile: string): BuildOptions {
  return {
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: 'node',
    target: LAMBDA_BUNDLING.target,
    format: LAMBDA_BUNDLING.format,
    minify: LAMBDA_BUNDLING.minify,
    sourcemap: LAMBDA_BUNDLING.sourceMap,
    sourcesContent: LAMBDA_BUNDLING.sourcesContent,
    mainFields: [...LAMBDA_BUNDLING.mainFields],
    external: [...LAMBDA_BUNDLING.externalModules],
    banner: { js: LAMBDA_BUNDLING.banner },
    logLevel: 'warning',
  };
}
