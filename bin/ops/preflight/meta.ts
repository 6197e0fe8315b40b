/**
 * The WhatsApp side of `ops preflight`: the stage's secrets, then what Meta's Graph API says about
 * the token, the phone number and the app's subscription, and whether the deployed webhook answers
 * Meta's verification GET.
 */
import { randomBytes } from 'node:crypto';
import {
  DescribeSecretCommand,
  type DescribeSecretCommandOutput,
  GetSecretValueCommand,
  type GetSecretValueCommandOutput,
  type SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { createGraphClient } from '#core/whatsapp/graph-client.ts';
import { awsFailure, type CheckResult, errorName, fail, ok, warn } from './check.ts';

export const REQUIRED_SCOPES = ['whatsapp_business_messaging', 'whatsapp_business_management'];
export const TOKEN_WARN_DAYS = 7;
const DAY_MS = 86_400_000;
const GRAPH_TIMEOUT_MS = 10_000;
/**
 * The stack creates the access token and app secret with a random value; a current version made
 * within this long of the secret itself is still that placeholder (put-secret-value adds a version).
 */
const PLACEHOLDER_WINDOW_MS = 5 * 60_000;

export type SecretName = 'access-token' | 'app-secret' | 'verify-token';

export type WhatsAppSecrets =
  | { state: 'missing' }
  | { state: 'failed'; result: CheckResult }
  | {
      state: 'read';
      values: Partial<Record<SecretName, string>>;
      /** Secrets still holding the stack's placeholder or an empty value. */
      notSet: SecretName[];
    };

export function secretId(prefix: string, name: SecretName): string {
  return `${prefix}/whatsapp/${name}`;
}

export function putSecretCommand(prefix: string, name: SecretName): string {
  // read -rs keeps the value out of the shell history and the terminal.
  return `read -rs VALUE; aws secretsmanager put-secret-value --secret-id ${secretId(prefix, name)} --secret-string "$VALUE"`;
}

export async function readWhatsAppSecrets(
  secretsManager: SecretsManagerClient,
  prefix: string,
): Promise<WhatsAppSecrets> {
  const values: Partial<Record<SecretName, string>> = {};
  const notSet: SecretName[] = [];
  for (const name of ['access-token', 'app-secret', 'verify-token'] as const) {
    const id = secretId(prefix, name);
    const failed = (action: string, error: unknown): WhatsAppSecrets => ({
      state: 'failed',
      result: awsFailure('whatsapp-secrets', 'whatsapp secrets', `${action} on ${id}`, error),
    });
    let described: DescribeSecretCommandOutput;
    let current: GetSecretValueCommandOutput;
    try {
      described = await secretsManager.send(new DescribeSecretCommand({ SecretId: id }));
    } catch (error) {
      if (errorName(error) === 'ResourceNotFoundException') return { state: 'missing' };
      return failed('secretsmanager:DescribeSecret', error);
    }
    try {
      current = await secretsManager.send(new GetSecretValueCommand({ SecretId: id }));
    } catch (error) {
      return failed('secretsmanager:GetSecretValue', error);
    }
    const value = current.SecretString ?? '';
    const createdWithSecret =
      described.CreatedDate !== undefined &&
      current.CreatedDate !== undefined &&
      Math.abs(current.CreatedDate.getTime() - described.CreatedDate.getTime()) <
        PLACEHOLDER_WINDOW_MS;
    // The verify token is generated to be used as is; the other two must come from Meta.
    if (value.trim() === '' || (name !== 'verify-token' && createdWithSecret)) notSet.push(name);
    else values[name] = value;
  }
  return { state: 'read', values, notSet };
}

export interface WhatsAppCheckInput {
  prefix: string;
  secrets: WhatsAppSecrets;
  apiUrl: string;
  graphVersion: string;
  phoneNumberId: string | undefined;
  wabaId: string | undefined;
  /** The stack output WebhookUrl; undefined when the stack is not deployed. */
  webhookUrl: string | undefined;
  now?: Date;
}

export type GraphAnswer =
  | { kind: 'answer'; status: number; body: Record<string, unknown> }
  | { kind: 'network'; error: string };

export async function graphGet(url: URL, token: string): Promise<GraphAnswer> {
  try {
    const res = await fetch(url, {
      headers: { authorization: `Bearer ${token}`, accept: 'application/json' },
      signal: AbortSignal.timeout(GRAPH_TIMEOUT_MS),
    });
    const text = await res.text();
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      body = {};
    }
    return {
      kind: 'answer',
      status: res.status,
      body: typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : {},
    };
  } catch (error) {
    return { kind: 'network', error: errorName(error) };
  }
}

