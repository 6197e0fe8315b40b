/**
 * Secret values for the functions: taken from the environment when set directly (local stack,
 * tests), otherwise read once from Secrets Manager by the ARN in `<NAME>_SECRET_ARN`.
 */
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { ConfigError } from '#core/platform/config.ts';

let client: SecretsManagerClient | undefined;

export async function resolveSecret(
  name: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<string | undefined> {
  const direct = env[name];
  if (direct) return direct;
  const arn = env[`${name}_SECRET_ARN`];
  if (!arn) return undefined;
  client ??= new SecretsManagerClient({});
  const result = await client.send(new GetSecretValueCommand({ SecretId: arn }));
  if (!result.SecretString) throw new ConfigError(`${name}: the secret ${arn} has no value yet`);
  return result.SecretString;
}

export async function requireSecret(
  name: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<string> {
  const value = await resolveSecret(name, env);
  if (!value) throw new ConfigError(`${name} (or ${name}_SECRET_ARN) is not set`);
  return value;
}
