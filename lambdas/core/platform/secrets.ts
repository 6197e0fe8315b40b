/**
 * Secret values for the functions: taken from the environment when set directly (local stack,
 * tests), otherwise read from Secrets Manager by the ARN in `<NAME>_SECRET_ARN` through Powertools
 * Parameters, cached for SECRET_MAX_AGE_SECONDS so that a rotated value reaches warm functions
 * without recycling them.
 */
import { SecretsProvider } from '@aws-lambda-powertools/parameters/secrets';
import { ConfigError } from '#core/platform/config.ts';

/**
 * How long a warm function keeps a secret before asking Secrets Manager again. Five minutes: a
 * rotated WhatsApp token reaches every function within that (Meta keeps a replaced system-user
 * token valid until it is revoked, so a planned rotation loses nothing), while each execution
 * environment asks at most twelve times an hour per secret, a cost and latency nobody notices.
 */
export const SECRET_MAX_AGE_SECONDS = 300;

/** A forced re-read (a signature that did not match) is allowed this often, so a flood of bad requests cannot become a flood of Secrets Manager calls. */
export const FORCED_REFRESH_MIN_INTERVAL_MS = 30_000;

/** The current value of one secret: cached, refreshed when older than its maximum age. */
export type SecretReader = (options?: { refresh?: boolean }) => Promise<string>;

/** A fixed value (tests, local stack) or a reader of the current one. */
export type SecretValue = string | SecretReader;

export async function currentSecret(value: SecretValue): Promise<string> {
  return typeof value === 'string' ? value : value();
}

export interface SecretSourceOptions {
  env?: NodeJS.ProcessEnv;
  /** Tests give a provider of their own (its cache is theirs) or a smaller maximum age. */
  provider?: SecretsProvider;
  maxAgeSeconds?: number;
  /** Told when a refresh failed and the last value was kept. */
  onStaleValue?: (name: string, error: unknown) => void;
  now?: () => number;
}

let sharedProvider: SecretsProvider | undefined;

function provider(options: SecretSourceOptions): SecretsProvider {
  if (options.provider) return options.provider;
  sharedProvider ??= new SecretsProvider();
  return sharedProvider;
}

async function fetchSecret(
  name: string,
  arn: string,
  options: SecretSourceOptions,
  forceFetch: boolean,
): Promise<string> {
  const value = await provider(options).get(arn, {
    maxAge: options.maxAgeSeconds ?? SECRET_MAX_AGE_SECONDS,
    forceFetch,
  });
  if (typeof value !== 'string' || value.length === 0) {
    throw new ConfigError(`${name}: the secret ${arn} has no string value yet`);
  }
  return value;
}

/**
 * A reader of the secret `name`, checked now so a missing or empty secret fails the cold start
 * with its name. From the environment the value is fixed; from Secrets Manager each call answers
 * from the cache until it is SECRET_MAX_AGE_SECONDS old. A refresh that fails keeps the last value
 * (Secrets Manager being unreachable for a moment must not stop sends with a token that works).
 */
export async function secretReader(
  name: string,
  options: SecretSourceOptions = {},
): Promise<SecretReader> {
  const env = options.env ?? process.env;
  const direct = env[name];
  if (direct) return async () => direct;
  const arn = env[`${name}_SECRET_ARN`];
  if (!arn) throw new ConfigError(`${name} (or ${name}_SECRET_ARN) is not set`);
  const now = options.now ?? Date.now;
  let last = await fetchSecret(name, arn, options, false);
  let lastForcedAt = now();
  return async ({ refresh = false } = {}) => {
    const force = refresh && now() - lastForcedAt >= FORCED_REFRESH_MIN_INTERVAL_MS;
    if (force) lastForcedAt = now();
    try {
      last = await fetchSecret(name, arn, options, force);
    } catch (error) {
      options.onStaleValue?.(name, error);
    }
    return last;
  };
}
