/** Any client's notification with its transitions, for DLQ triage. */
import * as z from 'zod';
import { toNotificationView } from '#core/notifications/notification-view.ts';
import { HttpError, jsonResponse } from '#core/platform/http.ts';
import { isUuid } from '#core/platform/ids.ts';
import { defineRoute } from '../../route.ts';
import { iso, notificationIdParams, notificationSchema } from '../shared.ts';

export const adminNotificationSchema = notificationSchema
  .extend({
    clientId: z.string(),
    events: z.array(
      z.object({
        at: iso,
        from: z.string().nullable(),
        to: z.string(),
        errorClass: z.string().nullable(),
        errorCode: z.number().int().nullable(),
        attempt: z.number().int(),
      }),
    ),
  })
  .meta({ id: 'AdminNotification' });

export const adminNotificationRoutes = [
  defineRoute({
    method: 'GET',
    path: '/v1/admin/notifications/{id}',
    operationId: 'getAnyNotification',
    summary: 'Any client’s notification with its transitions (for DLQ triage)',
    tag: 'admin',
    scope: 'admin',
    request: { params: notificationIdParams },
    responses: {
      200: { description: 'The notification and its events', schema: adminNotificationSchema },
      404: { description: 'No such notification' },
    },
    handle: async ({ deps, params }) => {
      const { id } = params;
      const row = isUuid(id)
        ? await deps.db
            .selectFrom('notifications')
            .selectAll()
            .where('id', '=', id)
            .executeTakeFirst()
        : undefined;
      if (!row) throw new HttpError(404, 'not_found', 'no such notification');
      const events = await deps.db
        .selectFrom('notification_events')
        .select(['at', 'from_status', 'to_status', 'error_class', 'error_code', 'attempt'])
        .where('notification_id', '=', id)
        .orderBy('id')
        .execute();
      return jsonResponse(200, {
        ...toNotificationView(row),
        clientId: row.client_id,
        events: events.map((e) => ({
          at: e.at.toISOString(),
          from: e.from_status,
          to: e.to_status,
          errorClass: e.error_class,
          errorCode: e.error_code,
          attempt: e.attempt,
        })),
      });
    },
  }),
];
