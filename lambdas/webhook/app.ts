/**
 * The Meta webhook: the GET subscription check, and signed POSTs carrying delivery statuses,
 * inbound messages (STOP / START keywords, changed numbers), marketing preferences and template,
 * number and account events. The signature is checked over the raw bytes first; a bad one is
 * audited and nothing else is written. A body is applied item by item: what cannot be read is kept
 * aside and the rest applied, and the 200 comes only once everything is stored (a database failure
 * is a 500, which Meta redelivers).
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import type { Kysely } from 'kysely';
import type { Database } from '#core/db/schema.ts';
import { addClassMetric } from '#core/delivery/deliver-batch.ts';
import { applyHealthReading, readNumberEvent } from '#core/delivery/number-health.ts';
import { applyStatusUpdates } from '#core/notifications/apply-status-update.ts';
import { applyConsentEvents } from '#core/notifications/consent-events.ts';
import { DenialLedger, recordDenial } from '#core/notifications/denials.ts';
import { applyTemplateEvents } from '#core/notifications/template-registry.ts';
import { errorResponse, HttpError, header, jsonResponse, rawBody } from '#core/platform/http.ts';
import { pickRequestId } from '#core/platform/ids.ts';
import { Metric } from '#core/platform/metric-names.ts';
import { maskPhonesIn } from '#core/platform/phone.ts';
import { currentSecret, type SecretValue } from '#core/platform/secrets.ts';
import { classifyGraphError } from '#core/whatsapp/classify-graph-error.ts';
import {
  isKnownEvent,
  type ParsedItems,
  parseWebhookPayload,
} from '#core/whatsapp/webhook-payload.ts';
import { storeWebhookRejects, storeWhatsAppEvents } from '#core/whatsapp/webhook-records.ts';
import { verifyTokenMatches, verifyWebhookSignature } from '#core/whatsapp/webhook-signature.ts';

export interface WebhookDeps {
  db: Kysely<Database>;
  /** Fixed values in tests; readers of the current secrets in Lambda (see secrets.ts). */
  appSecret: SecretValue;
  verifyToken: SecretValue;
  logger: Logger;
  metrics: Metrics;
  /**
   * Our sender phone number ids (WHATSAPP_PHONE_NUMBER_ID): a `messages` change for another is
   * acknowledged and ignored. Absent: every sender is read (tests of other numbers, local runs).
   */
  phoneNumberIds?: readonly string[];
  /** Bad signatures counted since the last sampled audit entry; one per environment if absent. */
  denials?: DenialLedger;
  now?: () => Date;
}

/** The denial tally of this execution environment, for deps that bring none (the handler's). */
const fallbackLedger = new DenialLedger();

/** Field names and event types already logged by this process: each is logged once. */
const loggedOnce = new Set<string>();

export function createWebhookApp(deps: WebhookDeps) {
  return async (event: APIGatewayProxyEvent): Promise<APIGatewayProxyResult> => {
    const requestId = pickRequestId(header(event, 'x-request-id'), event.requestContext.requestId);
    try {
      if (event.httpMethod === 'GET') return await verifySubscription(event, deps);
      if (event.httpMethod !== 'POST') {
        throw new HttpError(
          405,
          'method_not_allowed',
          `${event.httpMethod} is not allowed on this path`,
        );
      }
      return await receiveNotifications(event, deps, requestId);
    } catch (error) {
      if (error instanceof HttpError) return errorResponse(error, requestId);
      deps.logger.error('webhook failed; Meta will retry', {
        requestId,
        error: error instanceof Error ? error : String(error),
      });
      return errorResponse(
        new HttpError(500, 'internal_error', 'could not process the webhook'),
        requestId,
      );
    }
  };
}

async function verifySubscription(
  event: APIGatewayProxyEvent,
  deps: WebhookDeps,
): Promise<APIGatewayProxyResult> {
  const query = event.queryStringParameters ?? {};
  const token = query['hub.verify_token'] ?? '';
  const expected = await currentSecret(deps.verifyToken);
  const matches = verifyTokenMatches(token, expected) && query['hub.mode'] === 'subscribe';
  if (!matches || !query['hub.challenge']) {
    deps.logger.warn('webhook verification refused');
    return { statusCode: 403, headers: { 'content-type': 'text/plain' }, body: 'forbidden' };
  }
  return {
    statusCode: 200,
    headers: { 'content-type': 'text/plain' },
    body: query['hub.challenge'],
  };
}

