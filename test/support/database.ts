/** Database handles for tests, on the suite's embedded PostgreSQL. */
import type { Kysely } from 'kysely';
import { createDatabase } from '#core/db/connect.ts';
import type { Database } from '#core/db/schema.ts';

export function testDatabase(poolMax = 4): Kysely<Database> {
  const url = process.env.DATABASE_URL;
  if (!url)
    throw new Error('DATABASE_URL is not set: run the tests through vitest (global set-up)');
  return createDatabase({
    DATABASE_URL: url,
    DB_POOL_MAX: poolMax,
    DB_PORT: 5432,
    DB_NAME: '',
    DB_IAM_AUTH: false,
  });
}