/** Meta's own words for a failed call, never the token (it is not in the answer). */
export function graphProblem(answer: GraphAnswer): string {
  if (answer.kind === 'network') return `no answer from the Graph API (${answer.error})`;
  const error = answer.body.error as { message?: unknown; code?: unknown } | undefined;
  const message = typeof error?.message === 'string' ? error.message.slice(0, 200) : '';
  return `HTTP ${answer.status}${typeof error?.code === 'number' ? `, code ${error.code}` : ''}${message ? `: ${message}` : ''}`;
}

function graphUrl(input: WhatsAppCheckInput, path: string, query: Record<string, string> = {}) {
  const base = input.apiUrl.endsWith('/') ? input.apiUrl : `${input.apiUrl}/`;
  const url = new URL(`${input.graphVersion}/${path}`, base);
  for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
  return url;
}

export async function checkWhatsApp(input: WhatsAppCheckInput): Promise<CheckResult[]> {
  const { secrets } = input;
  if (secrets.state === 'missing') {
    return [
      warn(
        'whatsapp-secrets',
        'whatsapp secrets',
        `${input.prefix}/whatsapp/* do not exist yet: the WhatsApp checks are skipped`,
        'the first deploy creates them; set them then (README, "Set the WhatsApp secrets") and run preflight again',
      ),
    ];
  }
  if (secrets.state === 'failed') return [secrets.result];

  const results: CheckResult[] = [];
  if (secrets.notSet.length > 0) {
    results.push(
      warn(
        'whatsapp-secrets',
        'whatsapp secrets',
        `not set yet: ${secrets.notSet.join(', ')}`,
        secrets.notSet.map((name) => putSecretCommand(input.prefix, name)).join('; '),
      ),
    );
  } else {
    results.push(
      ok(
        'whatsapp-secrets',
        'whatsapp secrets',
        'access token, app secret and verify token are set',
      ),
    );
  }

  const token = secrets.values['access-token'];
  if (token) results.push(...(await checkGraph(input, token)));
  results.push(await checkWebhook(input));
  return results;
}

async function checkGraph(input: WhatsAppCheckInput, token: string): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  const client = createGraphClient({
    apiUrl: input.apiUrl,
    graphVersion: input.graphVersion,
    phoneNumberId: input.phoneNumberId ?? '',
    accessToken: token,
    timeoutMs: GRAPH_TIMEOUT_MS,
  });
  let tokenCheck: CheckResult;
  try {
    tokenCheck = await checkToken(input, client);
  } finally {
    await client.close();
  }
  results.push(tokenCheck);
  // Every other Graph call would fail the same way: one FAIL, not three.
  if (tokenCheck.status === 'FAIL') return results;

  const ids =
    'pass --phone-number-id and --waba-id (the values you deploy with -c whatsappPhoneNumberId/whatsappWabaId)';
  if (!input.phoneNumberId) {
    results.push(
      warn(
        'whatsapp-phone-number',
        'whatsapp phone number',
        'no phone number id given and none deployed',
        ids,
      ),
    );
  } else {
    results.push(await checkPhoneNumber(input, input.phoneNumberId, token));
  }
  if (!input.wabaId) {
    results.push(
      warn(
        'whatsapp-subscription',
        'whatsapp app subscription',
        'no WABA id given and none deployed',
        ids,
      ),
    );
  } else {
    results.push(await checkSubscription(input, input.wabaId, token));
  }
  return results;
}

