/** Panic mode per sender: read it, or turn it on or off with a reason (audited in the core). */
import * as z from 'zod';
import { readPanicStatus } from '#core/admin/admin-status.ts';
import { switchPanicMode } from '#core/admin/panic-switch.ts';
import { HttpError, jsonResponse } from '#core/platform/http.ts';
import { actorOf, defineRoute } from '../../route.ts';
import { isoOrNull } from '../shared.ts';

export const panicRequestSchema = z
  .object({
    enabled: z
      .boolean()
      .meta({ description: 'true opens the circuit (panic on), false closes it' }),
    reason: z
      .string()
      .trim()
      .min(3)
      .max(500)
      .meta({ description: 'Why; kept in the audit log and shown by panic status' }),
    senderId: z
      .string()
      .regex(/^\d{1,32}$/, 'a WhatsApp phone number id (digits)')
      .optional()
      .meta({ description: 'Sender phone number id; default: the configured sender' }),
  })
  .strict()
  .meta({ id: 'PanicRequest' });

const panicStateSchema = z
  .object({
    senderId: z.string(),
    active: z.boolean(),
    openedAt: isoOrNull,
    openedBy: z.string().nullable(),
    reason: z.string().nullable(),
    consecutiveFailures: z.number().int(),
    goodProbes: z.number().int(),
    lastProbeAt: isoOrNull,
  })
  .meta({ id: 'PanicState' });

export const panicStatusSchema = z
  .object({ active: z.boolean(), senders: z.array(panicStateSchema) })
  .meta({ id: 'PanicStatus' });

export const panicChangeSchema = z
  .object({
    changed: z.boolean().meta({ description: 'false when the circuit already was in that state' }),
    sender: panicStateSchema,
  })
  .meta({ id: 'PanicChange' });

export const panicRoutes = [
  defineRoute({
    method: 'GET',
    path: '/v1/admin/panic',
    operationId: 'getPanicMode',
    summary: 'Panic mode (the circuit) per sender',
    tag: 'admin',
    scope: 'admin',
    responses: { 200: { description: 'Panic mode per sender', schema: panicStatusSchema } },
    handle: async ({ deps }) => jsonResponse(200, await readPanicStatus(deps.db, deps.senderId)),
  }),
  defineRoute({
    method: 'POST',
    path: '/v1/admin/panic',
    operationId: 'setPanicMode',
    summary: 'Turn panic mode on or off for a sender, with a reason (audited)',
    tag: 'admin',
    scope: 'admin',
    request: { body: { schema: panicRequestSchema } },
    responses: { 200: { description: 'The sender after the change', schema: panicChangeSchema } },
    handle: async ({ ctx, deps, client, body }) => {
      const outcome = await switchPanicMode(deps.db, {
        enabled: body.enabled,
        reason: body.reason,
        senderId: body.senderId,
        configuredSenderId: deps.senderId,
        actor: actorOf(client),
        requestId: ctx.requestId,
        metrics: deps.metrics,
      });
      if (outcome.kind === 'no_sender') {
        throw new HttpError(
          400,
          'validation_error',
          'no sender is configured; name one with senderId',
          'senderId',
        );
      }
      // The sender id stays out of the line: its 15 digits look like a number to the log masking.
      // The audit log has it.
      deps.logger.info(
        body.enabled ? 'panic mode enable requested' : 'panic mode disable requested',
        { changed: outcome.changed },
      );
      return jsonResponse(200, { changed: outcome.changed, sender: outcome.sender });
    },
  }),
];
