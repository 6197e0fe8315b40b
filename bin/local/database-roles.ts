/**
 * Local sign-in for the functions' database roles. In AWS they sign in with IAM tokens; a local
 * PostgreSQL has no IAM, so the local stack and the tests give each role a throwaway password and
 * connect each handler with its own URL, to run every query under the grants it has in AWS.
 */
import { createHmac } from 'node:crypto';
import pg from 'pg';
import { type DatabaseFunction, FUNCTION_DATABASE_ROLES } from '#core/db/roles.ts';

export type FunctionDatabaseUrls = Record<DatabaseFunction, string>;

/**
 * Sets each role's password (the migrations must have run) and returns, per function, the URL of
 * `ownerUrl`'s database signed in as that function's role. The password is derived from the
 * owner's credentials and server, so test files and stacks that share a server set the same one and never lock each
 * other out; it is only as secret as the owner's URL it comes from.
 */
export async function functionDatabaseUrls(ownerUrl: string): Promise<FunctionDatabaseUrls> {
  const owner = new URL(ownerUrl);
  // The server and its owner's credentials, not the database: roles belong to the server.
  const seed = `${owner.username}:${owner.password}@${owner.host}`;
  const client = new pg.Client({ connectionString: ownerUrl });
  await client.connect();
  try {
    const urls: Partial<FunctionDatabaseUrls> = {};
    for (const [fn, role] of Object.entries(FUNCTION_DATABASE_ROLES) as [
      DatabaseFunction,
      string,
    ][]) {
      const password = createHmac('sha256', seed).update(role).digest('hex');
      // Hex only, so the literal needs no escaping; ALTER ROLE takes no bind parameters.
      await client.query(`ALTER ROLE ${client.escapeIdentifier(role)} PASSWORD '${password}'`);
      const url = new URL(owner);
      url.username = role;
      url.password = password;
      urls[fn] = url.toString();
    }
    return urls as FunctionDatabaseUrls;
  } finally {
    await client.end();
  }
}
