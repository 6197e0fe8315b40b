/**
 * `test.extend` fixtures for the set-up the API and fuzz test files repeated: a database handle on
 * the suite's PostgreSQL, the API app on it, and a client with a key, each made once per file and
 * torn down after it; a test names in its arguments what it uses.
 */
import { test } from 'vitest';
import { apiEvent, createTestClient, type EventInput, testApiApp } from './api.ts';
import { testDatabase } from './database.ts';

/** A database handle of the file's own (closed after its last test). */
// biome-ignore lint/correctness/noEmptyPattern: vitest reads a fixture's dependencies from this pattern, and it must be one.
export const dbTest = test.extend('db', { scope: 'file' }, async ({}, { onCleanup }) => {
  const db = testDatabase();
  onCleanup(() => db.destroy());
  return db;
});

/**
 * The API app on that database and a client of the file's own (write and read scopes): `key` and
 * `clientId` are the client's, `asClient` sends an event with its key, `rowCount` counts its rows.
 */
export const apiTest = dbTest
  .extend('app', { scope: 'file' }, ({ db }) => testApiApp(db))
  .extend('client', { scope: 'file' }, ({ db }) => createTestClient(db))
  .extend('key', { scope: 'file' }, ({ client }) => client.key)
  .extend('clientId', { scope: 'file' }, ({ client }) => client.clientId)
  .extend(
    'asClient',
    { scope: 'file' },
    ({ app, key }) =>
      (input: EventInput) =>
        app(apiEvent({ ...input, headers: { 'X-API-Key': key, ...input.headers } })),
  )
  .extend(
    'rowCount',
    { scope: 'file' },
    ({ db, clientId }) =>
      async () =>
        Number(
          (
            await db
              .selectFrom('notifications')
              .select((eb) => eb.fn.countAll<string>().as('n'))
              .where('client_id', '=', clientId)
              .executeTakeFirstOrThrow()
          ).n,
        ),
  );
