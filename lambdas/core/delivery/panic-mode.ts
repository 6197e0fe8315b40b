/**
 * Panic mode: the circuit of one sending phone number. It opens after consecutive upstream
 * failures, at once on an auth or account block, by hand, or on Meta's account restriction or ban;
 * while open, notifications are parked as `deferred`. Probes close it after three good answers in a
 * row, except a held circuit (opened by hand or by Meta's account event), which only a person
 * closes. Every change is audited and emits PanicModeActive.
 */
import type { Metrics } from '@aws-lambda-powertools/metrics';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { type Kysely, sql, type UpdateObject } from 'kysely';
import type { Database, SenderStateRow } from '#core/db/schema.ts';
import { inTransaction } from '#core/db/transaction.ts';
import { writeAudit } from '#core/notifications/audit.ts';
import { Metric } from '#core/platform/metric-names.ts';

export const GOOD_PROBES_TO_CLOSE = 3;
export const DEFAULT_FAILURE_THRESHOLD = 5;
/**
 * How many times one notification's send may answer auth or account_blocked and park itself (each
 * time opening the circuit) before it fails with that class instead. Without it, a message Meta
 * refuses for reasons a probe cannot see reopens the circuit after every close, for ever.
 */
export const MAX_CIRCUIT_OPENS_PER_NOTIFICATION = 3;

export interface PanicState {
  senderId: string;
  active: boolean;
  openedAt: string | null;
  openedBy: string | null;
  reason: string | null;
  consecutiveFailures: number;
  goodProbes: number;
  lastProbeAt: string | null;
  /** Opened by a person or by Meta's account event: probes report but never close it. */
  held: boolean;
}

export function toPanicState(row: SenderStateRow): PanicState {
  return {
    senderId: row.sender_id,
    active: row.circuit === 'open',
    openedAt: row.opened_at?.toISOString() ?? null,
    openedBy: row.opened_by,
    reason: row.open_reason,
    consecutiveFailures: row.consecutive_failures,
    goodProbes: row.good_probes,
    lastProbeAt: row.last_probe_at?.toISOString() ?? null,
    held: row.held,
  };
}

/** Makes sure the sender has its row, so every later statement can lock it. */
export async function ensureSender(db: Kysely<Database>, senderId: string): Promise<void> {
  await db
    .insertInto('sender_state')
    .values({ sender_id: senderId })
    .onConflict((oc) => oc.column('sender_id').doNothing())
    .execute();
}

export async function listPanicStates(db: Kysely<Database>): Promise<PanicState[]> {
  const rows = await db.selectFrom('sender_state').selectAll().orderBy('sender_id').execute();
  return rows.map(toPanicState);
}

export function emitPanicMetric(metrics: Metrics | undefined, active: boolean): void {
  metrics?.addMetric(Metric.PanicModeActive, MetricUnit.Count, active ? 1 : 0);
}

/** Who changes the circuit, and why (kept in the audit entry). */
export interface CircuitChange {
  senderId: string;
  actor: string;
  reason: string;
  requestId?: string;
  metrics?: Metrics;
  /** Keep it open until a person closes it (by hand, or Meta restricted the account). */
  hold?: boolean;
}

/**
 * Opens the circuit unless it already is; returns true when this call opened it. A hold also takes
 * over a circuit the system opened (it then stays open for a person to close). The change and its
 * audit entry are one transaction; the metric follows the commit.
 */
export async function openCircuit(db: Kysely<Database>, input: CircuitChange): Promise<boolean> {
  await ensureSender(db, input.senderId);
  return switchCircuit(db, input, 'open', {
    // Taking over an open circuit keeps the time it opened.
    opened_at: sql`case when circuit = 'open' then opened_at else now() end`,
    opened_by: input.actor,
    open_reason: input.reason.slice(0, 500),
    held: input.hold === true,
  });
}

/** Closes the circuit unless it already is closed; returns true when this call closed it (audited in the same transaction). */
export async function closeCircuit(db: Kysely<Database>, input: CircuitChange): Promise<boolean> {
  return switchCircuit(db, input, 'closed', { consecutive_failures: 0, held: false });
}

