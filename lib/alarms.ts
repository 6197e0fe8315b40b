/**
 * One CloudWatch alarm per row of the thresholds table, wired to the SNS topic of its severity:
 * critical pages, warning notifies. Rates are metric math, so the alarm's number is the
 * percentage the runbook quotes.
 */
import { ArnFormat, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import type { Stage as ApiStage } from 'aws-cdk-lib/aws-apigateway';
import {
  Alarm,
  ComparisonOperator,
  type IMetric,
  MathExpression,
  Metric,
  TreatMissingData,
} from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import { AnyPrincipal, Effect, PolicyStatement, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Key } from 'aws-cdk-lib/aws-kms';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import type { DatabaseInstance } from 'aws-cdk-lib/aws-rds';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';
import { METRICS_NAMESPACE, Metric as ServiceMetric } from '#core/platform/metric-names.ts';
import type { CallbackDispatch } from './callbacks.ts';
import type { Severity, Stage, StageConfig } from './config.ts';
import { PROXY_MAX_CONNECTIONS_PERCENT } from './database.ts';
import { SERVICE_NAME } from './functions.ts';
import type { DeliveryQueues } from './queues.ts';
import {
  ALARM_THRESHOLDS,
  type AlarmSource,
  type AlarmThreshold,
  alarmDescription,
  alarmName,
  alarmNamePattern,
  type Comparison,
  type MissingData,
} from './thresholds.ts';

export interface MonitoredResources {
  queues: DeliveryQueues;
  apiStage: ApiStage;
  worker: IFunction;
  scheduler: IFunction;
  database: DatabaseInstance;
  callbacks: Pick<CallbackDispatch, 'queue' | 'deadLetterQueue'>;
}

export interface AlarmsProps {
  prefix: string;
  stage: Stage;
  config: StageConfig;
  resources: MonitoredResources;
  emails: Record<Severity, string[]>;
}

const COMPARISON: Record<Comparison, ComparisonOperator> = {
  '>': ComparisonOperator.GREATER_THAN_THRESHOLD,
  '>=': ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
  '<': ComparisonOperator.LESS_THAN_THRESHOLD,
};

const MISSING_DATA: Record<MissingData, TreatMissingData> = {
  notBreaching: TreatMissingData.NOT_BREACHING,
  breaching: TreatMissingData.BREACHING,
  ignore: TreatMissingData.IGNORE,
  missing: TreatMissingData.MISSING,
};

const GIB = 1024 ** 3;
const CLOUDWATCH = 'cloudwatch.amazonaws.com';

/** One of our own EMF metrics, with the `service` dimension Powertools adds to every metric. */
export function serviceMetric(
  metricName: string,
  statistic: string,
  period: Duration,
  extraDimensions: Record<string, string> = {},
): Metric {
  return new Metric({
    namespace: METRICS_NAMESPACE,
    metricName,
    dimensionsMap: { service: SERVICE_NAME, ...extraDimensions },
    statistic,
    period,
  });
}

/** The most server connections the RDS proxy opens: its maxConnectionsPercent of max_connections. */
export function proxyConnectionCeiling(config: StageConfig): number {
  return (config.maxConnections * PROXY_MAX_CONNECTIONS_PERCENT) / 100;
}

/** The CloudWatch metric (or metric math) an alarm row watches. */
export function metricFor(
  t: AlarmThreshold,
  resources: MonitoredResources,
  config: StageConfig,
): IMetric {
  const period = Duration.seconds(t.periodSeconds);
  const source: AlarmSource = t.source;
  switch (source.kind) {
    case 'queue': {
      const pair = resources.queues.byPriority[source.priority];
      const queue = source.deadLetter ? pair.deadLetterQueue : pair.queue;
      return queue.metric(source.metric, { statistic: 'Maximum', period });
    }
    case 'apiErrorRate': {
      const min = t.minimumSample?.count ?? 1;
      return new MathExpression({
        // A minute with too few requests counts as 0%: two requests and one 5xx is not an outage.
        expression: `IF(FILL(requests, 0) >= ${min}, 100 * FILL(errors, 0) / FILL(requests, 0), 0)`,
        usingMetrics: {
          errors: resources.apiStage.metricServerError({ statistic: 'Sum', period }),
          requests: resources.apiStage.metricCount({ statistic: 'Sum', period }),
        },
        label: '5xx % of requests',
        period,
      });
    }
    case 'apiLatency':
      return resources.apiStage.metricLatency({ statistic: source.statistic, period });
    case 'serviceMetric':
      return serviceMetric(source.metric, source.statistic, period);
    case 'deliveryFailureRate': {
      const min = t.minimumSample?.count ?? 1;
      const total = '(FILL(sent, 0) + FILL(failed, 0))';
      return new MathExpression({
        expression: `IF(${total} >= ${min}, 100 * FILL(failed, 0) / ${total}, 0)`,
        usingMetrics: {
          sent: serviceMetric(ServiceMetric.NotificationsSent, 'Sum', period),
          failed: serviceMetric(ServiceMetric.NotificationsFailed, 'Sum', period),
        },
        label: 'failed % of sent + failed',
        period,
      });
    }
    case 'whatsappApiErrorRate': {
      const min = t.minimumSample?.count ?? 1;
      return new MathExpression({
        // Too few sends in a period counts as 0%: one timeout out of three calls is not an outage.
        expression: `IF(FILL(attempts, 0) >= ${min}, 100 * FILL(errors, 0) / FILL(attempts, 0), 0)`,
        usingMetrics: {
          errors: serviceMetric(ServiceMetric.WhatsAppApiErrors, 'Sum', period),
          attempts: serviceMetric(ServiceMetric.WhatsAppSendAttempts, 'Sum', period),
        },
        label: 'API errors and retries % of send attempts',
        period,
      });
    }
    case 'callbackQueue': {
      const queue = source.deadLetter
        ? resources.callbacks.deadLetterQueue
        : resources.callbacks.queue;
      return queue.metric(source.metric, { statistic: 'Maximum', period });
    }
    case 'callbackFailureRate': {
      const min = t.minimumSample?.count ?? 1;
      return new MathExpression({
        // Too few posts in a period counts as 0%: one client's test endpoint is not an incident.
        expression: `IF(FILL(attempts, 0) >= ${min}, 100 * FILL(failures, 0) / FILL(attempts, 0), 0)`,
        usingMetrics: {
          failures: serviceMetric(ServiceMetric.CallbackFailures, 'Sum', period),
          attempts: serviceMetric(ServiceMetric.CallbackAttempts, 'Sum', period),
        },
        label: 'failed % of callback posts',
        period,
      });
    }
    case 'lambda': {
      const fn = source.fn === 'worker' ? resources.worker : resources.scheduler;
      return fn.metric(source.metric, { statistic: 'Sum', period });
    }
    case 'databaseCpu':
      return resources.database.metricCPUUtilization({ statistic: 'Average', period });
    case 'databaseFreeStorage':
      return new MathExpression({
        expression: `100 * storage / ${config.allocatedStorageGiB * GIB}`,
        usingMetrics: {
          storage: resources.database.metricFreeStorageSpace({ statistic: 'Minimum', period }),
        },
        label: 'free storage % of allocated',
        period,
      });
    case 'databaseConnections':
      return new MathExpression({
        expression: `100 * connections / ${proxyConnectionCeiling(config)}`,
        usingMetrics: {
          connections: resources.database.metricDatabaseConnections({
            statistic: 'Maximum',
            period,
          }),
        },
        label: 'connections % of what the proxy may open',
        period,
      });
  }
}

export class Alarms extends Construct {
  readonly topics: Record<Severity, Topic>;
  readonly byId: ReadonlyMap<string, Alarm>;

  constructor(scope: Construct, id: string, props: AlarmsProps) {
    super(scope, id);
    // CloudWatch can publish to an encrypted topic only with a customer managed key that lets it.
    const key = new Key(this, 'TopicKey', {
      description: `${props.prefix} alarm topics`,
      enableKeyRotation: true,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    key.grant(new ServicePrincipal(CLOUDWATCH), 'kms:Decrypt', 'kms:GenerateDataKey*');
    // Neither SNS nor CloudWatch needs a grant on this key; only an AWS service acting for a
    // resource may create one (Control Tower CT.KMS.PR.3).
    key.addToResourcePolicy(
      new PolicyStatement({
        effect: Effect.DENY,
        principals: [new AnyPrincipal()],
        actions: ['kms:CreateGrant'],
        resources: ['*'],
        conditions: {
          BoolIfExists: {
            'kms:GrantIsForAWSResource': 'false',
            'aws:PrincipalIsAWSService': 'false',
          },
        },
      }),
    );

    const stack = Stack.of(this);
    const stageAlarms = stack.formatArn({
      service: 'cloudwatch',
      resource: 'alarm',
      resourceName: alarmNamePattern(props.stage),
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });
    const topic = (severity: Severity, displayName: string) => {
      const t = new Topic(this, `${severity}Topic`, {
        topicName: `${props.prefix}-alarms-${severity}`,
        displayName,
        masterKey: key,
        // Writes a topic policy holding a Deny for plain-HTTP publishes. A topic policy replaces
        // SNS's default one, so without the Allow below nothing could publish at all.
        enforceSSL: true,
      });
      // CloudWatch publishes as its service principal, not as this account: allow it for this
      // account's alarms of this stage only, so no other account's alarm can use the topic.
      t.addToResourcePolicy(
        new PolicyStatement({
          sid: 'AllowThisStagesAlarmsToPublish',
          effect: Effect.ALLOW,
          principals: [new ServicePrincipal(CLOUDWATCH)],
          actions: ['sns:Publish'],
          resources: [t.topicArn],
          conditions: {
            StringEquals: { 'aws:SourceAccount': stack.account },
            ArnLike: { 'aws:SourceArn': stageAlarms },
          },
        }),
      );
      for (const email of props.emails[severity]) t.addSubscription(new EmailSubscription(email));
      return t;
    };
    this.topics = {
      critical: topic('critical', `whatsapp-notif ${props.stage} PAGE`),
      warning: topic('warning', `whatsapp-notif ${props.stage} warning`),
    };

    const byId = new Map<string, Alarm>();
    for (const t of ALARM_THRESHOLDS) {
      const alarm = new Alarm(this, t.id, {
        alarmName: alarmName(props.stage, t),
        alarmDescription: alarmDescription(t),
        metric: metricFor(t, props.resources, props.config),
        threshold: t.threshold,
        comparisonOperator: COMPARISON[t.comparison],
        evaluationPeriods: t.evaluationPeriods,
        datapointsToAlarm: t.datapointsToAlarm,
        treatMissingData: MISSING_DATA[t.treatMissingData],
      });
      const action = new SnsAction(this.topicFor(t.severity, props.config));
      alarm.addAlarmAction(action);
      // The all-clear goes where the alarm went, so whoever was told hears it is over.
      alarm.addOkAction(action);
      byId.set(t.id, alarm);
    }
    this.byId = byId;
  }

  /** Critical alarms page only where the stage says so (prod); elsewhere they notify. */
  topicFor(severity: Severity, config: StageConfig): Topic {
    return severity === 'critical' && config.criticalAlarmsPage
      ? this.topics.critical
      : this.topics.warning;
  }
}
