import { Match } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { STAGE_CONFIG, STAGES, type Stage } from '../../lib/config.ts';
import {
  ALARM_THRESHOLDS,
  type AlarmThreshold,
  alarmName,
  renderThreshold,
  runbookLink,
} from '../../lib/thresholds.ts';
import { builtStage, logicalId } from './stages.ts';

const COMPARISON = {
  '>': 'GreaterThanThreshold',
  '>=': 'GreaterThanOrEqualToThreshold',
  '<': 'LessThanThreshold',
} as const;

type Resource = { Type: string; Properties: Record<string, unknown> };

/** What the alarm's metric (or the metrics of its expression) must look like. */
function expectedMetric(stage: Stage, t: AlarmThreshold): Record<string, unknown> {
  const { stack } = builtStage(stage);
  const config = STAGE_CONFIG[stage];
  const period = t.periodSeconds;
  const service = [{ Name: 'service', Value: 'whatsapp-notif' }];
  const stat = (metric: Record<string, unknown>, statName: string) =>
    Match.objectLike({
      MetricStat: { Metric: Match.objectLike(metric), Period: period, Stat: statName },
    });
  const expression = (pattern: string) =>
    Match.objectLike({ Expression: Match.stringLikeRegexp(pattern), ReturnData: true });
  const s = t.source;
  switch (s.kind) {
    case 'queue': {
      const pair = stack.queues.byPriority[s.priority];
      const queue = s.deadLetter ? pair.deadLetterQueue : pair.queue;
      return {
        Namespace: 'AWS/SQS',
        MetricName: s.metric,
        Statistic: 'Maximum',
        Period: period,
        Dimensions: [
          { Name: 'QueueName', Value: { 'Fn::GetAtt': [logicalId(stack, queue), 'QueueName'] } },
        ],
      };
    }
    case 'apiLatency':
      return {
        Namespace: 'AWS/ApiGateway',
        MetricName: 'Latency',
        ExtendedStatistic: s.statistic,
        Period: period,
      };
    case 'apiErrorRate':
      return {
        Metrics: Match.arrayWith([
          expression(
            `>= ${t.minimumSample?.count}, 100 \\* FILL\\(errors, 0\\) / FILL\\(requests, 0\\)`,
          ),
          stat({ MetricName: '5XXError', Namespace: 'AWS/ApiGateway' }, 'Sum'),
          stat({ MetricName: 'Count', Namespace: 'AWS/ApiGateway' }, 'Sum'),
        ]),
      };
    case 'serviceMetric':
      return {
        Namespace: 'WhatsAppNotif',
        MetricName: s.metric,
        Statistic: s.statistic,
        Period: period,
        Dimensions: service,
      };
    case 'deliveryFailureRate':
      return {
        Metrics: Match.arrayWith([
          expression(`>= ${t.minimumSample?.count}, 100 \\* FILL\\(failed, 0\\) /`),
          stat(
            { MetricName: 'NotificationsSent', Namespace: 'WhatsAppNotif', Dimensions: service },
            'Sum',
          ),
          stat(
            { MetricName: 'NotificationsFailed', Namespace: 'WhatsAppNotif', Dimensions: service },
            'Sum',
          ),
        ]),
      };
    case 'lambda':
      return {
        Namespace: 'AWS/Lambda',
        MetricName: s.metric,
        Statistic: 'Sum',
        Period: period,
        Dimensions: [
          { Name: 'FunctionName', Value: { Ref: logicalId(stack, stack.functions[s.fn]) } },
        ],
      };
    case 'databaseCpu':
      return {
        Namespace: 'AWS/RDS',
        MetricName: 'CPUUtilization',
        Statistic: 'Average',
        Period: period,
        Dimensions: [
          {
            Name: 'DBInstanceIdentifier',
            Value: { Ref: logicalId(stack, stack.database.instance) },
          },
        ],
      };
    case 'databaseFreeStorage':
      return {
        Metrics: Match.arrayWith([
          expression(`^100 \\* storage / ${config.allocatedStorageGiB * 1024 ** 3}$`),
          stat({ MetricName: 'FreeStorageSpace', Namespace: 'AWS/RDS' }, 'Minimum'),
        ]),
      };
    case 'databaseConnections':
      return {
        Metrics: Match.arrayWith([
          expression(`^100 \\* connections / ${config.maxConnections}$`),
          stat({ MetricName: 'DatabaseConnections', Namespace: 'AWS/RDS' }, 'Maximum'),
        ]),
      };
  }
}

describe.each(STAGES)('alarms of the %s stage', (stage) => {
  const { stack, template } = builtStage(stage);
  const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm')) as Resource[];
  const byName = new Map(alarms.map((a) => [a.Properties.AlarmName as string, a]));

  it('has exactly one alarm per row of the thresholds table', () => {
    expect(alarms).toHaveLength(ALARM_THRESHOLDS.length);
    expect([...byName.keys()].sort()).toEqual(
      ALARM_THRESHOLDS.map((t) => alarmName(stage, t)).sort(),
    );
  });

  it.each(ALARM_THRESHOLDS.map((t) => [t.id, t] as const))('%s matches its row', (_id, t) => {
    const alarm = byName.get(`whatsapp-notif-${stage}-${t.id}`);
    expect(alarm).toBeDefined();
    const topic =
      t.severity === 'critical' && STAGE_CONFIG[stage].criticalAlarmsPage ? 'critical' : 'warning';
    const topicRef = { Ref: logicalId(stack, stack.alarms.topics[topic]) };
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      AlarmName: alarmName(stage, t),
      Threshold: t.threshold,
      ComparisonOperator: COMPARISON[t.comparison],
      EvaluationPeriods: t.evaluationPeriods,
      DatapointsToAlarm: t.datapointsToAlarm,
      TreatMissingData: t.treatMissingData,
      AlarmActions: [topicRef],
      OKActions: [topicRef],
      ...expectedMetric(stage, t),
    });
    const description = alarm!.Properties.AlarmDescription as string;
    expect(description).toContain(renderThreshold(t));
    expect(description).toContain(runbookLink(t));
    expect(description).toContain(t.sev);
  });
});

describe('alarm routing', () => {
  it('pages for critical alarms in prod only', () => {
    expect(STAGE_CONFIG.prod.criticalAlarmsPage).toBe(true);
    expect(STAGE_CONFIG.dev.criticalAlarmsPage).toBe(false);
    const { template, stack } = builtStage('dev');
    const critical = { Ref: logicalId(stack, stack.alarms.topics.critical) };
    for (const alarm of Object.values(template.findResources('AWS::CloudWatch::Alarm'))) {
      expect(alarm.Properties.AlarmActions).not.toContainEqual(critical);
    }
  });

  it('gives every critical alarm SEV-1 or SEV-2 and every warning SEV-3', () => {
    for (const t of ALARM_THRESHOLDS) {
      expect(t.severity === 'critical' ? ['SEV-1', 'SEV-2'] : ['SEV-3']).toContain(t.sev);
    }
  });

  it('encrypts the alarm topics with a key CloudWatch may use', () => {
    const { template } = builtStage('prod');
    template.hasResourceProperties('AWS::SNS::Topic', {
      TopicName: 'whatsapp-notif-prod-alarms-critical',
      KmsMasterKeyId: Match.anyValue(),
    });
    template.hasResourceProperties('AWS::KMS::Key', {
      EnableKeyRotation: true,
      KeyPolicy: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Principal: { Service: 'cloudwatch.amazonaws.com' },
            Action: ['kms:Decrypt', 'kms:GenerateDataKey*'],
          }),
        ]),
      },
    });
  });
});
