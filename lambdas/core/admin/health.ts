/**
 * Readiness: the database, the delivery queues and the WhatsApp circuit, each with its own status,
 * so a 503 names the part that is down; what of it an anonymous caller may see; and whether
 * templates are checked at acceptance (the registry filled), which is reported but never makes
 * the service unready.
 */
import type { SQSClient } from '@aws-sdk/client-sqs';
import { type Kysely, sql } from 'kysely';
import type { Database } from '#core/db/schema.ts';
import type { Priority } from '#core/model/notification-request.ts';
import { registryState } from '#core/notifications/template-registry.ts';
import { queueDepth } from '#core/platform/sqs.ts';

export interface HealthDeps {
  db: Kysely<Database>;
  sqs: SQSClient;
  queueUrls: Record<Priority, string>;
  now: () => Date;
  version: string;
  /** The sender whose circuit counts; every sender's when not given. */
  senderId?: string | undefined;
  /** The circuit of the WhatsApp senders; read from sender_state when not given. */
  circuit?: () => Promise<{ open: boolean; openSenders: string[] }>;
  /** The WABA whose template registry acceptance checks (WHATSAPP_WABA_ID). */
  wabaId?: string | undefined;
}

/**
 * Whether POST /v1/notifications checks templates: `on` (registry filled), `skipped` (never
 * filled: first start, or the Graph API could not be read; templates are accepted unchecked),
 * `off` (no WABA configured), `unknown` (the registry could not be read).
 */
export interface TemplateCheckReport {
  check: 'on' | 'skipped' | 'off' | 'unknown';
  reason?: string;
  templates?: number;
  refreshedAt?: string | null;
  lastError?: string | null;
}

type Check = { status: 'up' | 'down'; latencyMs: number; error?: string } & Record<string, unknown>;

export interface ReadinessReport {
  status: 'healthy' | 'degraded' | 'unhealthy';
  version: string;
  timestamp: string;
  checks: { database: Check; queue: Check; whatsapp: Check };
  templates: TemplateCheckReport;
}

const CHECK_TIMEOUT_MS = 2_000;

async function timed(
  run: () => Promise<Record<string, unknown>>,
  down: Record<string, unknown>,
): Promise<Check> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    const detail = await Promise.race([
      run(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('timed out')), CHECK_TIMEOUT_MS);
      }),
    ]);
    return { status: 'up', latencyMs: Math.round(performance.now() - started), ...detail };
  } catch (error) {
    return {
      status: 'down',
      latencyMs: Math.round(performance.now() - started),
      error: error instanceof Error ? error.name : 'error',
      ...down,
    };
  } finally {
    clearTimeout(timer);
  }
}

export async function checkReadiness(deps: HealthDeps): Promise<ReadinessReport> {
  const [database, queue, whatsapp] = await Promise.all([
    timed(
      async () => {
        await sql`select 1`.execute(deps.db);
        return { connected: true };
      },
      { connected: false },
    ),
    timed(
      async () => {
        const depths: Record<string, number> = {};
        for (const [priority, url] of Object.entries(deps.queueUrls)) {
          depths[priority] = (await queueDepth(deps.sqs, url)).visible;
        }
        return { reachable: true, depths };
      },
      { reachable: false },
    ),
    timed(
      async () => {
        const circuit = deps.circuit
          ? await deps.circuit()
          : await openCircuits(deps.db, deps.senderId);
        if (circuit.open) throw Object.assign(new Error('panic mode'), { name: 'PanicModeOpen' });
        return { circuit: 'closed' };
      },
      { circuit: 'open' },
    ),
  ]);
  const checks = { database, queue, whatsapp };
  const down = Object.values(checks).filter((c) => c.status === 'down').length;
  const status = down === 0 ? 'healthy' : down === 3 ? 'unhealthy' : 'degraded';
  // Read after the checks: with the database down it would only wait for the same failure.
  const templates: TemplateCheckReport =
    database.status === 'up'
      ? await templateCheck(deps)
      : { check: 'unknown', reason: 'the database is down' };
  return { status, version: deps.version, timestamp: deps.now().toISOString(), checks, templates };
}

/** Whether acceptance checks templates now, and how fresh the registry is. */
export async function templateCheck(
  deps: Pick<HealthDeps, 'db' | 'wabaId'>,
): Promise<TemplateCheckReport> {
  if (!deps.wabaId) {
    return { check: 'off', reason: 'no WHATSAPP_WABA_ID: templates are not checked' };
  }
  try {
    const state = await registryState(deps.db, deps.wabaId);
    const detail = {
      templates: state.templates,
      refreshedAt: state.refreshedAt?.toISOString() ?? null,
      lastError: state.lastError,
    };
    return state.filled
      ? { check: 'on', ...detail }
      : {
          check: 'skipped',
          reason:
            'the template registry has never been filled from the Graph API: templates are accepted without the check',
          ...detail,
        };
  } catch (error) {
    return { check: 'unknown', reason: error instanceof Error ? error.name : 'error' };
  }
}

async function openCircuits(
  db: Kysely<Database>,
  senderId: string | undefined,
): Promise<{ open: boolean; openSenders: string[] }> {
  let query = db.selectFrom('sender_state').select('sender_id').where('circuit', '=', 'open');
  if (senderId) query = query.where('sender_id', '=', senderId);
  const rows = await query.execute();
  return { open: rows.length > 0, openSenders: rows.map((r) => r.sender_id) };
}

/**
 * The HTTP status of a report: 503 only when the service itself cannot take notifications (its
 * database or its queues are down). An open circuit (panic mode) is a deliberate pause of sending
 * that the service handles by deferring rows; it reads `degraded` with a 200, so a monitor polling
 * this route during panic mode does not feed the API's 5xx alarm while the API is fine.
 */
export function readinessStatusCode(report: ReadinessReport): 200 | 503 {
  const { database, queue } = report.checks;
  return database.status === 'down' || queue.status === 'down' ? 503 : 200;
}

/** What anyone may know without a key: the overall status and when it was read, nothing else. */
export function readinessSummary(
  report: ReadinessReport,
): Pick<ReadinessReport, 'status' | 'timestamp'> {
  return { status: report.status, timestamp: report.timestamp };
}
