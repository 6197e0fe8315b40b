/**
 * Error reports to Sentry (`@sentry/aws-serverless`) when SENTRY_DSN is set. The SDK is imported
 * on the first invocation only when a DSN is configured, so a function without one pays nothing,
 * and every event and breadcrumb leaves with phone numbers and API keys masked.
 */
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import type { MiddlewareObj } from '@middy/core';
import { maskPhonesIn } from '#core/platform/phone.ts';

type SentrySdk = typeof import('@sentry/aws-serverless');
type SentryOptions = Parameters<SentrySdk['init']>[0] & {};

/** What the module needs to warn when the SDK cannot be loaded; the Powertools Logger fits. */
export interface SentryLogger {
  warn(message: string, extra: Record<string, unknown>): void;
}

export interface SentrySetup {
  env?: NodeJS.ProcessEnv;
  logger?: SentryLogger;
  /** Tests replace the loader (to count imports) or the transport (to read what would be sent). */
  load?: () => Promise<SentrySdk>;
  transport?: SentryOptions['transport'];
}

// A non-literal specifier keeps the bundler from inlining the SDK (about 780 KiB minified) into
// every function: deployments that set SENTRY_DSN provide the package (Sentry's Lambda layer).
const SENTRY_PACKAGE = ['@sentry', 'aws-serverless'].join('/');
/** Where Lambda mounts a layer's Node packages; ES modules do not search NODE_PATH. */
export const LAYER_PATHS = ['/opt/nodejs/node_modules', '/opt/nodejs/node24/node_modules'];

async function loadSentry(): Promise<SentrySdk> {
  try {
    return (await import(SENTRY_PACKAGE)) as SentrySdk;
  } catch {
    const resolved = createRequire(import.meta.url).resolve(SENTRY_PACKAGE, {
      paths: LAYER_PATHS,
    });
    return (await import(pathToFileURL(resolved).href)) as SentrySdk;
  }
}

const API_KEY = /\bwn_([0-9a-f]{12})_[A-Za-z0-9_-]{43}/g;
const SECRET_FIELDS = new Set(['x-api-key', 'authorization', 'cookie', 'set-cookie']);

/** Masks phone numbers (the one rule, maskPhonesIn) and keeps only the prefix of an API key. */
export function scrubText(text: string): string {
  return maskPhonesIn(text.replace(API_KEY, 'wn_$1_[redacted]'));
}

/** Scrubs every string (and key) of a JSON-like value; header fields that carry secrets are dropped. */
export function scrubDeep<T>(value: T, depth = 0): T {
  if (typeof value === 'string') return scrubText(value) as T;
  if (value === null || typeof value !== 'object' || depth > 16) return value;
  if (Array.isArray(value)) return value.map((item) => scrubDeep(item, depth + 1)) as T;
  if (value instanceof Date) return value;
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    out[scrubText(key)] = SECRET_FIELDS.has(key.toLowerCase())
      ? '[redacted]'
      : scrubDeep(item, depth + 1);
  }
  return out as T;
}

let sdk: Promise<SentrySdk | undefined> | undefined;
let loaded: SentrySdk | undefined;
let pending = 0;

/**
 * Starts Sentry once per execution environment when SENTRY_DSN is set; resolves to undefined
 * (and imports nothing) when it is not, or when the SDK is not installed.
 */
export function initSentry(setup: SentrySetup = {}): Promise<SentrySdk | undefined> {
  const env = setup.env ?? process.env;
  const dsn = env.SENTRY_DSN;
  if (!dsn) return Promise.resolve(undefined);
  sdk ??= (setup.load ?? loadSentry)()
    .then((sentry) => {
      sentry.init({
        dsn,
        environment: env.STAGE ?? 'local',
        release: env.SERVICE_VERSION,
        // No request bodies, headers or IP addresses: the events carry the error and our context.
        sendDefaultPii: false,
        tracesSampleRate: 0,
        beforeSend: (event) => scrubDeep(event),
        beforeBreadcrumb: (breadcrumb) => scrubDeep(breadcrumb),
        ...(setup.transport ? { transport: setup.transport } : {}),
      });
      loaded = sentry;
      return sentry;
    })
    .catch((error: unknown) => {
      setup.logger?.warn('SENTRY_DSN is set but @sentry/aws-serverless could not be loaded', {
        error: error instanceof Error ? error.name : String(error),
      });
      return undefined;
    });
  return sdk;
}

/** Reports an error that was handled (answered 500, say); nothing happens without Sentry. */
export function reportError(error: unknown, context: Record<string, unknown> = {}): void {
  if (!loaded) return;
  loaded.captureException(error, { extra: scrubDeep(context) });
  pending += 1;
}

/** Sends what was captured before the invocation ends: Lambda freezes the process afterwards. */
export async function flushSentry(timeoutMs = 2_000): Promise<void> {
  if (!loaded || pending === 0) return;
  pending = 0;
  await loaded.flush(timeoutMs);
}

/**
 * Middy middleware: starts Sentry on the first invocation, reports an error the handler throws
 * (which still fails the invocation), and flushes before the answer goes back.
 */
export function reportErrorsToSentry(logger?: SentryLogger): MiddlewareObj {
  return {
    name: 'reportErrorsToSentry',
    before: async () => {
      await initSentry(logger ? { logger } : {});
    },
    after: async () => {
      await flushSentry();
    },
    onError: async (request) => {
      reportError(request.error, { functionName: request.context?.functionName });
      await flushSentry();
    },
  };
}

/** Tests only: forget the started SDK so another setup can start it. */
export async function resetSentryForTests(): Promise<void> {
  if (loaded) await loaded.close(1_000);
  sdk = undefined;
  loaded = undefined;
  pending = 0;
}