async function receiveNotifications(
  event: APIGatewayProxyEvent,
  deps: WebhookDeps,
  requestId: string,
): Promise<APIGatewayProxyResult> {
  const body = rawBody(event);
  const signature = header(event, 'x-hub-signature-256');
  let signed = verifyWebhookSignature(body, signature, await currentSecret(deps.appSecret));
  if (!signed && signature && typeof deps.appSecret === 'function') {
    // Meta signs with a reset app secret at once, while the cache may still hold the old one:
    // read it again (the reader limits how often a run of bad signatures reaches AWS).
    signed = verifyWebhookSignature(body, signature, await deps.appSecret({ refresh: true }));
  }
  if (!signed) {
    // Counted, with a sampled audit entry, not a row each: an unsigned flood must not write the log.
    await recordDenial(
      { ...deps, now: deps.now ?? (() => new Date()), ledger: deps.denials ?? fallbackLedger },
      {
        action: 'webhook.signature_rejected',
        reason: signature ? 'mismatch' : 'missing',
        gatewayRequestId: event.requestContext.requestId ?? null,
        sourceIp: event.requestContext.identity?.sourceIp ?? null,
        method: event.httpMethod,
        path: event.path ?? '',
      },
    );
    deps.logger.warn('webhook signature rejected', {
      requestId,
      reason: signature ? 'mismatch' : 'missing',
    });
    throw new HttpError(
      401,
      'invalid_signature',
      'X-Hub-Signature-256 is missing or does not match',
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch {
    throw new HttpError(400, 'invalid_json', 'the body is not valid JSON');
  }
  const parsed = parseWebhookPayload(
    json,
    deps.phoneNumberIds ? { phoneNumberIds: deps.phoneNumberIds } : {},
  );
  if (!parsed.ok) {
    // Signed by Meta but not an envelope we read: kept for the operator and acknowledged, or
    // Meta retries for days.
    await storeWebhookRejects(deps.db, [
      { field: 'body', kind: 'body', reason: parsed.error, raw: json },
    ]);
    deps.metrics.addMetric(Metric.WebhookItemsRejected, MetricUnit.Count, 1);
    deps.logger.warn('webhook payload refused; kept in webhook_rejects', {
      requestId,
      reason: parsed.error,
    });
    return jsonResponse(200, {
      received: true,
      statuses: 0,
      messages: 0,
      preferences: 0,
      events: 0,
      rejected: 1,
    });
  }
  await recordAside(deps, parsed, requestId);
  await applyNumberEvents(deps, parsed, requestId);
  await applyTemplateChanges(deps, parsed, requestId);

  const outcomes = await applyStatusUpdates(
    deps.db,
    parsed.statuses.map((status) => ({
      wamid: status.wamid,
      status: status.status,
      timestamp: status.timestamp,
      errorCode: status.errors[0]?.code,
      errorTitle: status.errors[0]?.title ?? status.errors[0]?.message,
      callbackData: status.callbackData,
      phoneNumberId: status.phoneNumberId,
    })),
  );
  let applied = 0;
  for (const [index, status] of parsed.statuses.entries()) {
    const outcome = outcomes[index]!;
    const firstError = status.errors[0];
    if (outcome.kind === 'applied') {
      applied += 1;
      countStatus(deps.metrics, status.status, firstError?.code);
      if (outcome.recovered) {
        deps.metrics.addMetric(Metric.SendsRecoveredFromWebhook, MetricUnit.Count, 1);
      }
    }
    deps.logger.info('status received', {
      requestId,
      wamid: status.wamid,
      status: status.status,
      outcome: outcome.kind,
      ...(outcome.kind === 'applied'
        ? { notificationId: outcome.notificationId, clientId: outcome.clientId }
        : {}),
      // A send whose worker died before recording it, settled from Meta's report: not sent again.
      ...(outcome.kind === 'applied' && outcome.recovered ? { recovered: true } : {}),
      ...(firstError ? { errorCode: firstError.code } : {}),
    });
  }
  const consent = await applyConsentEvents(deps.db, parsed);
  for (const entry of consent.log) {
    deps.logger.info('consent event', { requestId, ...entry });
  }
  if (consent.tally.replayed > 0) {
    deps.metrics.addMetric(Metric.ConsentReplaysIgnored, MetricUnit.Count, consent.tally.replayed);
  }
  return jsonResponse(200, {
    received: true,
    statuses: applied,
    messages: parsed.inbound.length,
    preferences: parsed.preferences.length,
    events: parsed.events.length,
    rejected: parsed.rejects.length,
  });
}

/**
 * Brings the template registry up to date with the template webhooks in the body (status,
 * quality, category). A move to PAUSED, DISABLED or REJECTED counts for the template alarm.
 */
async function applyTemplateChanges(deps: WebhookDeps, parsed: ParsedItems, requestId: string) {
  const outcomes = await applyTemplateEvents(deps.db, parsed.events, new Date());
  for (const outcome of outcomes) {
    if (outcome.blocked) {
      deps.metrics.addMetric(Metric.TemplateFailures, MetricUnit.Count, 1);
      deps.logger.warn('template stopped by Meta; its notifications fail unsent', {
        requestId,
        ...outcome,
      });
    } else {
      deps.logger.info('template registry updated', { requestId, ...outcome });
    }
  }
}

/**
 * Stores and counts what a body carried besides statuses and messages: refused items (reason
 * logged, raw item only in the table: it may hold phone numbers), Meta's events, foreign senders
 * and fields we do not read.
 */
async function recordAside(deps: WebhookDeps, parsed: ParsedItems, requestId: string) {
  await storeWebhookRejects(deps.db, parsed.rejects);
  await storeWhatsAppEvents(deps.db, parsed.events);
  for (const reject of parsed.rejects) {
    deps.metrics.addMetric(Metric.WebhookItemsRejected, MetricUnit.Count, 1);
    deps.logger.warn('webhook item refused; kept in webhook_rejects', {
      requestId,
      field: reject.field,
      kind: reject.kind,
      reason: reject.reason,
    });
  }
  for (const event of parsed.events) {
    // The total, and the same count per field for the dashboard.
    deps.metrics.addMetric(Metric.WhatsAppEvents, MetricUnit.Count, 1);
    const single = deps.metrics.singleMetric();
    single.addDimension('Field', event.field);
    single.addMetric(Metric.WhatsAppEvents, MetricUnit.Count, 1);
    deps.logger.info('whatsapp event recorded', {
      requestId,
      field: event.field,
      event: event.event,
    });
    const key = `${event.field}:${event.event.slice(0, 100)}`;
    if (!isKnownEvent(event.field, event.event) && !loggedOnce.has(key) && loggedOnce.size < 100) {
      // Stored and counted like any other; the warning says the catalogue has something new.
      loggedOnce.add(key);
      deps.logger.warn('whatsapp event of a type not in the catalogue (logged once per process)', {
        requestId,
        field: event.field,
        event: event.event,
      });
    }
  }
  if (parsed.foreignChanges > 0) {
    deps.metrics.addMetric(Metric.WebhookForeignSender, MetricUnit.Count, parsed.foreignChanges);
    deps.logger.warn('webhook for a phone number id that is not ours ignored', {
      requestId,
      changes: parsed.foreignChanges,
    });
  }
  for (const field of parsed.unknownFields) {
    // The name is Meta's, but a signed body could carry anything: bounded and masked like a reason.
    const name = maskPhonesIn(field.slice(0, 100));
    deps.metrics.addMetric(Metric.WebhookUnknownFields, MetricUnit.Count, 1);
    if (loggedOnce.has(name) || loggedOnce.size < 100) {
      // Per field too, for the first hundred names a process sees: dimensions are not free.
      const single = deps.metrics.singleMetric();
      single.addDimension('Field', name);
      single.addMetric(Metric.WebhookUnknownFields, MetricUnit.Count, 1);
    }
    if (!loggedOnce.has(name) && loggedOnce.size < 100) {
      loggedOnce.add(name);
      deps.logger.info('webhook field not read (logged once per process)', {
        requestId,
        field: name,
      });
    }
  }
}

/**
 * Number and account events change what the service knows of its sender (quality, tier,
 * throughput, standing) and may open panic mode. Meta names the WABA, not the phone number id:
 * they apply to our configured senders (WHATSAPP_PHONE_NUMBER_ID); with none configured they are
 * only stored, never applied to a guess.
 */
async function applyNumberEvents(deps: WebhookDeps, parsed: ParsedItems, requestId: string) {
  const readings = parsed.events.flatMap((event) => {
    const reading = readNumberEvent(event.field, event.event, event.payload);
    return reading ? [{ event, reading }] : [];
  });
  if (readings.length === 0) return;
  const senders = deps.phoneNumberIds ?? [];
  for (const { event, reading } of readings) {
    for (const senderId of senders) {
      const result = await applyHealthReading(deps.db, {
        senderId,
        reading,
        source: `webhook:${event.field}`,
        actor: 'system:webhook',
        metrics: deps.metrics,
      });
      for (const warning of result.warnings) {
        deps.metrics.addMetric(Metric.NumberHealthWarnings, MetricUnit.Count, 1);
        deps.logger.warn('number health got worse', { requestId, warning, event: event.event });
      }
      if (result.opened) {
        deps.logger.error('Meta blocked the account; panic mode opened and held', {
          requestId,
          event: event.event,
          reason: reading.blocks,
        });
      }
    }
  }
}

function countStatus(metrics: Metrics, status: string, errorCode: number | undefined) {
  if (status === 'delivered') metrics.addMetric(Metric.NotificationsDelivered, MetricUnit.Count, 1);
  if (status === 'read') metrics.addMetric(Metric.NotificationsRead, MetricUnit.Count, 1);
  if (status === 'failed') {
    metrics.addMetric(Metric.NotificationsFailed, MetricUnit.Count, 1);
    const errorClass = classifyGraphError({ code: errorCode });
    addClassMetric(metrics, errorClass);
    if (errorClass === 'template') metrics.addMetric(Metric.TemplateFailures, MetricUnit.Count, 1);
  }
}
