/**
 * `ops webhook test` and `ops webhook status`: what a deployed (or local) webhook answers to a
 * signed POST and to Meta's verification GET, and what Meta's Graph API says about the WABA's
 * subscribed apps and their callback URL.
 */
import { randomBytes } from 'node:crypto';
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { DEFAULT_GRAPH_API_URL } from '#core/whatsapp/config.ts';
import { signWebhookBody } from '#core/whatsapp/webhook-signature.ts';
import { DEFAULT_GRAPH_VERSION, resourcePrefix } from '../../lib/config.ts';
import { type Command, type CommandContext, stringFlag } from './command.ts';
import { table } from './output.ts';
import {
  graphGet,
  graphProblem,
  putSecretCommand,
  readWhatsAppSecrets,
  type SecretName,
  sendVerificationGet,
} from './preflight/meta.ts';
import {
  OpsError,
  readStackOutputs,
  STAGES,
  type Stage,
  stackNameFor,
  UsageError,
} from './target.ts';

const TIMEOUT_MS = 10_000;
const BODY_SUMMARY_CHARS = 120;

/** Where the webhook and the WhatsApp settings come from: a deployed stage, or the shell (local). */
interface WebhookSetting {
  value: string | undefined;
  /** `--app-secret`, `WHATSAPP_APP_SECRET`, `secret whatsapp-notif-dev/whatsapp/app-secret`… */
  source: string;
}

interface StageFacts {
  stage: Stage;
  stackName: string;
  outputs: Record<string, string>;
  secrets: Awaited<ReturnType<typeof readWhatsAppSecrets>>;
  /** WHATSAPP_* of the deployed worker: the Graph URL, version and ids the stage runs with. */
  workerEnv: Record<string, string>;
  /** Why the worker's settings could not be read (a missing permission), if so. */
  workerProblem?: string;
}

function requireUrl(value: string, what: string): string {
  try {
    new URL(value);
  } catch {
    throw new UsageError(`${what} is not a URL: ${value}`);
  }
  return value;
}

function stageOf(ctx: CommandContext): Stage | undefined {
  const stage = stringFlag(ctx, 'stage');
  if (stage === undefined) return undefined;
  if (!(STAGES as readonly string[]).includes(stage)) {
    throw new UsageError(`--stage must be one of ${STAGES.join(', ')}`);
  }
  return stage as Stage;
}

/** Reads the stack outputs, the WhatsApp secrets and the worker's settings of one stage. */
async function readStage(
  ctx: CommandContext,
  stage: Stage,
  env: NodeJS.ProcessEnv,
): Promise<StageFacts> {
  const region = stringFlag(ctx, 'region') ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION;
  const config = region ? { region } : {};
  const stackName = stringFlag(ctx, 'stack-name') ?? stackNameFor(stage);
  const [{ CloudFormationClient }, { SecretsManagerClient }, { LambdaClient }] = await Promise.all([
    import('@aws-sdk/client-cloudformation'),
    import('@aws-sdk/client-secrets-manager'),
    import('@aws-sdk/client-lambda'),
  ]);
  const outputs = await readStackOutputs(stackName, new CloudFormationClient(config));
  const secretsManager: SecretsManagerClient = new SecretsManagerClient(config);
  const secrets = await readWhatsAppSecrets(secretsManager, resourcePrefix(stage));
  if (secrets.state === 'failed') throw new OpsError(secrets.result.summary);
  const { readDeployedWhatsAppSettings } = await import('./preflight/run.ts');
  const settings = await readDeployedWhatsAppSettings(
    new LambdaClient(config),
    outputs.WorkerFunctionName,
  );
  // Without lambda:GetFunctionConfiguration the ids are unknown, which `webhook test` can live with.
  if ('failed' in settings) {
    return {
      stage,
      stackName,
      outputs,
      secrets,
      workerEnv: {},
      workerProblem: settings.failed.summary,
    };
  }
  return { stage, stackName, outputs, secrets, workerEnv: settings.env };
}

/** A secret from its flag, else (local) the environment or (stage) Secrets Manager. */
function secretSetting(
  ctx: CommandContext,
  flag: string,
  envName: string,
  name: SecretName,
  facts: StageFacts | undefined,
  env: NodeJS.ProcessEnv,
): WebhookSetting {
  const given = stringFlag(ctx, flag);
  if (given !== undefined) return { value: given, source: `--${flag}` };
  if (!facts) return { value: env[envName] || undefined, source: envName };
  const id = `${resourcePrefix(facts.stage)}/whatsapp/${name}`;
  if (facts.secrets.state !== 'read') return { value: undefined, source: `secret ${id}` };
  return { value: facts.secrets.values[name], source: `secret ${id}` };
}