async function checkToken(
  input: WhatsAppCheckInput,
  client: ReturnType<typeof createGraphClient>,
): Promise<CheckResult> {
  const id = 'whatsapp-token';
  const title = 'whatsapp token';
  const renew = `create a new system-user token (runbooks/whatsapp-auth.md), then ${putSecretCommand(input.prefix, 'access-token')}`;
  const status = await client.tokenStatus();
  if (!status.ok) {
    return fail(id, title, `debug_token failed: ${status.message}`, renew);
  }
  if (!status.valid)
    return fail(id, title, 'Meta says the token is not valid (expired or revoked)', renew);
  const missing = REQUIRED_SCOPES.filter((s) => !status.scopes.includes(s));
  if (missing.length > 0) {
    return fail(
      id,
      title,
      `valid, but missing the scope ${missing.join(' and ')}`,
      `grant it to the system user; ${renew}`,
    );
  }
  const type = typeof status.data.type === 'string' ? `${status.data.type} ` : '';
  if (status.expiresAt === null) {
    return ok(id, title, `valid ${type}token, never expires, scopes ${REQUIRED_SCOPES.join(', ')}`);
  }
  const now = input.now ?? new Date();
  const daysLeft = (status.expiresAt.getTime() - now.getTime()) / DAY_MS;
  const expires = `expires ${status.expiresAt.toISOString().slice(0, 10)}`;
  if (daysLeft < TOKEN_WARN_DAYS) {
    return warn(
      id,
      title,
      `valid ${type}token, but ${expires} (${Math.max(0, daysLeft).toFixed(1)} days left)`,
      renew,
    );
  }
  return ok(
    id,
    title,
    `valid ${type}token, ${expires} (${Math.floor(daysLeft)} days left), scopes present`,
  );
}

async function checkPhoneNumber(
  input: WhatsAppCheckInput,
  phoneNumberId: string,
  token: string,
): Promise<CheckResult> {
  const id = 'whatsapp-phone-number';
  const title = 'whatsapp phone number';
  // messaging_limit_tier exists up to v23.0; from v24.0 the tier is the portfolio's limit field.
  const major = Number(input.graphVersion.replace(/^v/, '').split('.')[0]);
  const tierField =
    major >= 24 ? 'whatsapp_business_manager_messaging_limit' : 'messaging_limit_tier';
  const answer = await graphGet(
    graphUrl(input, phoneNumberId, { fields: `quality_rating,throughput,${tierField}` }),
    token,
  );
  if (answer.kind !== 'answer' || answer.status !== 200) {
    return fail(
      id,
      title,
      `phone number id ${phoneNumberId} is not readable with this token: ${graphProblem(answer)}`,
      'check the phone number id, and that the system user has the WhatsApp account assigned',
    );
  }
  const quality =
    typeof answer.body.quality_rating === 'string' ? answer.body.quality_rating : 'UNKNOWN';
  const tier = typeof answer.body[tierField] === 'string' ? answer.body[tierField] : 'unknown';
  const throughput = answer.body.throughput as { level?: unknown } | undefined;
  const level = typeof throughput?.level === 'string' ? `, throughput ${throughput.level}` : '';
  const summary = `${phoneNumberId}: quality ${quality}, messaging limit ${tier}${level}`;
  if (quality === 'GREEN') return ok(id, title, summary);
  return warn(
    id,
    title,
    summary,
    'a number below GREEN risks a lower limit or a block: review recent templates and opt-outs in WhatsApp Manager',
  );
}

