/**
 * How every Lambda is bundled, written once: the stack turns it into NodejsFunction bundling
 * options and bin/bundle-sizes.ts into esbuild options, so the size check measures what ships.
 */
import { fileURLToPath } from 'node:url';
import type { BuildOptions } from 'esbuild';

/** The aliases are relative to it: CDK runs esbuild there, and so do the tools below. */
const PROJECT_ROOT = fileURLToPath(new URL('..', import.meta.url));

/** Entry file of each function, relative to the project root. */
export const LAMBDA_ENTRIES = {
  api: 'lambdas/api/handler.ts',
  webhook: 'lambdas/webhook/handler.ts',
  worker: 'lambdas/worker/handler.ts',
  scheduler: 'lambdas/scheduler/handler.ts',
  dispatcher: 'lambdas/dispatcher/handler.ts',
  migrate: 'lambdas/migrate/handler.ts',
  'api-logging-role': 'lambdas/api-logging-role/handler.ts',
} as const;
export type FunctionName = keyof typeof LAMBDA_ENTRIES;

/** Lambda's hard limit is 250 MB unzipped; ours is a cold-start budget (DESIGN §10). */
export const MAX_BUNDLE_BYTES = 1024 * 1024;

/**
 * Packages that a bundle may import at run time without containing them: Node's built-ins, and
 * optional requires that their packages guard and that our code never reaches (pg loads
 * `pg-native` only when `pg.native` is read). test/infra/bundles.test.ts fails on anything else.
 */
export const OPTIONAL_RUNTIME_REQUIRES: Readonly<Record<string, string>> = {
  'pg-native': 'pg requires it lazily behind the pg.native getter, which nothing of ours reads',
};

/**
 * The bundling choices. Everything the code imports is bundled, the AWS SDK included: a Node.js
 * runtime ships some SDK release that AWS does not name and that varies by Region, and recent
 * SDK packages import sub-paths (`@smithy/core/config`, `@aws-sdk/core/util`) that older releases
 * lack, so a bundle that leaves the SDK out can fail at init with ERR_PACKAGE_PATH_NOT_EXPORTED
 * wherever the runtime lags. AWS's SDK team recommends bundling the version you test with.
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
  /** Nothing is left to the runtime. */
  externalModules: [] as string[],
  /**
   * Modules swapped for smaller ones of ours, relative to the project root. Lambda always hands
   * the execution role's credentials over in the environment, so the SDK's full credential chain
   * (SSO, shared files, web identity, instance metadata: about 100 KiB a bundle) is cut to that.
   */
  aliases: {
    '@aws-sdk/credential-provider-node': './lambdas/core/platform/lambda-credentials.ts',
  } as Readonly<Record<string, string>>,
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
    alias: { ...LAMBDA_BUNDLING.aliases },
    absWorkingDir: PROJECT_ROOT,
    banner: { js: LAMBDA_BUNDLING.banner },
    logLevel: 'warning',
  };
}
