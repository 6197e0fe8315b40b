/**
 * Changing a client's limits after its first key (issue 16, `PUT /v1/admin/clients/{id}/limits`):
 * through one SECURITY DEFINER function that changes the limits and writes their `client.limits`
 * audit entry in the same statement.
 *
 * Why a function and not a column grant: the route runs as the api role, which serves every
 * request. A grant of UPDATE on the three limit columns would let that role lift any client's
 * limits with a plain UPDATE and no trace; the function is the role's only way to change them, and
 * it cannot change them without the audit row (the api role may insert audit entries but not
 * delete them). The api role still has no UPDATE on `rate_per_second`, `daily_quota` or
 * `max_priority` (test/integration/db/function-roles.test.ts checks it).
 *
 * `changes` holds only the limits to change: a key that is present sets its limit (JSON null
 * removes it), an absent key keeps the limit as it is. The column checks of 0012 still apply.
 * The answer is null for an unknown client, else `{clientId, name, from, to}`.
 */
import { type Kysely, sql } from 'kysely';

const SIGNATURE = 'set_client_limits(uuid, jsonb, text, text, text)';

// biome-ignore lint/suspicious/noExplicitAny: a migration must not depend on today's schema types
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create function set_client_limits(
      client_id uuid, changes jsonb, actor text, request_id text, source_ip text
    ) returns jsonb
    language plpgsql volatile security definer set search_path = public, pg_temp
    as $$
    declare
      cur api_clients%rowtype;
      unknown_key text;
      limits_from jsonb;
      limits_to jsonb;
    begin
      if jsonb_typeof(changes) is distinct from 'object' then
        raise exception 'changes must be a JSON object' using errcode = '22023';
      end if;
      select k into unknown_key from jsonb_object_keys(changes) k
        where k not in ('ratePerSecond', 'dailyQuota', 'maxPriority') limit 1;
      if unknown_key is not null then
        raise exception 'unknown limit %', unknown_key using errcode = '22023';
      end if;
      select * into cur from api_clients c where c.id = set_client_limits.client_id for update;
      if not found then
        return null;
      end if;
      limits_from := jsonb_build_object(
        'ratePerSecond', cur.rate_per_second,
        'dailyQuota', cur.daily_quota,
        'maxPriority', cur.max_priority);
      update api_clients c set
        rate_per_second = case when changes ? 'ratePerSecond'
          then (changes ->> 'ratePerSecond')::float8 else c.rate_per_second end,
        daily_quota = case when changes ? 'dailyQuota'
          then (changes ->> 'dailyQuota')::integer else c.daily_quota end,
        max_priority = case when changes ? 'maxPriority'
          then changes ->> 'maxPriority' else c.max_priority end
      where c.id = set_client_limits.client_id
      returning jsonb_build_object(
        'ratePerSecond', c.rate_per_second,
        'dailyQuota', c.daily_quota,
        'maxPriority', c.max_priority) into limits_to;
      insert into audit_log (actor, action, outcome, request_id, source_ip, detail)
      values (actor, 'client.limits', 'ok', request_id, source_ip,
        jsonb_build_object('clientId', cur.id, 'from', limits_from, 'to', limits_to));
      return jsonb_build_object('clientId', cur.id, 'name', cur.name, 'from', limits_from, 'to', limits_to);
    end $$`.execute(db);
  await sql`revoke all on function ${sql.raw(SIGNATURE)} from public`.execute(db);
  await sql`grant execute on function ${sql.raw(SIGNATURE)} to notif_api`.execute(db);
}

// biome-ignore lint/suspicious/noExplicitAny: see up()
export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop function ${sql.raw(SIGNATURE)}`.execute(db);
}
