/**
 * GET /v1/admin/recipients/notifications: a person's latest notifications, for "did my customer get
 * it?" without database access. Audited without the number; the rows carry it masked.
 */
import * as z from 'zod';
import { writeAudit } from '#core/notifications/audit.ts';
import { jsonResponse } from '#core/platform/http.ts';
import { maskPhone } from '#core/platform/phone.ts';
import { actorOf, defineRoute } from '../../route.ts';
import { iso, isoOrNull } from '../shared.ts';
import { optOutQuerySchema } from './recipients.ts';

export const notificationSearchQuerySchema = optOutQuerySchema
  .extend({ limit: z.coerce.number().int().min(1).max(100).default(20) })
  .strict();

export const recipientNotificationsSchema = z
  .object({
    recipient: z.string().meta({ example: '+57******4567' }),
    notifications: z.array(
      z.object({
        id: z.string().meta({ format: 'uuid' }),
        clientId: z.string(),
        status: z.string(),
        to: z.string().meta({ example: '+57******4567' }),
        template: z.string().nullable(),
        priority: z.string(),
        errorClass: z.string().nullable(),
        errorCode: z.number().int().nullable(),
        createdAt: iso,
        sentAt: isoOrNull,
        deliveredAt: isoOrNull,
        readAt: isoOrNull,
        failedAt: isoOrNull,
      }),
    ),
  })
  .meta({ id: 'RecipientNotifications' });

const isoOf = (d: Date | null) => (d ? d.toISOString() : null);

export const notificationSearchRoutes = [
  defineRoute({
    method: 'GET',
    path: '/v1/admin/recipients/notifications',
    operationId: 'findRecipientNotifications',
    summary: 'A recipient’s latest notifications, newest first (audited; number masked)',
    tag: 'admin',
    scope: 'admin',
    request: { query: notificationSearchQuerySchema },
    responses: {
      200: { description: 'The notifications, newest first', schema: recipientNotificationsSchema },
    },
    handle: async ({ ctx, deps, client, query }) => {
      // notifications_recipient_idx (recipient, created_at) answers this without a scan.
      const rows = await deps.db
        .selectFrom('notifications')
        .select([
          'id',
          'client_id',
          'status',
          'recipient',
          'message_type',
          'message',
          'priority',
          'error_class',
          'error_code',
          'created_at',
          'sent_at',
          'delivered_at',
          'read_at',
          'failed_at',
        ])
        .where('recipient', '=', query.to)
        .orderBy('created_at', 'desc')
        .limit(query.limit)
        .execute();
      // Looking a person up is itself worth a trace; the detail names no one.
      await writeAudit(deps.db, {
        actor: actorOf(client),
        action: 'recipients.notifications_read',
        outcome: 'ok',
        requestId: ctx.requestId,
        sourceIp: ctx.sourceIp,
        detail: { found: rows.length },
      });
      return jsonResponse(200, {
        recipient: maskPhone(query.to),
        notifications: rows.map((r) => ({
          id: r.id,
          clientId: r.client_id,
          status: r.status,
          to: maskPhone(r.recipient),
          template:
            r.message_type === 'template'
              ? ((r.message as { name?: string } | null)?.name ?? null)
              : null,
          priority: r.priority,
          errorClass: r.error_class,
          errorCode: r.error_code,
          createdAt: r.created_at.toISOString(),
          sentAt: isoOf(r.sent_at),
          deliveredAt: isoOf(r.delivered_at),
          readAt: isoOf(r.read_at),
          failedAt: isoOf(r.failed_at),
        })),
      });
    },
  }),
];
