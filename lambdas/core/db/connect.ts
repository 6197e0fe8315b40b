/** Opens the Kysely connection pool, with IAM tokens when the functions reach RDS through the proxy. */
import { Signer } from '@aws-sdk/rds-signer';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import type { Database } from '#core/db/schema.ts';
import type { DatabaseConfig } from '#core/platform/config.ts';

export function createPool(config: DatabaseConfig): pg.Pool {
  const pool = openPool(config);
  // An idle connection that the server drops (failover, restart, proxy idle timeout) emits an
  // error on the pool; the pool discards that client and the next query opens a new one, so the
  // process must not die of it.
  pool.on('error', () => {});
  // A client checked out when the server goes away emits 'error' on itself, not the pool; the
  // query in flight is rejected anyway, and an unheard 'error' event would end the process.
  pool.on('connect', (client) => {
    client.on('error', () => {});
  });
  return pool;
}

function openPool(config: DatabaseConfig): pg.Pool {
  if (config.DATABASE_URL) {
    return new pg.Pool({ connectionString: config.DATABASE_URL, max: config.DB_POOL_MAX });
  }
  const signer = config.DB_IAM_AUTH
    ? new Signer({
        hostname: config.DB_HOST!,
        port: config.DB_PORT,
        username: config.DB_USER!,
        ...(config.AWS_REGION ? { region: config.AWS_REGION } : {}),
      })
    : undefined;
  return new pg.Pool({
    host: config.DB_HOST,
    port: config.DB_PORT,
    database: config.DB_NAME,
    user: config.DB_USER,
    // An IAM token lives 15 minutes; pg asks for the password on every new connection.
    ...(signer ? { password: () => signer.getAuthToken() } : {}),
    ssl: { rejectUnauthorized: true },
    max: config.DB_POOL_MAX,
    idleTimeoutMillis: 60_000,
  });
}

export function createDatabase(config: DatabaseConfig): Kysely<Database> {
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool: createPool(config) }) });
}
