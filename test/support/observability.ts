/**
 * The one logger and metrics fake of the tests: Powertools instances that print nothing, and
 * recording ones for tests that assert on what was logged or counted.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';

export function silentLogger(serviceName = 'whatsapp-notif-test'): Logger {
  return new Logger({ serviceName, logLevel: 'SILENT' });
}

export function testMetrics(serviceName = 'test'): Metrics {
  return new Metrics({ namespace: 'WhatsAppNotifTest', serviceName });
}

export interface LogLine {
  level: 'debug' | 'info' | 'warn' | 'error';
  message: string;
  extra: unknown[];
}

/** A silent Powertools logger that keeps what it was asked to log, for tests that assert on logs. */
export function recordingLogger(): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const logger = silentLogger();
  for (const level of ['debug', 'info', 'warn', 'error'] as const) {
    (logger as unknown as Record<string, unknown>)[level] = (
      message: unknown,
      ...extra: unknown[]
    ) => {
      lines.push({ level, message: String(message), extra });
    };
  }
  return { logger, lines };
}

/** A Metrics whose addMetric calls are kept (name and value), for tests that assert on metrics. */
export function recordingMetrics(): {
  metrics: Metrics;
  values: { name: string; value: number }[];
} {
  const values: { name: string; value: number }[] = [];
  const metrics = testMetrics();
  metrics.addMetric = (name: string, _unit: unknown, value: number) => {
    values.push({ name, value });
    return metrics;
  };
  return { metrics, values };
}
