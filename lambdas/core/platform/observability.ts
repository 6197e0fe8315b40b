/**
 * The one Logger and the one Metrics instance of each function, configured once. Every log value
 * passes through the phone masking replacer, so a number that slips into a log line is masked.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { METRICS_NAMESPACE } from '#core/platform/metric-names.ts';
import { maskPhonesIn } from '#core/platform/phone.ts';

export const SERVICE_NAME = 'whatsapp-notif';

function maskingReplacer(_key: string, value: unknown): unknown {
  if (typeof value === 'string') return maskPhonesIn(value);
  if (typeof value === 'bigint') return value.toString();
  return value;
}

export const logger = new Logger({
  serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? SERVICE_NAME,
  jsonReplacerFn: maskingReplacer,
});

export const metrics = new Metrics({
  namespace: process.env.POWERTOOLS_METRICS_NAMESPACE ?? METRICS_NAMESPACE,
  serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? SERVICE_NAME,
  // An invocation that counted nothing (a health check) is normal, not worth a warning line.
  logger: {
    debug: (...args: unknown[]) => logger.debug(String(args[0])),
    info: (...args: unknown[]) => logger.debug(String(args[0])),
    warn: (...args: unknown[]) => logger.debug(String(args[0])),
    error: (...args: unknown[]) => logger.error(String(args[0])),
  },
});

/** What a secret reader is told when Secrets Manager failed and the last value was kept. */
export function warnStaleSecret(name: string, error: unknown): void {
  logger.warn('secret refresh failed; the last value is kept', {
    secret: name,
    error: error instanceof Error ? error.name : String(error),
  });
}
