/**
 * The worker's dependencies put together in one place, from its configuration and its clients:
 * the Lambda handler, the local stack (through the handler) and the tests all build them here, so
 * a new collaborator of deliverBatch is wired once.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import type { Metrics } from '@aws-lambda-powertools/metrics';
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { Kysely } from 'kysely';
import type { Database } from '#core/db/schema.ts';
import { databaseGates } from '#core/delivery/database-gates.ts';
import type { DeliveryDeps } from '#core/delivery/deliver-batch.ts';
import type { DeliveryGates } from '#core/delivery/delivery-gates.ts';
import { cachedRollout, type Rollout } from '#core/delivery/rollout.ts';
import type { DeliveryControlConfig } from '#core/platform/config.ts';

/** The settings the worker reads from DeliveryControlConfig. */
export type WorkerSettings = Pick<
  DeliveryControlConfig,
  | 'CIRCUIT_FAILURE_THRESHOLD'
  | 'BACKOFF_BASE_SECONDS'
  | 'BACKOFF_CAP_SECONDS'
  | 'CLAIM_GRACE_SECONDS'
>;

export interface WorkerParts {
  db: Kysely<Database>;
  sqs: SQSClient;
  whatsapp: DeliveryDeps['whatsapp'];
  /** The sending phone number id. */
  senderId: string;
  settings: WorkerSettings;
  logger: Logger;
  metrics: Metrics;
  /** The rollout the gates apply; by default the table's row, cached for a few seconds. */
  rollout?: () => Promise<Rollout>;
  /** Gates other than the database's (tests that study something else pass openGates). */
  gates?: DeliveryGates;
  now?: () => Date;
  random?: () => number;
  /** The WABA whose template registry triage reads (WHATSAPP_WABA_ID); none: no template checks. */
  wabaId?: string;
}

export function createWorkerDeps(parts: WorkerParts): DeliveryDeps {
  const { db, senderId, settings, metrics } = parts;
  return {
    db,
    whatsapp: parts.whatsapp,
    senderId,
    sqs: parts.sqs,
    gates:
      parts.gates ??
      databaseGates({
        db,
        senderId,
        rollout: parts.rollout ?? cachedRollout(db),
        failureThreshold: settings.CIRCUIT_FAILURE_THRESHOLD,
        metrics,
      }),
    backoff: {
      baseSeconds: settings.BACKOFF_BASE_SECONDS,
      capSeconds: settings.BACKOFF_CAP_SECONDS,
    },
    now: parts.now ?? (() => new Date()),
    random: parts.random ?? Math.random,
    logger: parts.logger,
    metrics,
    claimGraceSeconds: settings.CLAIM_GRACE_SECONDS,
    ...(parts.wabaId ? { wabaId: parts.wabaId } : {}),
  };
}
