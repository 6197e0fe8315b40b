/**
 * One database role per function that reaches the database (api, webhook, worker, scheduler), each
 * with only the row privileges its code paths use, so the internet-facing api and webhook no
 * longer connect as the master user that owns the schema. The migrate function keeps the master
 * user: it is the only one that changes the schema.
 *
 * Frozen in time like every migration: the grants are the ones the code needed when this was
 * written; a later migration that adds a table or a code path grants what it needs itself. No
 * default privileges on purpose: a new table stays invisible to the functions until its migration
 * says who may do what with it, and the per-role tests (test/integration/db/function-roles.test.ts)
 * and the local stack, which connects each handler as its role, fail on a forgotten grant.
 */
import { type Kysely, sql } from 'kysely';

type Privilege = 'SELECT' | 'INSERT' | 'UPDATE' | 'DELETE';

/** Role → table → privileges, read from the queries each function's code runs. */
const GRANTS: Record<string, Record<string, Privilege[]>> = {
  // Accepts notifications, API keys and the admin routes (audit, status, rollout, panic mode).
  notif_api: {
    api_clients: ['SELECT', 'INSERT'],
    api_keys: ['SELECT', 'INSERT', 'UPDATE'],
    notifications: ['SELECT', 'INSERT', 'UPDATE'],
    // Written by the transition trigger, which runs with the privileges of whoever moved the row.
    notification_events: ['SELECT', 'INSERT'],
    audit_log: ['SELECT', 'INSERT'],
    sender_state: ['SELECT', 'INSERT', 'UPDATE'],
    rollout_settings: ['SELECT', 'UPDATE'],
    delivery_tallies: ['SELECT', 'INSERT', 'UPDATE'],
    scheduler_runs: ['SELECT'],
  },
  // Status updates (and the ones that arrive before their send), inbound opt-outs and opt-ins.
  notif_webhook: {
    notifications: ['SELECT', 'UPDATE'],
    notification_events: ['INSERT'],
    pending_statuses: ['SELECT', 'INSERT', 'DELETE'],
    opt_outs: ['SELECT', 'INSERT', 'DELETE'],
    audit_log: ['INSERT'],
  },
  // Claims and sends; rate limits, recipient pacing, circuit breaker, tallies.
  notif_worker: {
    notifications: ['SELECT', 'UPDATE'],
    notification_events: ['INSERT'],
    pending_statuses: ['SELECT', 'INSERT', 'DELETE'],
    opt_outs: ['SELECT', 'INSERT'],
    sender_state: ['SELECT', 'INSERT', 'UPDATE'],
    recipient_pacing: ['SELECT', 'INSERT', 'UPDATE', 'DELETE'],
    rollout_settings: ['SELECT'],
    delivery_tallies: ['SELECT', 'INSERT', 'UPDATE'],
    audit_log: ['INSERT'],
  },
  // Due scheduled rows, the outbox sweep, stale pending statuses, panic-mode probes and drain.
  notif_scheduler: {
    notifications: ['SELECT', 'UPDATE'],
    notification_events: ['INSERT'],
    pending_statuses: ['SELECT', 'INSERT', 'DELETE'],
    opt_outs: ['SELECT', 'INSERT'],
    sender_state: ['SELECT', 'INSERT', 'UPDATE'],
    scheduler_runs: ['SELECT', 'INSERT', 'UPDATE'],
    rollout_settings: ['SELECT'],
    audit_log: ['INSERT'],
  },
};

/** Identity columns whose sequences an INSERT advances. */
const IDENTITY_COLUMNS: [table: string, column: string][] = [
  ['notification_events', 'id'],
  ['audit_log', 'id'],
];

const ident = (name: string) => sql.id(name);

// biome-ignore lint/suspicious/noExplicitAny: a migration must not depend on today's schema types
export async function up(db: Kysely<any>): Promise<void> {
  for (const [role, tables] of Object.entries(GRANTS)) {
    // Roles belong to the server, not the database: another database on the same server (a test
    // run, a restored copy) may have created it already.
    await sql`
      do $$ begin
        if not exists (select 1 from pg_roles where rolname = ${sql.lit(role)}) then
          create role ${ident(role)} login;
        end if;
      end $$`.execute(db);
    // LOGIN without a password: on RDS the role signs in with IAM tokens only (rds_iam), which
    // exists only there; the embedded PostgreSQL of the tests and the local stack has no such role.
    await sql`
      do $$ begin
        if exists (select 1 from pg_roles where rolname = 'rds_iam') then
          grant rds_iam to ${ident(role)};
        end if;
      end $$`.execute(db);
    await sql`grant connect on database ${ident(await currentDatabase(db))} to ${ident(role)}`.execute(
      db,
    );
    await sql`grant usage on schema public to ${ident(role)}`.execute(db);
    for (const [table, privileges] of Object.entries(tables)) {
      await sql`grant ${sql.raw(privileges.join(', '))} on table ${ident(table)} to ${ident(role)}`.execute(
        db,
      );
      if (privileges.includes('INSERT')) {
        for (const [identityTable, column] of IDENTITY_COLUMNS) {
          if (identityTable !== table) continue;
          await sql`
            do $$ begin
              execute format('grant usage on sequence %s to %I',
                pg_get_serial_sequence(${sql.lit(table)}, ${sql.lit(column)}), ${sql.lit(role)});
            end $$`.execute(db);
        }
      }
    }
  }
}

// biome-ignore lint/suspicious/noExplicitAny: see up()
export async function down(db: Kysely<any>): Promise<void> {
  const database = await currentDatabase(db);
  for (const role of Object.keys(GRANTS)) {
    await sql`revoke all on all tables in schema public from ${ident(role)}`.execute(db);
    await sql`revoke all on all sequences in schema public from ${ident(role)}`.execute(db);
    await sql`revoke usage on schema public from ${ident(role)}`.execute(db);
    await sql`revoke connect on database ${ident(database)} from ${ident(role)}`.execute(db);
    // Another database on the same server may still grant the role something; it then stays.
    await sql`
      do $$ begin
        drop role if exists ${ident(role)};
      exception when dependent_objects_still_exist then
        raise notice 'role % is still used by another database; kept', ${sql.lit(role)};
      end $$`.execute(db);
  }
}

// biome-ignore lint/suspicious/noExplicitAny: see up()
async function currentDatabase(db: Kysely<any>): Promise<string> {
  const { rows } = await sql<{ name: string }>`select current_database() as name`.execute(db);
  return rows[0]!.name;
}
