/**
 * Every route of the API function, in one list: the adapter serves it, the OpenAPI document is
 * generated from it, and the stack test checks API Gateway routes exactly these.
 */
import { buildOpenApiDocument } from '../openapi.ts';
import type { ApiRoute } from '../route.ts';
import { auditRoutes } from './admin/audit.ts';
import { clientFallbackRoutes } from './admin/client-fallback.ts';
import { clientLimitsRoutes } from './admin/client-limits.ts';
import { keyRoutes } from './admin/keys.ts';
import { notificationSearchRoutes } from './admin/notification-search.ts';
import { adminNotificationRoutes } from './admin/notifications.ts';
import { outcomeRoutes } from './admin/outcomes.ts';
import { panicRoutes } from './admin/panic.ts';
import { recipientRoutes } from './admin/recipients.ts';
import { rolloutRoutes } from './admin/rollout.ts';
import { statusRoutes } from './admin/status.ts';
import { templateRoutes } from './admin/templates.ts';
import { webhookRecordRoutes } from './admin/webhook-records.ts';
import { whatsappRoutes } from './admin/whatsapp.ts';
import { callbackRoutes } from './callbacks.ts';
import { documentRoute } from './document.ts';
import { healthRoutes } from './health.ts';
import { notificationRoutes } from './notifications.ts';

export const apiRoutes: readonly ApiRoute[] = [
  ...healthRoutes,
  ...notificationRoutes,
  documentRoute(() => JSON.stringify(apiDocument())),
  ...statusRoutes,
  ...panicRoutes,
  ...rolloutRoutes,
  ...keyRoutes,
  ...whatsappRoutes,
  ...webhookRecordRoutes,
  ...adminNotificationRoutes,
  ...auditRoutes,
  ...recipientRoutes,
  ...clientFallbackRoutes,
  ...clientLimitsRoutes,
  // Issue 17: time windows, per-client outcomes, finding a person's notifications.
  ...outcomeRoutes,
  ...notificationSearchRoutes,
  ...callbackRoutes,
  ...templateRoutes,
];

/** The OpenAPI document of `apiRoutes` (and of the webhook route the webhook function serves). */
export function apiDocument() {
  return buildOpenApiDocument(apiRoutes);
}

/** The document as committed in docs/openapi.json: two-space JSON and a final newline. */
export function renderApiDocument(): string {
  return `${JSON.stringify(apiDocument(), null, 2)}\n`;
}