function missingSecret(
  setting: WebhookSetting,
  facts: StageFacts | undefined,
  flag: string,
  name: SecretName,
): never {
  if (facts) {
    throw new OpsError(
      `${setting.source} is not set yet: ${putSecretCommand(resourcePrefix(facts.stage), name)} (or pass --${flag})`,
    );
  }
  throw new UsageError(
    `no ${name.replace('-', ' ')}: set ${setting.source} to the value npm start runs with, or pass --${flag}`,
  );
}

/** One line of an answer's body: enough to recognise it, never a whole page. */
export function summariseBody(body: string): string {
  const line = body.replace(/\s+/g, ' ').trim();
  if (line === '') return '(empty)';
  return line.length > BODY_SUMMARY_CHARS ? `${line.slice(0, BODY_SUMMARY_CHARS)}…` : line;
}

/**
 * A `delivered` status for a wamid no notification has, so applying it changes nothing: the
 * webhook keeps it in pending_statuses (in case the worker stores that wamid later), and the
 * scheduler deletes it after 7 days. The recipient is a fictional 555 number, not a person.
 */
export function sampleStatusBody(input: { wabaId: string; phoneNumberId: string; now?: Date }): {
  body: string;
  wamid: string;
} {
  const wamid = `wamid.OPS-WEBHOOK-TEST-${randomBytes(8).toString('hex')}`;
  const timestamp = String(Math.floor((input.now ?? new Date()).getTime() / 1000));
  const body = JSON.stringify({
    object: 'whatsapp_business_account',
    entry: [
      {
        id: input.wabaId,
        changes: [
          {
            field: 'messages',
            value: {
              messaging_product: 'whatsapp',
              metadata: {
                display_phone_number: '15550000000',
                phone_number_id: input.phoneNumberId,
              },
              statuses: [
                { id: wamid, status: 'delivered', timestamp, recipient_id: '15550000000' },
              ],
            },
          },
        ],
      },
    ],
  });
  return { body, wamid };
}

interface Probe {
  check: 'POST signed status' | 'GET verification';
  ok: boolean;
  status: number | null;
  latencyMs: number;
  summary: string;
  expected: string;
}

async function postSigned(url: string, body: string, appSecret: string): Promise<Probe> {
  const started = performance.now();
  const expected = 'HTTP 200';
  try {
    const res = await fetch(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-hub-signature-256': signWebhookBody(body, appSecret),
      },
      body,
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    const text = await res.text();
    return {
      check: 'POST signed status',
      ok: res.status === 200,
      status: res.status,
      latencyMs: Math.round(performance.now() - started),
      summary: summariseBody(text),
      expected,
    };
  } catch (error) {
    return {
      check: 'POST signed status',
      ok: false,
      status: null,
      latencyMs: Math.round(performance.now() - started),
      summary: `no answer (${error instanceof Error ? error.name : 'error'})`,
      expected,
    };
  }
}

async function getVerification(url: string, verifyToken: string): Promise<Probe> {
  const answer = await sendVerificationGet(url, verifyToken, TIMEOUT_MS);
  const expected = 'HTTP 200 echoing the challenge';
  if (answer.kind === 'network') {
    return {
      check: 'GET verification',
      ok: false,
      status: null,
      latencyMs: answer.latencyMs,
      summary: `no answer (${answer.error})`,
      expected,
    };
  }
  return {
    check: 'GET verification',
    ok: answer.echoed,
    status: answer.status,
    latencyMs: answer.latencyMs,
    summary: answer.echoed
      ? 'echoed the challenge'
      : `did not echo the challenge: ${summariseBody(answer.body)}`,
    expected,
  };
}

/** The local webhook from --webhook-url, else --url / WN_API_URL (the banner's) plus its path. */
function localWebhookUrl(
  ctx: CommandContext,
  env: NodeJS.ProcessEnv,
): { url: string; source: string } {
  const given = stringFlag(ctx, 'webhook-url');
  if (given !== undefined)
    return { url: requireUrl(given, '--webhook-url'), source: '--webhook-url' };
  const api = stringFlag(ctx, 'url') ?? env.WN_API_URL;
  if (!api) {
    throw new UsageError(
      'no webhook: pass --stage dev|prod, --webhook-url, or --url / WN_API_URL (npm start prints it)',
    );
  }
  const base = requireUrl(api, stringFlag(ctx, 'url') !== undefined ? '--url' : 'WN_API_URL');
  return {
    url: new URL('webhook/whatsapp', base.endsWith('/') ? base : `${base}/`).href,
    source: stringFlag(ctx, 'url') !== undefined ? '--url' : 'WN_API_URL',
  };
}

