/** `announce`, where the pipeline's verdicts reach the logs and metrics: names, fields and dimensions. */
import type { Metrics } from '@aws-lambda-powertools/metrics';
import { describe, expect, it } from 'vitest';
import { announce } from '#core/delivery/pipeline/verdict.ts';
import { Metric } from '#core/platform/metric-names.ts';
import { recordingLogger, recordingMetrics } from '../../support/delivery-control.ts';
import { queueRecord } from './pipeline-fixtures.ts';

/** The recording Metrics, with the single metrics (those with an ErrorClass dimension) kept too. */
function metricsWithSingles() {
  const { metrics, values } = recordingMetrics();
  const singles: { dimension: string; name: string; value: number }[] = [];
  metrics.singleMetric = () => {
    let dimension = '';
    const single = {
      addDimension: (_name: string, value: string) => {
        dimension = value;
      },
      addMetric: (name: string, _unit: unknown, value: number) => {
        singles.push({ dimension, name, value });
      },
    };
    return single as unknown as Metrics;
  };
  return { metrics, values, singles };
}

describe('announce', () => {
  it('writes each verdict’s metrics, plain or by error class, then its line at its level', () => {
    // prepare
    const { logger, lines } = recordingLogger();
    const { metrics, values, singles } = metricsWithSingles();
    const record = queueRecord();

    // act
    announce({ logger, metrics }, [
      { record, outcome: 'skipped' },
      {
        record,
        outcome: 'failed',
        metrics: [
          { name: Metric.GraphApiLatency, unit: 'Milliseconds', value: 87 },
          {
            name: Metric.NotificationsFailedByClass,
            unit: 'Count',
            value: 1,
            errorClass: 'template',
          },
        ],
        log: { level: 'warn', message: 'send failed permanently', fields: { errorCode: 132001 } },
      },
    ]);

    // assess
    expect(values).toEqual([{ name: Metric.GraphApiLatency, value: 87 }]);
    expect(singles).toEqual([
      { dimension: 'template', name: Metric.NotificationsFailedByClass, value: 1 },
    ]);
    expect(lines).toEqual([
      { level: 'warn', message: 'send failed permanently', extra: [{ errorCode: 132001 }] },
    ]);
  });

  it('adds the client id of the verdict’s row to its line, so logs answer "which client?"', () => {
    const { logger, lines } = recordingLogger();
    const { metrics } = metricsWithSingles();
    const known = queueRecord();
    const unknown = { ...queueRecord(), body: 'not-a-row' };
    const log = { level: 'info' as const, message: 'sent', fields: { notificationId: 'n' } };

    announce(
      { logger, metrics },
      [
        { record: known, outcome: 'sent', log },
        { record: unknown, outcome: 'missing', log },
      ],
      new Map([[known.body, { client_id: 'client-7' }]]),
    );

    expect(lines.map((l) => l.extra)).toEqual([
      [{ notificationId: 'n', clientId: 'client-7' }],
      [{ notificationId: 'n' }],
    ]);
  });
});
