/**
 * The send, the fourth stage: one WhatsApp call per claimed row, all in flight at once. The client
 * never throws for Meta's answers; it returns a classified result for the record stage to judge.
 */
import type { NotificationRow } from '#core/db/schema.ts';
import { encodeCallbackData } from '#core/whatsapp/callback-data.ts';
import type { GraphClient, OutboundMessage, SendResult } from '#core/whatsapp/graph-client.ts';
import type { Claimed } from './claim.ts';

export interface Sent extends Claimed {
  result: SendResult;
}

export function sendAll(
  whatsapp: Pick<GraphClient, 'sendMessage'>,
  claimed: readonly Claimed[],
): Promise<Sent[]> {
  return Promise.all(
    claimed.map(async (c) => ({
      ...c,
      result: await whatsapp.sendMessage(outboundMessage(c.row, c.attempt)),
    })),
  );
}

/**
 * The request for a row. With the claim's attempt, the message carries the row's id and that
 * attempt for Meta to echo on its statuses: the webhook then settles a send whose worker died
 * before recording it, rather than the row being sent again.
 */
export function outboundMessage(row: NotificationRow, attempt?: number): OutboundMessage {
  const callbackData =
    attempt === undefined
      ? {}
      : { callbackData: encodeCallbackData({ notificationId: row.id, attempt }) };
  if (row.message_type === 'template') {
    const template = row.message as { name: string; language: string; components?: unknown[] };
    return { kind: 'template', to: row.recipient, template, ...callbackData };
  }
  const text = row.message as { body: string; previewUrl?: boolean };
  return { kind: 'text', to: row.recipient, text, ...callbackData };
}