async function checkSubscription(
  input: WhatsAppCheckInput,
  wabaId: string,
  token: string,
): Promise<CheckResult> {
  const id = 'whatsapp-subscription';
  const title = 'whatsapp app subscription';
  const answer = await graphGet(graphUrl(input, `${wabaId}/subscribed_apps`), token);
  if (answer.kind !== 'answer' || answer.status !== 200) {
    return fail(
      id,
      title,
      `subscribed_apps of WABA ${wabaId} unreadable: ${graphProblem(answer)}`,
      'check the WABA id and the whatsapp_business_management scope',
    );
  }
  const data = Array.isArray(answer.body.data) ? answer.body.data : [];
  if (data.length === 0) {
    return fail(
      id,
      title,
      `no app is subscribed to WABA ${wabaId}: Meta sends no status webhooks`,
      `subscribe the app: curl -X POST -H "Authorization: Bearer <token>" ${graphUrl(input, `${wabaId}/subscribed_apps`).href}`,
    );
  }
  const names = data
    .map(
      (d) =>
        (d as { whatsapp_business_api_data?: { name?: unknown } }).whatsapp_business_api_data?.name,
    )
    .filter((n): n is string => typeof n === 'string');
  return ok(
    id,
    title,
    `WABA ${wabaId} has ${data.length} subscribed app(s)${names.length ? `: ${names.join(', ')}` : ''}`,
  );
}

export type VerificationAnswer =
  | {
      kind: 'answer';
      status: number;
      body: string;
      challenge: string;
      echoed: boolean;
      latencyMs: number;
    }
  | { kind: 'network'; error: string; latencyMs: number };

/**
 * Meta's subscription check, as Meta sends it: a GET with a fresh challenge and the verify token;
 * `echoed` when the webhook answered 200 with exactly the challenge.
 */
export async function sendVerificationGet(
  webhookUrl: string,
  verifyToken: string,
  timeoutMs = GRAPH_TIMEOUT_MS,
): Promise<VerificationAnswer> {
  const challenge = randomBytes(12).toString('hex');
  const url = new URL(webhookUrl);
  url.searchParams.set('hub.mode', 'subscribe');
  url.searchParams.set('hub.verify_token', verifyToken);
  url.searchParams.set('hub.challenge', challenge);
  const started = performance.now();
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    const body = await res.text();
    return {
      kind: 'answer',
      status: res.status,
      body,
      challenge,
      echoed: res.status === 200 && body === challenge,
      latencyMs: Math.round(performance.now() - started),
    };
  } catch (error) {
    return {
      kind: 'network',
      error: errorName(error),
      latencyMs: Math.round(performance.now() - started),
    };
  }
}

async function checkWebhook(input: WhatsAppCheckInput): Promise<CheckResult> {
  const id = 'whatsapp-webhook';
  const title = 'webhook verification';
  if (!input.webhookUrl) {
    return warn(
      id,
      title,
      'the stack is not deployed yet: no WebhookUrl to verify',
      'deploy, then run preflight again before pasting the URL into the Meta app',
    );
  }
  const verifyToken =
    input.secrets.state === 'read' ? input.secrets.values['verify-token'] : undefined;
  if (!verifyToken) {
    return warn(
      id,
      title,
      'no verify token to test with',
      putSecretCommand(input.prefix, 'verify-token'),
    );
  }
  const answer = await sendVerificationGet(input.webhookUrl, verifyToken);
  if (answer.kind === 'network') {
    return fail(
      id,
      title,
      `${input.webhookUrl} did not answer (${answer.error})`,
      'check the API stage and the webhook function logs (/whatsapp-notif/webhook)',
    );
  }
  const { status } = answer;
  if (answer.echoed) {
    return ok(id, title, `${input.webhookUrl} echoes the challenge with the verify token`);
  }
  return fail(
    id,
    title,
    `${input.webhookUrl} answered HTTP ${status}${status === 200 ? ' without the challenge' : ''}`,
    status === 403
      ? 'the webhook function reads another verify token than the secret holds: recycle it (README, "Set the WhatsApp secrets")'
      : 'check the webhook function logs (/whatsapp-notif/webhook)',
  );
}
