import { Match } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { proxyConnectionCeiling } from '../../lib/alarms.ts';
import { STAGE_CONFIG, STAGES, type Stage } from '../../lib/config.ts';
import {
  ALARM_THRESHOLDS,
  type AlarmThreshold,
  alarmName,
  renderThreshold,
  runbookLink,
} from '../../lib/thresholds.ts';
import { evaluatePolicy, type PolicyEnvironment } from './policy-evaluator.ts';
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
    case 'whatsappApiErrorRate':
      return {
        Metrics: Match.arrayWith([
          expression(
            `>= ${t.minimumSample?.count}, 100 \\* FILL\\(errors, 0\\) / FILL\\(attempts, 0\\)`,
          ),
          stat(
            { MetricName: 'WhatsAppApiErrors', Namespace: 'WhatsAppNotif', Dimensions: service },
            'Sum',
          ),
          stat(
            { MetricName: 'WhatsAppSendAttempts', Namespace: 'WhatsAppNotif', Dimensions: service },
            'Sum',
          ),
        ]),
      };
    case 'callbackQueue': {
      const queue = s.deadLetter ? stack.callbacks.deadLetterQueue : stack.callbacks.queue;
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
    case 'callbackFailureRate':
      return {
        Metrics: Match.arrayWith([
          expression(
            `>= ${t.minimumSample?.count}, 100 \\* FILL\\(failures, 0\\) / FILL\\(attempts, 0\\)`,
          ),
          stat(
            { MetricName: 'CallbackFailures', Namespace: 'WhatsAppNotif', Dimensions: service },
            'Sum',
          ),
          stat(
            { MetricName: 'CallbackAttempts', Namespace: 'WhatsAppNotif', Dimensions: service },
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
          expression(`^100 \\* connections / ${proxyConnectionCeiling(config)}$`),
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

const ACCOUNT = '111122223333';
const REGION = 'eu-west-1';

/** The template's resources by logical id, and what a `Ref` to each returns in an evaluation. */
function policyEnvironment(resources: Record<string, Resource>): PolicyEnvironment {
  const refs = Object.fromEntries(
    Object.entries(resources).map(([id, r]) => [
      id,
      r.Type === 'AWS::SNS::Topic'
        ? `arn:aws:sns:${REGION}:${ACCOUNT}:${r.Properties.TopicName as string}`
        : id,
    ]),
  );
  return { account: ACCOUNT, region: REGION, partition: 'aws', refs };
}

describe.each(STAGES)('alarm topics of the %s stage', (stage) => {
  const { template } = builtStage(stage);
  const resources = template.toJSON().Resources as Record<string, Resource>;
  const env = policyEnvironment(resources);
  const ofType = (type: string) => Object.entries(resources).filter(([, r]) => r.Type === type);
  const alarms = ofType('AWS::CloudWatch::Alarm').map(([, r]) => r.Properties);
  const topicPolicies = ofType('AWS::SNS::TopicPolicy').map(([, r]) => r.Properties);
  const alarmArn = (name: string, account = ACCOUNT) =>
    `arn:aws:cloudwatch:${REGION}:${account}:alarm:${name}`;

  /** The one topic policy of a topic; SNS keeps one per topic and it replaces the default. */
  function policyOf(topicId: string): unknown {
    const policies = topicPolicies.filter((p) =>
      (p.Topics as { Ref: string }[]).some((t) => t.Ref === topicId),
    );
    expect(policies, `topic ${topicId} has one topic policy`).toHaveLength(1);
    return policies[0]!.PolicyDocument;
  }

  /** "May CloudWatch publish this alarm to this topic?", as SNS would answer it. */
  function publish(
    topicId: string,
    facts: { alarm: string; account?: string; tls?: boolean; sourceAccount?: string },
  ) {
    return evaluatePolicy(
      policyOf(topicId),
      {
        service: 'cloudwatch.amazonaws.com',
        action: 'sns:Publish',
        resource: env.refs[topicId]!,
        context: {
          'aws:SourceAccount': facts.sourceAccount ?? facts.account ?? ACCOUNT,
          'aws:SourceArn': alarmArn(facts.alarm, facts.account),
          'aws:SecureTransport': String(facts.tls ?? true),
        },
      },
      env,
    );
  }

  const actions = alarms.flatMap((a) =>
    [...(a.AlarmActions as { Ref: string }[]), ...(a.OKActions as { Ref: string }[])].map(
      (action) => [a.AlarmName as string, action.Ref] as const,
    ),
  );

  it('has alarm actions to check', () => {
    expect(actions.length).toBe(2 * ALARM_THRESHOLDS.length);
  });

  it.each(actions)('lets CloudWatch publish %s to its topic over TLS', (alarm, topicId) => {
    expect(publish(topicId, { alarm })).toBe('allow');
  });

  it.each(actions)('refuses a plain-HTTP publish of %s', (alarm, topicId) => {
    expect(publish(topicId, { alarm, tls: false })).toBe('explicit-deny');
  });

  it('refuses alarms of another account and of another stage', () => {
    const topicId = actions[0]![1];
    const alarm = alarmName(stage, { id: 'queue-backlog-high' });
    expect(publish(topicId, { alarm, account: '444455556666' })).toBe('implicit-deny');
    expect(publish(topicId, { alarm, sourceAccount: '444455556666' })).toBe('implicit-deny');
    const otherStage = STAGES.find((s) => s !== stage)!;
    expect(publish(topicId, { alarm: alarmName(otherStage, { id: 'queue-backlog-high' }) })).toBe(
      'implicit-deny',
    );
  });

  it('holds, in each topic policy, the Allow for CloudWatch with its conditions and the TLS Deny', () => {
    expect(topicPolicies).toHaveLength(2);
    for (const policy of topicPolicies) {
      expect(policy.PolicyDocument).toMatchObject({
        Statement: expect.arrayContaining([
          expect.objectContaining({
            Effect: 'Allow',
            Principal: { Service: 'cloudwatch.amazonaws.com' },
            Action: 'sns:Publish',
            Condition: {
              StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } },
              ArnLike: { 'aws:SourceArn': expect.anything() },
            },
          }),
          expect.objectContaining({
            Effect: 'Deny',
            Principal: '*',
            Action: 'sns:Publish',
            Condition: { Bool: { 'aws:SecureTransport': 'false' } },
          }),
        ]),
      });
    }
  });

  it('lets CloudWatch use the topic key to publish', () => {
    const keys = ofType('AWS::KMS::Key').filter(([, r]) =>
      String(r.Properties.Description).includes('alarm topics'),
    );
    expect(keys).toHaveLength(1);
    for (const action of ['kms:Decrypt', 'kms:GenerateDataKey']) {
      const decision = evaluatePolicy(
        keys[0]![1].Properties.KeyPolicy,
        { service: 'cloudwatch.amazonaws.com', action, resource: '*', context: {} },
        env,
      );
      expect(decision, action).toBe('allow');
    }
  });
});

describe('alarms for failures that were silent', () => {
  const { template, stack } = builtStage('prod');
  const topic = (severity: 'critical' | 'warning') => ({
    Ref: logicalId(stack, stack.alarms.topics[severity]),
  });
  const service = [{ Name: 'service', Value: 'whatsapp-notif' }];

  it('pages when the scheduler has not run for two 5-minute periods, missing data counting as stopped', () => {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      AlarmName: 'whatsapp-notif-prod-scheduler-stopped',
      Namespace: 'AWS/Lambda',
      MetricName: 'Invocations',
      Dimensions: [
        { Name: 'FunctionName', Value: { Ref: logicalId(stack, stack.functions.scheduler) } },
      ],
      Statistic: 'Sum',
      Period: 300,
      ComparisonOperator: 'LessThanThreshold',
      Threshold: 1,
      EvaluationPeriods: 2,
      TreatMissingData: 'breaching',
      AlarmActions: [topic('critical')],
    });
  });

  it.each([
    ['warning', 5, 3],
    ['critical', 10, 2],
  ] as const)(
    'alarms on WhatsApp API errors above %s %s%% of send attempts',
    (severity, threshold, periods) => {
      template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        AlarmName: `whatsapp-notif-prod-whatsapp-api-error-rate-${severity}`,
        Threshold: threshold,
        ComparisonOperator: 'GreaterThanThreshold',
        EvaluationPeriods: periods,
        TreatMissingData: 'notBreaching',
        AlarmActions: [topic(severity)],
        Metrics: Match.arrayWith([
          Match.objectLike({
            Expression: 'IF(FILL(attempts, 0) >= 20, 100 * FILL(errors, 0) / FILL(attempts, 0), 0)',
          }),
          Match.objectLike({
            Id: 'attempts',
            MetricStat: Match.objectLike({
              Metric: {
                Namespace: 'WhatsAppNotif',
                MetricName: 'WhatsAppSendAttempts',
                Dimensions: service,
              },
              Period: 300,
              Stat: 'Sum',
            }),
          }),
        ]),
      });
    },
  );

  it('notifies on template failures from the TemplateFailures metric', () => {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      AlarmName: 'whatsapp-notif-prod-template-failures',
      Namespace: 'WhatsAppNotif',
      MetricName: 'TemplateFailures',
      Dimensions: service,
      Statistic: 'Sum',
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      TreatMissingData: 'notBreaching',
      AlarmActions: [topic('warning')],
    });
  });

  it('notifies when the token has less than 7 days left, and stays quiet when nothing is published', () => {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      AlarmName: 'whatsapp-notif-prod-whatsapp-token-expiring',
      Namespace: 'WhatsAppNotif',
      MetricName: 'WhatsAppTokenDaysLeft',
      Dimensions: service,
      Statistic: 'Minimum',
      ComparisonOperator: 'LessThanThreshold',
      Threshold: 7,
      // Longer than the hour between checks, so one late check is not a gap.
      Period: 6 * 3600,
      TreatMissingData: 'notBreaching',
      AlarmActions: [topic('warning')],
    });
  });

  it('draws the thresholds of these alarms on the dashboard graphs they belong to', () => {
    const dashboards = Object.values(template.findResources('AWS::CloudWatch::Dashboard'));
    expect(dashboards).toHaveLength(1);
    const body = dashboards[0]!.Properties.DashboardBody as { 'Fn::Join': [string, unknown[]] };
    const text = body['Fn::Join'][1].filter((p): p is string => typeof p === 'string').join('');
    for (const label of [
      'scheduler-stopped (critical)',
      'whatsapp-api-error-rate-warning (warning)',
      'whatsapp-api-error-rate-critical (critical)',
      'template-failures (warning)',
      'whatsapp-token-expiring (warning)',
      'database-connections (warning)',
    ]) {
      expect(text).toContain(`"label":"${label}"`);
    }
    expect(text).toContain('WhatsAppApiErrorsByClass');
  });

  it.each(STAGES)('measures %s database connections against what the proxy may open', (stage) => {
    const built = builtStage(stage);
    const resources = Object.values(built.template.toJSON().Resources) as Resource[];
    const targetGroups = resources.filter((r) => r.Type === 'AWS::RDS::DBProxyTargetGroup');
    expect(targetGroups).toHaveLength(1);
    const pool = targetGroups[0]!.Properties.ConnectionPoolConfigurationInfo as {
      MaxConnectionsPercent: number;
    };
    const percent = pool.MaxConnectionsPercent;
    const parameters = resources.find((r) => r.Type === 'AWS::RDS::DBParameterGroup')!.Properties
      .Parameters as Record<string, string>;
    const ceiling = (Number(parameters.max_connections) * percent) / 100;
    expect(percent).toBeLessThan(100);
    built.template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      AlarmName: `whatsapp-notif-${stage}-database-connections`,
      Metrics: Match.arrayWith([
        Match.objectLike({ Expression: `100 * connections / ${ceiling}` }),
      ]),
    });
  });
});