/**
 * The one way the circuit changes: a guarded UPDATE (only from the other state, so two callers
 * cannot both win), its audit entry in the same transaction, and the metric once committed.
 */
async function switchCircuit(
  db: Kysely<Database>,
  input: CircuitChange,
  to: 'open' | 'closed',
  set: UpdateObject<Database, 'sender_state'>,
): Promise<boolean> {
  const changed = await inTransaction(db, async (trx) => {
    const updated = await trx
      .updateTable('sender_state')
      .set({ ...set, circuit: to, good_probes: 0, updated_at: sql`now()` })
      .where('sender_id', '=', input.senderId)
      .where((eb) =>
        to === 'open' && input.hold
          ? eb.or([eb('circuit', '=', 'closed'), eb('held', '=', false)])
          : eb('circuit', '=', to === 'open' ? 'closed' : 'open'),
      )
      .executeTakeFirst();
    if (updated.numUpdatedRows === 0n) return false;
    await writeAudit(trx, {
      actor: input.actor,
      action: to === 'open' ? 'panic.enable' : 'panic.disable',
      outcome: 'ok',
      requestId: input.requestId ?? null,
      detail: {
        senderId: input.senderId,
        reason: input.reason,
        ...(to === 'open' && input.hold ? { held: true } : {}),
      },
    });
    return true;
  });
  if (changed) emitPanicMetric(input.metrics, to === 'open');
  return changed;
}

/**
 * Counts a batch's results toward the circuit: a success resets the run of failures; upstream
 * failures add to it and open the circuit at the threshold. Returns true when this opened it.
 */
export async function recordSendResults(
  db: Kysely<Database>,
  input: {
    senderId: string;
    successes: number;
    upstreamFailures: number;
    threshold: number;
    metrics?: Metrics;
  },
): Promise<boolean> {
  if (input.successes === 0 && input.upstreamFailures === 0) return false;
  // Atomic increment under the row lock: concurrent workers' failures add up instead of overwriting.
  const row = await db
    .updateTable('sender_state')
    .set((eb) => ({
      consecutive_failures:
        input.successes > 0
          ? input.upstreamFailures
          : eb('consecutive_failures', '+', input.upstreamFailures),
      updated_at: sql`now()`,
    }))
    .where('sender_id', '=', input.senderId)
    .returning(['consecutive_failures', 'circuit'])
    .executeTakeFirst();
  if (row && row.circuit === 'closed' && row.consecutive_failures >= input.threshold) {
    return openCircuit(db, {
      senderId: input.senderId,
      actor: 'system:worker',
      reason: `${row.consecutive_failures} consecutive upstream failures`,
      ...(input.metrics ? { metrics: input.metrics } : {}),
    });
  }
  return false;
}

/**
 * Records one probe; closes the circuit after GOOD_PROBES_TO_CLOSE good probes in a row, unless it
 * is held: then the probe is only recorded (and reported), and a person closes it.
 */
export async function recordProbe(
  db: Kysely<Database>,
  input: { senderId: string; ok: boolean; metrics?: Metrics },
): Promise<{ goodProbes: number; closed: boolean; held: boolean }> {
  const row = await db
    .updateTable('sender_state')
    .set((eb) => ({
      good_probes: input.ok ? eb('good_probes', '+', 1) : 0,
      last_probe_at: sql`now()`,
      updated_at: sql`now()`,
    }))
    .where('sender_id', '=', input.senderId)
    .where('circuit', '=', 'open')
    .returning(['good_probes', 'held'])
    .executeTakeFirst();
  if (!row) return { goodProbes: 0, closed: false, held: false };
  if (row.held) return { goodProbes: row.good_probes, closed: false, held: true };
  if (row.good_probes >= GOOD_PROBES_TO_CLOSE) {
    const closed = await closeCircuit(db, {
      senderId: input.senderId,
      actor: 'system:scheduler',
      reason: `${row.good_probes} good probes in a row`,
      ...(input.metrics ? { metrics: input.metrics } : {}),
    });
    return { goodProbes: row.good_probes, closed, held: false };
  }
  return { goodProbes: row.good_probes, closed: false, held: false };
}
