/**
 * The whole system on one machine, with no AWS account and no Meta credentials: embedded
 * PostgreSQL (or DATABASE_URL), the SQS emulator with the real queue settings, and the same Lambda
 * handlers behind a local API Gateway.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import { join, resolve } from 'node:path';
import { type CreatedKey, createApiClient, revokeApiKey } from '#core/admin/api-keys.ts';
import { createDatabase } from '#core/db/connect.ts';
import { migrateToLatest } from '#core/db/migrate.ts';
import { enqueueNotifications } from '#core/notifications/enqueue.ts';
import { PRIORITIES } from '#core/notifications/queue-settings.ts';
import { type SandboxHandle, startSandbox } from '../sandbox/server.ts';
import { META_LIKE_WEBHOOK_RETRY_DELAYS_MS } from '../sandbox/webhooks.ts';
import { type FunctionDatabaseUrls, functionDatabaseUrls } from './database-roles.ts';
import { type LocalRoute, startLocalHttpServer } from './http-server.ts';
import { localLambdaContext } from './lambda-context.ts';
import { startEmbeddedPostgres } from './postgres.ts';
import { LOCAL_AWS_CREDENTIALS, localSqsClient, startLocalSqs } from './sqs.ts';
import { type EventSource, startSqsEventSource, toSqsRecord } from './sqs-event-source.ts';
import { chooseLocalWebhookSecrets, type SecretSources } from './webhook-secrets.ts';

export interface LocalStackOptions {
  port: number;
  /** Where the embedded database (and queue state) live; default `.local/` in the project. */
  dataDir?: string;
  /** An external PostgreSQL instead of the embedded one. */
  databaseUrl?: string;
  log?: (line: string) => void;
  /** Run the worker on the queues (default true; tests that inspect the queue turn it off). */
  worker?: boolean;
  /** Pollers per queue, like the event source's maximum concurrency. */
  workerConcurrency?: number;
  /** Run the scheduler on a timer (default true), every this many seconds (default 15). */
  scheduler?: boolean;
  schedulerIntervalSeconds?: number;
  /** Run the callback dispatcher (default true), its drains back to back. */
  dispatcher?: boolean;
}

export interface LocalStack {
  baseUrl: string;
  apiKey: string;
  apiKeyPrefix: string;
  databaseUrl: string;
  sqsEndpoint: string;
  queueUrls: { high: string; bulk: string; highDlq: string; bulkDlq: string };
  /** The WhatsApp sandbox, unless real credentials were given. */
  sandbox: SandboxHandle | undefined;
  /** Where the app secret and verify token came from, for the banner (never the values). */
  secretSources: SecretSources | undefined;
  stop(): Promise<void>;
}

