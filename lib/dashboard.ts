/**
 * The CloudWatch dashboard on-call opens first: alarm states, traffic, delivery outcomes by error
 * class, queues, latency, circuit state and database health, with the alarm thresholds drawn on
 * the graphs they apply to.
 */
import { Duration } from 'aws-cdk-lib';
import type { Alarm } from 'aws-cdk-lib/aws-cloudwatch';
import {
  AlarmStatusWidget,
  Color,
  Dashboard,
  GraphWidget,
  type HorizontalAnnotation,
  type IMetric,
  Metric,
  TextWidget,
} from 'aws-cdk-lib/aws-cloudwatch';
import { Construct } from 'constructs';
import { ERROR_CLASSES } from '#core/model/error-class.ts';
import { PRIORITIES } from '#core/notifications/queue-settings.ts';
import { Metric as ServiceMetric } from '#core/platform/metric-names.ts';
import { type MonitoredResources, metricFor, serviceMetric } from './alarms.ts';
import type { StageConfig } from './config.ts';
import type { NotifFunction } from './notif-function.ts';
import { ALARM_THRESHOLDS, thresholdById } from './thresholds.ts';

export interface OperationsDashboardProps {
  prefix: string;
  config: StageConfig;
  resources: MonitoredResources;
  functions: NotifFunction[];
  alarms: ReadonlyMap<string, Alarm>;
  proxyName: string;
}

const FIVE_MINUTES = Duration.minutes(5);
const ONE_MINUTE = Duration.minutes(1);
const WIDE = 12;
const HEIGHT = 6;

/** The thresholds of the given alarms as horizontal lines, red for critical, orange for warning. */
function thresholdLines(...ids: string[]): HorizontalAnnotation[] {
  return ids.map((id) => {
    const t = thresholdById(id);
    return {
      value: t.threshold,
      label: `${t.id} (${t.severity})`,
      color: t.severity === 'critical' ? Color.RED : Color.ORANGE,
    };
  });
}

export class OperationsDashboard extends Construct {
  readonly dashboard: Dashboard;