export function webhookCommands(env: NodeJS.ProcessEnv = process.env): Command[] {
  return [
    {
      name: 'webhook test',
      summary:
        'send a signed sample status and a verification GET to the webhook; report the answers',
      usage: '[--stage dev|prod] [--app-secret <s>] [--verify-token <t>] [--webhook-url <url>]',
      description: [
        'Does what Meta does: POSTs a delivered status signed with X-Hub-Signature-256 (HMAC-SHA256',
        'of the raw body keyed with the app secret) and GETs the subscription check with the verify',
        'token and a fresh challenge. Each answer is shown with its HTTP status, a body summary and',
        'the latency. Exit code 1 unless the POST answers 200 and the GET echoes the challenge.',
        'The status is for a wamid no notification has (wamid.OPS-WEBHOOK-TEST-…): it changes no',
        'notification; the webhook keeps it as a pending status, which the scheduler deletes after 7 days.',
        'With --stage: the WebhookUrl stack output and the secrets whatsapp-notif-<stage>/whatsapp/*.',
        'Locally: the webhook under --url or WN_API_URL, WHATSAPP_APP_SECRET and WHATSAPP_VERIFY_TOKEN',
        '(start the stack with them set, so both sides hold the same values).',
      ].join('\n'),
      options: {
        'app-secret': { type: 'string' },
        'verify-token': { type: 'string' },
        'webhook-url': { type: 'string' },
      },
      optionsHelp: [
        ['--app-secret <s>', 'sign with this (default: WHATSAPP_APP_SECRET, or the stage secret)'],
        [
          '--verify-token <t>',
          'verify with this (default: WHATSAPP_VERIFY_TOKEN, or the stage secret)',
        ],
        [
          '--webhook-url <url>',
          'the webhook itself (default: from the stack, or --url plus /webhook/whatsapp)',
        ],
      ],
      examples: [
        'WHATSAPP_APP_SECRET=… WHATSAPP_VERIFY_TOKEN=… npm run ops -- webhook test',
        'npm run ops -- webhook test --stage dev --region eu-west-1',
      ],
      async run(ctx) {
        const stage = stageOf(ctx);
        const facts = stage ? await readStage(ctx, stage, env) : undefined;
        let webhook: { url: string; source: string };
        if (stringFlag(ctx, 'webhook-url') !== undefined || !facts) {
          webhook = localWebhookUrl(ctx, env);
        } else {
          const url = facts.outputs.WebhookUrl;
          if (!url) throw new OpsError(`the stack ${facts.stackName} has no WebhookUrl output`);
          webhook = { url, source: `stack ${facts.stackName}` };
        }
        const appSecret = secretSetting(
          ctx,
          'app-secret',
          'WHATSAPP_APP_SECRET',
          'app-secret',
          facts,
          env,
        );
        const verifyToken = secretSetting(
          ctx,
          'verify-token',
          'WHATSAPP_VERIFY_TOKEN',
          'verify-token',
          facts,
          env,
        );
        if (!appSecret.value) missingSecret(appSecret, facts, 'app-secret', 'app-secret');
        if (!verifyToken.value) missingSecret(verifyToken, facts, 'verify-token', 'verify-token');

        if (facts?.workerProblem) {
          ctx.out.note(
            `the sample carries placeholder WABA and phone number ids: ${facts.workerProblem}`,
          );
        }
        const phoneNumberId =
          facts?.workerEnv.WHATSAPP_PHONE_NUMBER_ID ?? env.WHATSAPP_PHONE_NUMBER_ID;
        if (!phoneNumberId) {
          // The webhook acknowledges another sender's payload and ignores it: still a test of the
          // signature and the route, not of the status path.
          ctx.out.note(
            'no phone number id (WHATSAPP_PHONE_NUMBER_ID, or --stage): the webhook will take the ' +
              'sample for another sender’s and ignore it after checking its signature',
          );
        }
        const sample = sampleStatusBody({
          wabaId: facts?.workerEnv.WHATSAPP_WABA_ID ?? env.WHATSAPP_WABA_ID ?? '0',
          phoneNumberId: phoneNumberId ?? '0',
        });
        const probes = [
          await postSigned(webhook.url, sample.body, appSecret.value),
          await getVerification(webhook.url, verifyToken.value),
        ];
        const passed = probes.every((p) => p.ok);
        ctx.out.data({
          webhookUrl: webhook.url,
          webhookSource: webhook.source,
          appSecretSource: appSecret.source,
          verifyTokenSource: verifyToken.source,
          wamid: sample.wamid,
          probes,
          passed,
        });
        ctx.out.line(`Webhook ${webhook.url} (from ${webhook.source})`);
        ctx.out.line(`signed with ${appSecret.source}, verified with ${verifyToken.source}`);
        ctx.out.line();
        ctx.out.line(
          table(probes, [
            { title: 'RESULT', value: (p) => (p.ok ? 'ok' : 'FAIL') },
            { title: 'CHECK', value: (p) => p.check },
            { title: 'HTTP', value: (p) => p.status ?? '-', align: 'right' },
            { title: 'LATENCY', value: (p) => `${p.latencyMs} ms`, align: 'right' },
            {
              title: 'ANSWER',
              value: (p) => (p.ok ? p.summary : `${p.summary} (expected ${p.expected})`),
            },
          ]),
        );
        ctx.out.line();
        ctx.out.line(
          passed
            ? `Both answered as Meta expects. The sample status (${sample.wamid}) matches no notification: it is kept as a pending status, deleted after 7 days.`
            : probes[0]!.status === 401
              ? 'The webhook refused the signature: it holds another app secret than the one used here.'
              : 'The webhook did not answer as Meta expects: see the FAIL lines and the webhook logs.',
        );
        return passed ? 0 : 1;
      },
    },
    {
      name: 'webhook status',
      summary: "the WABA's subscribed apps and the callback URL Meta has, from the Graph API",
      usage: '[--stage dev|prod] [--waba-id <id>] [--whatsapp-api-url <url>]',
      description: [
        'Reads GET /{waba-id}/subscribed_apps with the access token. An empty list means Meta sends no',
        "webhooks for the WABA. Meta reports a callback URL here only when it overrides the app's",
        '(override_callback_uri); otherwise webhooks go to the callback URL set in the App Dashboard,',
        'which this call does not show. With --stage the callback URL is compared with the stack output',
        'WebhookUrl. Exit code 1 when no app is subscribed, the call fails, or an override points elsewhere.',
        'With --stage: the token from whatsapp-notif-<stage>/whatsapp/access-token, the WABA id and Graph',
        'URL from the deployed worker. Locally: WHATSAPP_ACCESS_TOKEN, WHATSAPP_WABA_ID and',
        'WHATSAPP_API_URL (npm start prints them for the sandbox).',
      ].join('\n'),
      options: {
        'waba-id': { type: 'string' },
        'whatsapp-api-url': { type: 'string' },
      },
      optionsHelp: [
        [
          '--waba-id <id>',
          "the WhatsApp Business Account (default: the worker's WHATSAPP_WABA_ID)",
        ],
        ['--whatsapp-api-url <url>', "the Graph API (default: the worker's, or Meta's)"],
      ],
      examples: [
        'npm run ops -- webhook status --stage prod --region eu-west-1',
        'WHATSAPP_API_URL=http://127.0.0.1:41234 WHATSAPP_ACCESS_TOKEN=… npm run ops -- webhook status --waba-id 100000000000004',
      ],
      async run(ctx) {
        const stage = stageOf(ctx);
        const facts = stage ? await readStage(ctx, stage, env) : undefined;
        // The WABA id lives in the worker's settings; given as a flag, the rest has defaults.
        if (facts?.workerProblem && stringFlag(ctx, 'waba-id') === undefined) {
          throw new OpsError(`${facts.workerProblem} (or pass --waba-id)`);
        }
        const graphApiUrl = requireUrl(
          stringFlag(ctx, 'whatsapp-api-url') ??
            (facts ? facts.workerEnv.WHATSAPP_API_URL : env.WHATSAPP_API_URL) ??
            DEFAULT_GRAPH_API_URL,
          '--whatsapp-api-url',
        );
        const graphVersion =
          (facts ? facts.workerEnv.WHATSAPP_GRAPH_VERSION : env.WHATSAPP_GRAPH_VERSION) ??
          DEFAULT_GRAPH_VERSION;
        const wabaId =
          stringFlag(ctx, 'waba-id') ??
          (facts ? facts.workerEnv.WHATSAPP_WABA_ID : env.WHATSAPP_WABA_ID);
        if (!wabaId) {
          throw new UsageError(
            facts
              ? 'the deployed worker has no WHATSAPP_WABA_ID: pass --waba-id'
              : 'no WABA id: pass --waba-id or set WHATSAPP_WABA_ID',
          );
        }
        let token: string | undefined;
        if (facts) {
          token = facts.secrets.state === 'read' ? facts.secrets.values['access-token'] : undefined;
          if (!token) {
            throw new OpsError(
              `the access token is not set yet: ${putSecretCommand(resourcePrefix(facts.stage), 'access-token')}`,
            );
          }
        } else {
          token = env.WHATSAPP_ACCESS_TOKEN || undefined;
          if (!token) throw new UsageError('no access token: set WHATSAPP_ACCESS_TOKEN');
        }

        const base = graphApiUrl.endsWith('/') ? graphApiUrl : `${graphApiUrl}/`;
        const answer = await graphGet(
          new URL(`${graphVersion}/${wabaId}/subscribed_apps`, base),
          token,
        );
        if (answer.kind !== 'answer' || answer.status !== 200) {
          throw new OpsError(
            `subscribed_apps of WABA ${wabaId} unreadable: ${graphProblem(answer)}`,
          );
        }
        const apps = (Array.isArray(answer.body.data) ? answer.body.data : []).map((raw) => {
          const entry = (raw ?? {}) as {
            whatsapp_business_api_data?: { id?: unknown; name?: unknown };
            override_callback_uri?: unknown;
          };
          const app = entry.whatsapp_business_api_data ?? {};
          return {
            id: typeof app.id === 'string' ? app.id : null,
            name: typeof app.name === 'string' ? app.name : null,
            overrideCallbackUri:
              typeof entry.override_callback_uri === 'string' ? entry.override_callback_uri : null,
          };
        });
        const stackWebhookUrl = facts?.outputs.WebhookUrl ?? null;
        const overrides = apps.filter((a) => a.overrideCallbackUri !== null);
        const mismatched =
          stackWebhookUrl === null
            ? []
            : overrides.filter((a) => a.overrideCallbackUri !== stackWebhookUrl);
        const problems: string[] = [];
        if (apps.length === 0) {
          problems.push(
            `no app is subscribed to WABA ${wabaId}: Meta sends no webhooks (POST ${graphVersion}/${wabaId}/subscribed_apps subscribes the app)`,
          );
        }
        for (const a of mismatched) {
          problems.push(
            `app ${a.id ?? '?'} overrides the callback URL with ${a.overrideCallbackUri}, not the stack's ${stackWebhookUrl}`,
          );
        }
        ctx.out.data({
          wabaId,
          graphApiUrl,
          graphApiIsMeta: graphApiUrl === DEFAULT_GRAPH_API_URL,
          apps,
          stackWebhookUrl,
          problems,
          passed: problems.length === 0,
        });
        ctx.out.line(
          `WABA ${wabaId}: ${apps.length} subscribed app(s)${graphApiUrl === DEFAULT_GRAPH_API_URL ? '' : ` (Graph API at ${graphApiUrl}, not Meta)`}`,
        );
        ctx.out.line();
        ctx.out.line(
          table(
            apps,
            [
              { title: 'APP ID', value: (a) => a.id },
              { title: 'NAME', value: (a) => a.name },
              {
                title: 'CALLBACK URL',
                value: (a) =>
                  a.overrideCallbackUri ?? "the app's (App Dashboard; not in this answer)",
              },
            ],
            '(no subscribed apps)',
          ),
        );
        if (stackWebhookUrl !== null) {
          ctx.out.line();
          ctx.out.line(`Stack WebhookUrl: ${stackWebhookUrl}`);
          if (overrides.length === 0) {
            ctx.out.line(
              "No override: Meta posts to the app's callback URL; check it equals WebhookUrl in the App Dashboard.",
            );
          } else if (mismatched.length === 0) {
            ctx.out.line('The override callback URL is the stack WebhookUrl.');
          }
        }
        for (const problem of problems) ctx.out.line(`FAIL: ${problem}`);
        return problems.length === 0 ? 0 : 1;
      },
    },
  ];
}
