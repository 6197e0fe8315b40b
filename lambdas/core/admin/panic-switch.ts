/**
 * Panic mode by hand: an operator opens or closes one sender's circuit with a reason. A circuit
 * opened by hand is held: the scheduler's probes report on it but do not close it. The change and
 * its audit entry share a transaction (panic-mode.ts); this picks the sender and keeps phone
 * numbers out of the reason.
 */
import type { Metrics } from '@aws-lambda-powertools/metrics';
import type { Kysely } from 'kysely';
import type { Database } from '#core/db/schema.ts';
import { closeCircuit, openCircuit, type PanicState } from '#core/delivery/panic-mode.ts';
import { maskPhonesIn } from '#core/platform/phone.ts';
import { readPanicStatus } from './admin-status.ts';

export type PanicSwitchOutcome =
  | { kind: 'switched'; changed: boolean; sender: PanicState }
  /** No sender named, none configured, and not exactly one known. */
  | { kind: 'no_sender' };

export async function switchPanicMode(
  db: Kysely<Database>,
  input: {
    enabled: boolean;
    reason: string;
    /** The sender named in the request, else the configured one, else the only one known. */
    senderId: string | undefined;
    configuredSenderId: string | undefined;
    actor: string;
    requestId: string;
    metrics?: Metrics;
  },
): Promise<PanicSwitchOutcome> {
  let senderId = input.senderId ?? input.configuredSenderId;
  if (!senderId) {
    const known = await readPanicStatus(db, undefined);
    if (known.senders.length !== 1) return { kind: 'no_sender' };
    senderId = known.senders[0]!.senderId;
  }
  const change = {
    senderId,
    actor: input.actor,
    // An operator may quote a customer's number in a reason; the audit log must not keep it.
    reason: maskPhonesIn(input.reason),
    requestId: input.requestId,
    // Opened by a person, closed by a person: the probes must not undo it a minute later.
    hold: true,
    ...(input.metrics ? { metrics: input.metrics } : {}),
  };
  const changed = input.enabled ? await openCircuit(db, change) : await closeCircuit(db, change);
  const panic = await readPanicStatus(db, senderId);
  const sender = panic.senders.find((s) => s.senderId === senderId)!;
  return { kind: 'switched', changed, sender };
}
