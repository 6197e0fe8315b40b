/**
 * Migration 0011_cancel_fallback on a database of its own: down() takes `cancelled` out of the
 * status check (a cancelled row ends as skipped) and drops what only it added, and up() applies
 * again over the fallback_required_at and fallback_reason columns that the client-event outbox
 * (0010) may have created first.
 */
import { sql } from 'kysely';
import pg from 'pg';
import { expect, it } from 'vitest';
import { createDatabase } from '#core/db/connect.ts';
import { migrateToLatest } from '#core/db/migrate.ts';
import * as cancelFallback from '#core/db/migrations/0011_cancel_fallback.ts';
import { createTestClient, uniqueRecipient } from '../../support/api.ts';

it('goes down (a cancelled row becomes skipped) and up again over the columns it may share with 0010', async () => {
  const admin = new pg.Client({ connectionString: process.env.TEST_PG_ADMIN_URL });
  await admin.connect();
  const name = `fallback_${crypto.randomUUID().replaceAll('-', '')}`;
  await admin.query(`CREATE DATABASE ${name}`);
  const url = new URL(process.env.DATABASE_URL!);
  url.pathname = `/${name}`;
  const fresh = createDatabase({
    DATABASE_URL: url.toString(),
    DB_POOL_MAX: 2,
    DB_PORT: 5432,
    DB_NAME: '',
    DB_IAM_AUTH: false,
  });
  try {
    await migrateToLatest(fresh);
    const { clientId } = await createTestClient(fresh);
    const columns = async () =>
      (
        await sql<{ column_name: string }>`
          select column_name from information_schema.columns
          where table_name = 'notifications' and column_name like 'fallback%'
          order by column_name`.execute(fresh)
      ).rows.map((r) => r.column_name);
    const { id } = await fresh
      .insertInto('notifications')
      .values({
        id: crypto.randomUUID(),
        client_id: clientId,
        request_id: 'migration-test',
        recipient: uniqueRecipient(),
        priority: 'high',
        message_type: 'text',
        message: JSON.stringify({ body: 'hi' }),
        status: 'cancelled',
      })
      .returning('id')
      .executeTakeFirstOrThrow();

    await cancelFallback.down(fresh);
    const afterDown = await columns();
    const status = await fresh
      .selectFrom('notifications')
      .select('status')
      .where('id', '=', id)
      .executeTakeFirstOrThrow();
    const refused = await sql`update notifications set status = 'cancelled' where id = ${id}`
      .execute(fresh)
      .then(
        () => 'allowed',
        (e: { code?: string }) => e.code,
      );
    await cancelFallback.up(fresh);

    expect(status.status).toBe('skipped');
    // 23514: check_violation.
    expect(refused).toBe('23514');
    expect(afterDown).toEqual(['fallback_reason', 'fallback_required_at']);
    expect(await columns()).toEqual([
      'fallback_after_seconds',
      'fallback_due_at',
      'fallback_reason',
      'fallback_required_at',
    ]);
  } finally {
    await fresh.destroy();
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
  }
});
