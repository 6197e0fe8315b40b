/** Schema pieces more than one route group answers with: timestamps, the error shape, a notification. */
import * as z from 'zod';
import { ERROR_CLASSES } from '#core/model/error-class.ts';
import { NOTIFICATION_STATUSES } from '#core/model/lifecycle.ts';

export const iso = z.string().meta({ format: 'date-time' });
export const isoOrNull = iso.nullable();

export const errorSchema = z
  .object({
    error: z.object({
      code: z.string().meta({ example: 'validation_error' }),
      message: z.string(),
      field: z.string().optional().meta({ description: 'The request field that is wrong' }),
      requestId: z.string(),
    }),
  })
  .meta({ id: 'Error' });

export const notificationSchema = z
  .object({
    id: z.string().meta({ format: 'uuid' }),
    status: z.enum(NOTIFICATION_STATUSES),
    statusReason: z.string().nullable(),
    to: z.string().meta({ description: 'The recipient, masked', example: '+57******4567' }),
    priority: z.enum(['high', 'bulk']),
    type: z.enum(['template', 'text']),
    template: z.string().nullable(),
    templateCategory: z.string().nullable().optional().meta({
      description:
        'The template category (MARKETING, UTILITY, AUTHENTICATION) it was accepted, then sent, under; null when unknown',
    }),
    sendAt: isoOrNull,
    metadata: z.unknown(),
    attempts: z.number().int(),
    wamid: z.string().nullable(),
    error: z
      .object({
        class: z.enum(ERROR_CLASSES),
        code: z.number().int().nullable(),
        message: z.string().nullable(),
      })
      .nullable(),
    requestId: z.string(),
    createdAt: iso,
    updatedAt: iso,
    queuedAt: isoOrNull,
    sentAt: isoOrNull,
    deliveredAt: isoOrNull,
    readAt: isoOrNull,
    failedAt: isoOrNull,
    fallback: z
      .object({
        afterSeconds: z.number().int(),
        dueAt: isoOrNull.meta({
          description: 'sendAt (or acceptance) plus afterSeconds: delivered by then, or fallback',
        }),
        requiredAt: isoOrNull.meta({
          description: 'When the service found fallback required (set once); null while not',
        }),
        reason: z.string().nullable().meta({
          description:
            'failed, not_delivered (sent, no delivery report in time), not_sent, or deferred_<why> (panic_mode, kill_switch, …)',
        }),
      })
      .nullable()
      .meta({
        description: 'The fallback the notification carries (its own or the client default)',
      }),
  })
  .meta({ id: 'Notification' });

/** A notification id in a path: any text is taken, and one that is not a UUID is simply not found. */
export const notificationIdParams = z.object({ id: z.string().meta({ format: 'uuid' }) });