export async function startLocalStack(options: LocalStackOptions): Promise<LocalStack> {
  const log = options.log ?? (() => {});
  const dataDir = resolve(options.dataDir ?? join(process.cwd(), '.local'));
  const stops: (() => Promise<unknown>)[] = [];
  const stopAll = async () => {
    for (const stop of stops.reverse()) {
      await stop().catch((error: unknown) => log(`shutdown step failed: ${String(error)}`));
    }
  };

  try {
    let databaseUrl = options.databaseUrl;
    if (!databaseUrl) {
      const postgres = await startEmbeddedPostgres({ dataDir: join(dataDir, 'postgres') });
      stops.push(() => postgres.stop());
      databaseUrl = postgres.url;
    }
    // In memory: fauxqs' SQLite persistence loses a message whose visibility is set to 0 (a
    // retry with no delay). What was on the queues when the stack stopped is re-queued below.
    const sqs = await startLocalSqs();
    stops.push(() => sqs.stop());

    // The handlers read their configuration from the environment, exactly as in Lambda.
    Object.assign(process.env, {
      STAGE: process.env.STAGE ?? 'local',
      DATABASE_URL: databaseUrl,
      DB_POOL_MAX: process.env.DB_POOL_MAX ?? '10',
      SQS_ENDPOINT: sqs.endpoint,
      AWS_REGION: sqs.region,
      AWS_ACCESS_KEY_ID: LOCAL_AWS_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: LOCAL_AWS_CREDENTIALS.secretAccessKey,
      HIGH_QUEUE_URL: sqs.queueUrls.high,
      BULK_QUEUE_URL: sqs.queueUrls.bulk,
      HIGH_DLQ_URL: sqs.deadLetterQueueUrls.high,
      BULK_DLQ_URL: sqs.deadLetterQueueUrls.bulk,
      POWERTOOLS_METRICS_DISABLED: process.env.POWERTOOLS_METRICS_DISABLED ?? 'true',
      // Locally the scheduler ticks every interval and probes once per tick, so panic-mode probes
      // keep their 15 s cadence without minute-long runs.
      SCHEDULER_INTERVAL_SECONDS: String(options.schedulerIntervalSeconds ?? 15),
      PANIC_PROBE_INTERVAL_SECONDS: String(options.schedulerIntervalSeconds ?? 15),
      SCHEDULER_PROBES_PER_RUN: '1',
      // Callbacks locally: http and loopback receivers allowed, short drains, quick retries.
      CALLBACK_ALLOW_LOCAL_TARGETS: 'true',
      CALLBACK_DRAIN_SECONDS: process.env.CALLBACK_DRAIN_SECONDS ?? '2',
      CALLBACK_TIMEOUT_MS: process.env.CALLBACK_TIMEOUT_MS ?? '5000',
      CALLBACK_BACKOFF_BASE_MS: process.env.CALLBACK_BACKOFF_BASE_MS ?? '2000',
    });

    // With no access token the sandbox plays Meta: it answers sends and posts signed webhooks back.
    let sandbox: SandboxHandle | undefined;
    let secretSources: LocalStack['secretSources'];
    if (!process.env.WHATSAPP_ACCESS_TOKEN) {
      // A secret the developer chose is kept, so payloads signed with it (a captured Meta webhook,
      // `ops webhook test`) verify; the sandbox signs its own webhooks with the same one.
      const chosen = chooseLocalWebhookSecrets(process.env);
      secretSources = chosen.sources;
      const secrets = {
        accessToken: randomBytes(24).toString('hex'),
        appSecret: chosen.appSecret,
        phoneNumberId: '100000000000001',
      };
      // A fresh number's 250 a day would become the daily cap (it follows the messaging tier);
      // the local stack carries load and chaos runs, so its number starts at the top tier.
      // Statuses are retried as Meta retries them, long enough to outlast a database restart.
      sandbox = await startSandbox({
        ...secrets,
        logger: log,
        account: { messagingLimit: 'TIER_UNLIMITED' },
        webhookRetryDelaysMs: META_LIKE_WEBHOOK_RETRY_DELAYS_MS,
      });
      stops.push(() => sandbox!.stop());
      Object.assign(process.env, {
        WHATSAPP_API_URL: sandbox.url,
        WHATSAPP_PHONE_NUMBER_ID: secrets.phoneNumberId,
        // The sandbox lists its templates under any business account id.
        WHATSAPP_WABA_ID: process.env.WHATSAPP_WABA_ID ?? '100000000000004',
        WHATSAPP_ACCESS_TOKEN: secrets.accessToken,
        WHATSAPP_APP_SECRET: secrets.appSecret,
        WHATSAPP_VERIFY_TOKEN: chosen.verifyToken,
      });
    }

    const db = createDatabase({ DATABASE_URL: databaseUrl, DB_POOL_MAX: 2 } as never);
    stops.push(() => db.destroy());
    const applied = await migrateToLatest(db);
    if (applied.length) log(`migrations applied: ${applied.join(', ')}`);
    const devKey = await issueDevelopmentKey(db);
    const requeued = await requeueInFlight(db, localSqsClient(sqs.endpoint), sqs.queueUrls);
    if (requeued) log(`re-queued ${requeued} notifications left queued or sending by the last run`);
    // Each handler connects as its own database role, as in AWS, so a query its grants do not
    // cover fails here too. A server where the owner cannot set passwords keeps the owner's URL.
    const roleUrls = await functionDatabaseUrls(databaseUrl).catch((error: unknown) => {
      log(`handlers connect as the database owner (no role passwords: ${String(error)})`);
      return undefined;
    });
    /**
     * The handlers read DATABASE_URL once, when their first invocation builds them; each is built
     * here, one at a time, with its role's URL in the environment.
     */
    const buildAs = async (fn: keyof FunctionDatabaseUrls, build: () => Promise<unknown>) => {
      if (!roleUrls) return build();
      process.env.DATABASE_URL = roleUrls[fn];
      try {
        return await build();
      } finally {
        process.env.DATABASE_URL = databaseUrl;
      }
    };

    const api = await import('../../lambdas/api/handler.ts');
    const webhook = await import('../../lambdas/webhook/handler.ts');
    const routes: LocalRoute[] = [
      { prefix: '/', functionName: 'api', handler: api.handler },
      { prefix: '/webhook/whatsapp', functionName: 'webhook', handler: webhook.handler },
    ];
    // Issue 17: `ops scheduler run` calls Lambda's Invoke API; locally this path answers it with
    // one run of the scheduler handler (set below when the scheduler runs), as Lambda would.
    let invokeScheduler: (() => Promise<unknown>) | undefined;
    routes.push({
      prefix: '/2015-03-31/functions/scheduler/invocations',
      functionName: 'scheduler',
      handler: async (event) => {
        if (event.httpMethod !== 'POST' || !invokeScheduler) {
          return { statusCode: 404, body: '{"message":"the scheduler is not running here"}' };
        }
        try {
          return { statusCode: 200, body: JSON.stringify((await invokeScheduler()) ?? null) };
        } catch (error) {
          const message = error instanceof Error ? error.message : String(error);
          return {
            statusCode: 200,
            headers: { 'x-amz-function-error': 'Unhandled' },
            body: JSON.stringify({ errorMessage: message }),
          };
        }
      },
    });
    const server: Server = await startLocalHttpServer(routes, options.port, '127.0.0.1', (error) =>
      log(`handler crashed: ${String(error)}`),
    );
    stops.push(
      () =>
        new Promise<void>((done) => {
          server.close(() => done());
          server.closeAllConnections();
        }),
    );
    const address = server.address();
    const port = address && typeof address === 'object' ? address.port : options.port;
    const baseUrl = `http://127.0.0.1:${port}`;
    sandbox?.setWebhookUrl(`${baseUrl}/webhook/whatsapp`);
    await buildAs('api', () => fetch(`${baseUrl}/v1/health`).then((r) => r.arrayBuffer()));
    // A verification GET without a token: refused, but the webhook is built by then.
    await buildAs('webhook', () =>
      fetch(`${baseUrl}/webhook/whatsapp`).then((r) => r.arrayBuffer()),
    );

    if (options.worker ?? true) {
      const worker = await import('../../lambdas/worker/handler.ts');
      await buildAs('worker', () =>
        (worker.handler as (e: unknown, c: unknown) => Promise<unknown>)(
          { Records: [] },
          localLambdaContext('worker', 30_000),
        ),
      );
      const sqsClient = localSqsClient(sqs.endpoint);
      const sources: EventSource[] = PRIORITIES.map((priority) =>
        startSqsEventSource({
          sqs: sqsClient,
          queueUrl: sqs.queueUrls[priority],
          queueArn: sqs.queueArns[priority],
          handler: worker.handler as never,
          concurrency: options.workerConcurrency ?? 2,
          onError: (error) => log(`worker (${priority}) failed: ${String(error)}`),
        }),
      );
      // Stopped before the server and the database, so no batch is cut off half-way.
      stops.push(async () => {
        await Promise.all(sources.map((s) => s.stop()));
        sqsClient.destroy();
      });
    }

    if (options.scheduler ?? true) {
      const scheduler = await import('../../lambdas/scheduler/handler.ts');
      const intervalMs = (options.schedulerIntervalSeconds ?? 15) * 1000;
      let running: Promise<unknown> = Promise.resolve();
      const tick = () => {
        running = (scheduler.handler as (e: unknown, c: unknown) => Promise<unknown>)(
          { source: 'local.timer', 'detail-type': 'Scheduled Event' },
          localLambdaContext('scheduler', 60_000),
        ).catch((error: unknown) => log(`scheduler failed: ${String(error)}`));
      };
      // The first run builds the scheduler as its role; the timer starts after it.
      await buildAs('scheduler', async () => {
        tick();
        await running;
      });
      invokeScheduler = async () => {
        // After the timer's run, if one is going: the advisory lock would only skip this one.
        await running;
        const run = (scheduler.handler as (e: unknown, c: unknown) => Promise<unknown>)(
          { source: 'ops.scheduler-run', 'detail-type': 'Manual run' },
          localLambdaContext('scheduler', 60_000),
        );
        running = run.catch(() => undefined);
        return run;
      };
      const timer = setInterval(tick, intervalMs);
      stops.push(async () => {
        clearInterval(timer);
        await running;
      });
    }

    if (options.dispatcher ?? true) {
      // The same handler as in AWS, given what its queue would deliver: one drain tick, then the
      // next as soon as a drain ends (in AWS a schedule drops one a minute, each drains ~50 s).
      const dispatcher = await import('../../lambdas/dispatcher/handler.ts');
      let stopped = false;
      const drain = () =>
        (dispatcher.handler as (e: unknown, c: unknown) => Promise<unknown>)(
          {
            Records: [
              toSqsRecord(
                { Body: '{"kind":"drain"}', MessageId: randomUUID() } as never,
                'local-callbacks',
              ),
            ],
          },
          localLambdaContext('dispatcher', 90_000),
        ).catch(async (error: unknown) => {
          log(`dispatcher failed: ${String(error)}`);
          // A broken drain (database down) must not spin: wait as a redelivery would.
          await new Promise((resolve) => setTimeout(resolve, 1_000));
        });
      await buildAs('dispatcher', drain);
      const loop = (async () => {
        while (!stopped) await drain();
      })();
      stops.push(async () => {
        stopped = true;
        await loop;
      });
    }

    return {
      baseUrl,
      apiKey: devKey.key,
      apiKeyPrefix: devKey.prefix,
      databaseUrl,
      sqsEndpoint: sqs.endpoint,
      queueUrls: {
        high: sqs.queueUrls.high,
        bulk: sqs.queueUrls.bulk,
        highDlq: sqs.deadLetterQueueUrls.high,
        bulkDlq: sqs.deadLetterQueueUrls.bulk,
      },
      sandbox,
      secretSources,
      stop: stopAll,
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}

/**
 * The emulator starts with empty queues, so rows that were `queued` or `sending` when the last
 * run stopped have no message any more: put their ids back. (In AWS the queue keeps them.)
 */
async function requeueInFlight(
  db: ReturnType<typeof createDatabase>,
  sqs: ReturnType<typeof localSqsClient>,
  queueUrls: Record<'high' | 'bulk', string>,
): Promise<number> {
  const rows = await db
    .selectFrom('notifications')
    .select(['id', 'priority', 'request_id'])
    .where('status', 'in', ['queued', 'sending'])
    .execute();
  if (rows.length === 0) return 0;
  const failed = await enqueueNotifications(
    { sqs, queueUrls },
    rows.map((r) => ({ id: r.id, priority: r.priority, requestId: r.request_id })),
  );
  return rows.length - failed.size;
}

const DEV_CLIENT_NAME = 'local-development';

/** A fresh key on every start (only hashes are stored, so an old one cannot be shown again). */
async function issueDevelopmentKey(db: ReturnType<typeof createDatabase>): Promise<CreatedKey> {
  const previous = await db
    .selectFrom('api_keys')
    .innerJoin('api_clients', 'api_clients.id', 'api_keys.client_id')
    .select('api_keys.prefix')
    .where('api_clients.name', '=', DEV_CLIENT_NAME)
    .where('api_keys.revoked_at', 'is', null)
    .execute();
  const now = new Date();
  for (const { prefix } of previous) await revokeApiKey(db, prefix, now);
  return createApiClient(db, {
    name: DEV_CLIENT_NAME,
    scopes: ['notifications:write', 'notifications:read', 'admin'],
  });
}
