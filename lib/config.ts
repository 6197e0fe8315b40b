/**
 * Everything that differs between the dev and prod stages, written once as a typed record, plus
 * the few values an operator passes with `-c key=value` at deploy time.
 */
import type { Node } from 'constructs';

export const STAGES = ['dev', 'prod'] as const;
export type Stage = (typeof STAGES)[number];

export type Severity = 'critical' | 'warning';

export interface StageConfig {
  /** RDS instance class as `family.size` (Graviton). Performance Insights needs medium or larger. */
  databaseInstanceType: string;
  multiAz: boolean;
  /** Deletion protection on the instance and RETAIN (prod) or SNAPSHOT (dev) when the stack goes. */
  deletionProtection: boolean;
  removalPolicy: 'retain' | 'snapshot';
  backupRetentionDays: number;
  /**
   * Fixed storage, no autoscaling: the free-storage alarm is a percentage of this number, so a
   * resize is a change here and a deploy, which moves the alarm with it.
   */
  allocatedStorageGiB: number;
  /** Set in the parameter group; the connections alarm is a percentage of it. */
  maxConnections: number;
  /** NAT gateways for the private subnets: one in dev (cost), one per AZ in prod (an AZ can fail). */
  natGateways: number;
  /**
   * The runbooks' "worker concurrency" knob: SQS event source maximum concurrency per queue.
   * Lambda accepts 2 to 1000.
   */
  workerMaxConcurrency: { high: number; bulk: number };
  /** REST API stage throttling, shared by every route. */
  apiThrottle: { rateLimit: number; burstLimit: number };
  /**
   * Whether critical alarms publish to the paging topic. In dev nobody is woken up: critical
   * alarms go to the warning topic instead.
   */
  criticalAlarmsPage: boolean;
  logLevel: 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';
  /**
   * Days a notification keeps the recipient's number, the text, template parameters and metadata;
   * after that the scheduler redacts them (statuses, timestamps, error class stay). Issue 16.
   */
  piiRetentionDays: number;
  /** Days the audit log is kept; the scheduler deletes older entries. */
  auditRetentionDays: number;
}

export const STAGE_CONFIG: Record<Stage, StageConfig> = {
  dev: {
    databaseInstanceType: 't4g.medium',
    multiAz: false,
    deletionProtection: false,
    removalPolicy: 'snapshot',
    backupRetentionDays: 1,
    allocatedStorageGiB: 20,
    maxConnections: 200,
    natGateways: 1,
    workerMaxConcurrency: { high: 2, bulk: 2 },
    apiThrottle: { rateLimit: 50, burstLimit: 100 },
    criticalAlarmsPage: false,
    logLevel: 'DEBUG',
    piiRetentionDays: 90,
    auditRetentionDays: 90,
  },
  prod: {
    databaseInstanceType: 'm7g.large',
    multiAz: true,
    deletionProtection: true,
    removalPolicy: 'retain',
    backupRetentionDays: 14,
    allocatedStorageGiB: 100,
    maxConnections: 500,
    natGateways: 2,
    workerMaxConcurrency: { high: 20, bulk: 10 },
    apiThrottle: { rateLimit: 500, burstLimit: 1000 },
    criticalAlarmsPage: true,
    logLevel: 'INFO',
    piiRetentionDays: 90,
    auditRetentionDays: 400,
  },
};

/** Values that belong to the deploying team rather than to the code, read from CDK context. */
export interface DeployContext {
  stage: Stage;
  /** Email addresses subscribed to each alarm topic (`-c criticalAlarmEmails=a@x,b@y`). */
  alarmEmails: Record<Severity, string[]>;
  whatsapp: {
    graphVersion: string;
    phoneNumberId: string | undefined;
    wabaId: string | undefined;
    /** Only for a Graph API stand-in; omitted, the code uses Meta's host. */
    apiUrl: string | undefined;
  };
  sentryDsn: string | undefined;
  /** Version of Sentry's Lambda layer added when sentryDsn is set (`-c sentryLayerVersion=N`). */
  sentryLayerVersion: number;
  serviceVersion: string;
  /**
   * The worker's CLAIM_GRACE_SECONDS (`-c claimGraceSeconds=900`), raised for a long webhook or
   * database incident (runbooks/database.md); omitted, the code's default of 120 s.
   */
  claimGraceSeconds?: string;
}

/**
 * The pinned version of Sentry's SentryNodeServerlessSDKv10 layer (lib/sentry-layer.ts). 19 is the
 * version Sentry's own aws-serverless README cites; Sentry numbers versions per Region, so check
 * the deploy Region has it (`aws lambda get-layer-version-by-arn --arn <arn>`) and override with
 * `-c sentryLayerVersion=N` where it differs.
 */
export const DEFAULT_SENTRY_LAYER_VERSION = 19;

function layerVersion(node: Node, key: string, fallback: number): number {
  const raw = contextString(node, key);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1) {
    throw new Error(`context ${key}: "${raw}" is not a layer version (a whole number from 1)`);
  }
  return value;
}

export const DEFAULT_GRAPH_VERSION = 'v25.0';

function contextString(node: Node, key: string): string | undefined {
  const value: unknown = node.tryGetContext(key);
  if (value === undefined || value === null || value === '') return undefined;
  return String(value);
}

function emailList(node: Node, key: string): string[] {
  const raw = contextString(node, key);
  if (!raw) return [];
  const emails = raw
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean);
  for (const email of emails) {
    if (!/^[^\s@]+@[^\s@]+$/.test(email)) {
      throw new Error(`context ${key}: "${email}" is not an email address`);
    }
  }
  return emails;
}

export function isStage(value: unknown): value is Stage {
  return typeof value === 'string' && (STAGES as readonly string[]).includes(value);
}

/** Reads the stage and the operator's values; an unknown stage stops the synth with its name. */
export function readDeployContext(node: Node, fallbackVersion: string): DeployContext {
  const stage = contextString(node, 'stage') ?? 'dev';
  if (!isStage(stage)) {
    throw new Error(`context stage: "${stage}" is not one of ${STAGES.join(', ')}`);
  }
  return {
    stage,
    alarmEmails: {
      critical: emailList(node, 'criticalAlarmEmails'),
      warning: emailList(node, 'warningAlarmEmails'),
    },
    whatsapp: {
      graphVersion: contextString(node, 'whatsappGraphVersion') ?? DEFAULT_GRAPH_VERSION,
      phoneNumberId: contextString(node, 'whatsappPhoneNumberId'),
      wabaId: contextString(node, 'whatsappWabaId'),
      apiUrl: contextString(node, 'whatsappApiUrl'),
    },
    sentryDsn: contextString(node, 'sentryDsn'),
    sentryLayerVersion: layerVersion(node, 'sentryLayerVersion', DEFAULT_SENTRY_LAYER_VERSION),
    serviceVersion: contextString(node, 'serviceVersion') ?? fallbackVersion,
    ...claimGrace(node),
  };
}

function claimGrace(node: Node): { claimGraceSeconds?: string } {
  const raw = contextString(node, 'claimGraceSeconds');
  if (raw === undefined) return {};
  if (!/^\d{1,4}$/.test(raw) || Number(raw) > 3600) {
    throw new Error(
      `context claimGraceSeconds: "${raw}" is not a whole number of seconds, 0 to 3600`,
    );
  }
  return { claimGraceSeconds: raw };
}

/** Prefix of every physical name, so two stages can never collide on a name that includes it. */
export function resourcePrefix(stage: Stage): string {
  return `whatsapp-notif-${stage}`;
}