  constructor(scope: Construct, id: string, props: OperationsDashboardProps) {
    super(scope, id);
    const { resources, config } = props;
    const stage = resources.apiStage;
    const alarmMetric = (alarmId: string): IMetric =>
      metricFor(thresholdById(alarmId), resources, config);
    const graph = (
      title: string,
      left: IMetric[],
      options: { annotations?: HorizontalAnnotation[]; stacked?: boolean; width?: number } = {},
    ) =>
      new GraphWidget({
        title,
        left,
        leftAnnotations: options.annotations ?? [],
        stacked: options.stacked ?? false,
        width: options.width ?? WIDE,
        height: HEIGHT,
      });
    const heading = (markdown: string) => new TextWidget({ markdown, width: 24, height: 1 });

    this.dashboard = new Dashboard(this, 'Dashboard', {
      dashboardName: props.prefix,
      defaultInterval: Duration.hours(3),
    });

    this.dashboard.addWidgets(
      new AlarmStatusWidget({
        title: 'Alarms (runbooks/README.md)',
        alarms: ALARM_THRESHOLDS.map((t) => props.alarms.get(t.id)).filter(
          (a): a is Alarm => a !== undefined,
        ),
        width: 24,
        height: 4,
      }),
    );

    this.dashboard.addWidgets(heading('## Traffic'));
    this.dashboard.addWidgets(
      graph('API requests and errors (per minute)', [
        stage.metricCount({ statistic: 'Sum', period: ONE_MINUTE, label: 'requests' }),
        stage.metricClientError({ statistic: 'Sum', period: ONE_MINUTE, label: '4xx' }),
        stage.metricServerError({ statistic: 'Sum', period: ONE_MINUTE, label: '5xx' }),
      ]),
      graph(
        'Notifications accepted by priority',
        PRIORITIES.map((priority) =>
          serviceMetric(ServiceMetric.NotificationsAccepted, 'Sum', FIVE_MINUTES, {
            Priority: priority,
          }).with({ label: priority }),
        ),
        { stacked: true },
      ),
    );

    this.dashboard.addWidgets(heading('## Delivery outcomes'));
    const outcomes = [
      ServiceMetric.NotificationsSent,
      ServiceMetric.NotificationsDelivered,
      ServiceMetric.NotificationsRead,
      ServiceMetric.NotificationsFailed,
      ServiceMetric.DeliveryRetried,
      ServiceMetric.SkippedDuplicate,
      ServiceMetric.SkippedRateLimit,
      ServiceMetric.SkippedOptOut,
    ];
    this.dashboard.addWidgets(
      graph(
        'Outcomes (per 5 min)',
        outcomes.map((name) => serviceMetric(name, 'Sum', FIVE_MINUTES).with({ label: name })),
      ),
      graph('Failure rate (% of sent + failed)', [alarmMetric('delivery-failure-rate-warning')], {
        annotations: thresholdLines(
          'delivery-failure-rate-warning',
          'delivery-failure-rate-critical',
        ),
      }),
    );
    this.dashboard.addWidgets(
      graph(
        'Failures by error class (per 5 min)',
        ERROR_CLASSES.map((errorClass) =>
          serviceMetric(ServiceMetric.NotificationsFailedByClass, 'Sum', FIVE_MINUTES, {
            ErrorClass: errorClass,
          }).with({ label: errorClass }),
        ),
        { stacked: true },
      ),
      graph(
        'Template failures (per 5 min)',
        [
          serviceMetric(ServiceMetric.TemplateFailures, 'Sum', FIVE_MINUTES).with({
            label: ServiceMetric.TemplateFailures,
          }),
        ],
        { annotations: thresholdLines('template-failures') },
      ),
    );
    this.dashboard.addWidgets(
      graph(
        'Webhook: refused items, Meta events, foreign senders, unread fields (per 5 min)',
        [
          ServiceMetric.WebhookItemsRejected,
          ServiceMetric.WhatsAppEvents,
          ServiceMetric.WebhookForeignSender,
          ServiceMetric.WebhookUnknownFields,
        ].map((name) => serviceMetric(name, 'Sum', FIVE_MINUTES).with({ label: name })),
      ),
    );

    this.dashboard.addWidgets(heading('## Queues'));
    this.dashboard.addWidgets(
      graph(
        'Visible messages',
        PRIORITIES.map((p) =>
          resources.queues.byPriority[p].queue
            .metricApproximateNumberOfMessagesVisible({ statistic: 'Maximum', period: ONE_MINUTE })
            .with({ label: p }),
        ),
        { annotations: thresholdLines('queue-backlog-high'), width: 8 },
      ),
      graph(
        'Age of oldest message (s)',
        PRIORITIES.map((p) =>
          resources.queues.byPriority[p].queue
            .metricApproximateAgeOfOldestMessage({ statistic: 'Maximum', period: ONE_MINUTE })
            .with({ label: p }),
        ),
        { annotations: thresholdLines('oldest-message-age-high'), width: 8 },
      ),
      graph(
        'Dead-letter queues',
        PRIORITIES.map((p) =>
          resources.queues.byPriority[p].deadLetterQueue
            .metricApproximateNumberOfMessagesVisible({ statistic: 'Maximum', period: ONE_MINUTE })
            .with({ label: `${p} DLQ` }),
        ),
        { annotations: thresholdLines('dlq-not-empty-high'), width: 8 },
      ),
    );

    this.dashboard.addWidgets(heading('## Latency'));
    this.dashboard.addWidgets(
      graph(
        'API Gateway latency (ms)',
        ['p50', 'p95', 'p99'].map((statistic) =>
          stage.metricLatency({ statistic, period: ONE_MINUTE, label: statistic }),
        ),
        { annotations: thresholdLines('api-latency-p95-warning', 'api-latency-p95-critical') },
      ),
      graph(
        'Graph API send latency (ms)',
        ['p50', 'p95', 'p99'].map((statistic) =>
          serviceMetric(ServiceMetric.GraphApiLatency, statistic, ONE_MINUTE).with({
            label: statistic,
          }),
        ),
      ),
    );
    this.dashboard.addWidgets(
      graph('API 5xx rate (%)', [alarmMetric('api-5xx-rate-warning')], {
        annotations: thresholdLines('api-5xx-rate-warning', 'api-5xx-rate-critical'),
      }),
      graph(
        'Function duration p95 (ms)',
        props.functions.map((fn) =>
          fn.metricDuration({ statistic: 'p95', period: FIVE_MINUTES }).with({
            label: fn.node.id,
          }),
        ),
      ),
    );

    this.dashboard.addWidgets(heading('## Circuit and Meta'));
    this.dashboard.addWidgets(
      graph(
        'Panic mode (1 = circuit open)',
        [
          serviceMetric(ServiceMetric.PanicModeActive, 'Maximum', ONE_MINUTE).with({
            label: ServiceMetric.PanicModeActive,
          }),
        ],
        { annotations: thresholdLines('panic-mode-active'), width: 8 },
      ),
      graph(
        'Meta rate limiting (per minute)',
        [
          serviceMetric(ServiceMetric.WhatsAppRateLimited, 'Sum', ONE_MINUTE).with({
            label: ServiceMetric.WhatsAppRateLimited,
          }),
        ],
        { annotations: thresholdLines('whatsapp-rate-limited'), width: 8 },
      ),
      graph(
        'Meta auth failures (per minute)',
        [
          serviceMetric(ServiceMetric.WhatsAppAuthFailures, 'Sum', ONE_MINUTE).with({
            label: ServiceMetric.WhatsAppAuthFailures,
          }),
        ],
        { annotations: thresholdLines('whatsapp-auth-failing'), width: 8 },
      ),
    );
    this.dashboard.addWidgets(
      graph(
        'WhatsApp API errors and retries (% of send attempts)',
        [alarmMetric('whatsapp-api-error-rate-warning')],
        {
          annotations: thresholdLines(
            'whatsapp-api-error-rate-warning',
            'whatsapp-api-error-rate-critical',
          ),
          width: 8,
        },
      ),
      graph(
        'WhatsApp API errors by class (per 5 min)',
        ERROR_CLASSES.map((errorClass) =>
          serviceMetric(ServiceMetric.WhatsAppApiErrorsByClass, 'Sum', FIVE_MINUTES, {
            ErrorClass: errorClass,
          }).with({ label: errorClass }),
        ),
        { stacked: true, width: 8 },
      ),
      graph(
        'Access token days left (checked hourly; none if it never expires)',
        [alarmMetric('whatsapp-token-expiring')],
        { annotations: thresholdLines('whatsapp-token-expiring'), width: 8 },
      ),
    );

    this.dashboard.addWidgets(heading('## Functions'));
    this.dashboard.addWidgets(
      graph(
        'Errors (per minute)',
        props.functions.map((fn) =>
          fn.metricErrors({ statistic: 'Sum', period: ONE_MINUTE }).with({ label: fn.node.id }),
        ),
        { width: 6 },
      ),
      graph(
        'Throttles (per minute)',
        props.functions.map((fn) =>
          fn.metricThrottles({ statistic: 'Sum', period: ONE_MINUTE }).with({ label: fn.node.id }),
        ),
        { width: 6 },
      ),
      graph('Scheduler runs (invocations per 5 min)', [alarmMetric('scheduler-stopped')], {
        annotations: thresholdLines('scheduler-stopped'),
        width: 6,
      }),
      graph(
        'Worker concurrency',
        [
          new Metric({
            namespace: 'AWS/Lambda',
            metricName: 'ConcurrentExecutions',
            dimensionsMap: { FunctionName: resources.worker.functionName },
            statistic: 'Maximum',
            period: ONE_MINUTE,
            label: 'worker',
          }),
        ],
        { width: 6 },
      ),
    );

    this.dashboard.addWidgets(heading('## Database'));
    this.dashboard.addWidgets(
      graph('CPU (%)', [alarmMetric('database-cpu')], {
        annotations: thresholdLines('database-cpu'),
        width: 8,
      }),
      graph('Connections (% of what the proxy may open)', [alarmMetric('database-connections')], {
        annotations: thresholdLines('database-connections'),
        width: 8,
      }),
      graph('Free storage (% of allocated)', [alarmMetric('database-free-storage')], {
        annotations: thresholdLines('database-free-storage'),
        width: 8,
      }),
    );
    this.dashboard.addWidgets(
      graph('Read / write latency (s)', [
        resources.database.metric('ReadLatency', { statistic: 'Average', period: ONE_MINUTE }),
        resources.database.metric('WriteLatency', { statistic: 'Average', period: ONE_MINUTE }),
      ]),
      graph('RDS proxy client connections', [
        new Metric({
          namespace: 'AWS/RDS',
          metricName: 'ClientConnections',
          dimensionsMap: { ProxyName: props.proxyName },
          statistic: 'Maximum',
          period: ONE_MINUTE,
        }),
      ]),
    );
  }
}
