/**
 * Configuration from the environment, read once at cold start and validated with zod, so a missing
 * or malformed variable stops the function with its name instead of failing a request later.
 */
import * as z from 'zod';

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

function readEnv<T extends z.ZodType>(schema: T, env: NodeJS.ProcessEnv): z.infer<T> {
  const result = schema.safeParse(env);
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`invalid configuration: ${problems.join('; ')}`);
  }
  return result.data;
}

const flag = z
  .enum(['true', 'false', '1', '0'])
  .optional()
  .transform((v) => v === 'true' || v === '1');

/** Either DATABASE_URL (local, tests) or host/port/name/user with IAM auth through RDS Proxy. */
export const databaseConfigSchema = z
  .object({
    DATABASE_URL: z.string().url().optional(),
    DB_HOST: z.string().min(1).optional(),
    DB_PORT: z.coerce.number().int().positive().default(5432),
    DB_NAME: z.string().min(1).default('whatsapp_notif'),
    DB_USER: z.string().min(1).optional(),
    DB_IAM_AUTH: flag,
    DB_POOL_MAX: z.coerce.number().int().positive().default(2),
    AWS_REGION: z.string().optional(),
  })
  .refine((c) => c.DATABASE_URL || (c.DB_HOST && c.DB_USER), {
    message: 'set DATABASE_URL, or DB_HOST and DB_USER',
    path: ['DATABASE_URL'],
  });
export type DatabaseConfig = z.infer<typeof databaseConfigSchema>;

export function loadDatabaseConfig(env: NodeJS.ProcessEnv = process.env): DatabaseConfig {
  return readEnv(databaseConfigSchema, env);
}

export const queueConfigSchema = z.object({
  HIGH_QUEUE_URL: z.string().url(),
  BULK_QUEUE_URL: z.string().url(),
  /** The DLQs, for the depths in /v1/admin/status; the functions that never read them omit them. */
  HIGH_DLQ_URL: z.string().url().optional(),
  BULK_DLQ_URL: z.string().url().optional(),
  /** Only the local stack and tests set this: the SQS emulator's address. */
  SQS_ENDPOINT: z.string().url().optional(),
  AWS_REGION: z.string().default('us-east-1'),
});
export type QueueConfig = z.infer<typeof queueConfigSchema>;

export function loadQueueConfig(env: NodeJS.ProcessEnv = process.env): QueueConfig {
  return readEnv(queueConfigSchema, env);
}

export const serviceConfigSchema = z.object({
  STAGE: z.string().default('local'),
  SERVICE_VERSION: z.string().default('0.1.0'),
  SENTRY_DSN: z.string().optional(),
});
export type ServiceConfig = z.infer<typeof serviceConfigSchema>;

export function loadServiceConfig(env: NodeJS.ProcessEnv = process.env): ServiceConfig {
  return readEnv(serviceConfigSchema, env);
}

export const deliveryControlSchema = z.object({
  /** Consecutive upstream failures that open panic mode. */
  CIRCUIT_FAILURE_THRESHOLD: z.coerce.number().int().min(1).default(5),
  /** Probes per scheduler run while panic mode is on, and the time between them. */
  SCHEDULER_PROBES_PER_RUN: z.coerce.number().int().min(1).max(4).default(3),
  PANIC_PROBE_INTERVAL_SECONDS: z.coerce.number().int().min(1).default(15),
  /** How often the scheduler runs (EventBridge: every minute). */
  SCHEDULER_INTERVAL_SECONDS: z.coerce.number().int().min(1).default(60),
  /** How often the scheduler reads the whole template list into the registry (webhooks update it between). */
  TEMPLATE_REFRESH_SECONDS: z.coerce.number().int().min(60).default(900),
  BACKOFF_BASE_SECONDS: z.coerce.number().positive().default(5),
  BACKOFF_CAP_SECONDS: z.coerce.number().positive().max(43_200).default(300),
  /**
   * How long a `sending` claim whose worker is gone waits for Meta's status webhook to settle it,
   * beyond the worker's own lifetime, before the row is sent again (README, delivery guarantees).
   */
  CLAIM_GRACE_SECONDS: z.coerce.number().int().min(0).max(3_600).default(120),
});
export type DeliveryControlConfig = z.infer<typeof deliveryControlSchema>;

/** The default retention of a notification's personal data (number, text, metadata). */
export const DEFAULT_PII_RETENTION_DAYS = 90;
/** The default retention of the audit log. */
export const DEFAULT_AUDIT_RETENTION_DAYS = 365;

/** Per stage (lib/config.ts), passed to the scheduler, which applies them. */
export const retentionSchema = z.object({
  PII_RETENTION_DAYS: z.coerce.number().int().min(1).max(3_650).default(DEFAULT_PII_RETENTION_DAYS),
  AUDIT_RETENTION_DAYS: z.coerce
    .number()
    .int()
    .min(7)
    .max(3_650)
    .default(DEFAULT_AUDIT_RETENTION_DAYS),
});
export type RetentionConfig = z.infer<typeof retentionSchema>;

export function loadRetentionConfig(env: NodeJS.ProcessEnv = process.env): RetentionConfig {
  return readEnv(retentionSchema, env);
}

export function loadDeliveryControlConfig(
  env: NodeJS.ProcessEnv = process.env,
): DeliveryControlConfig {
  return readEnv(deliveryControlSchema, env);
}
