/**
 * The send, the fourth stage: one WhatsApp call per claimed row, all in flight at once. The client
 * never throws for Meta's answers; it returns a classified result for the record stage to judge.
 */
import type { NotificationRow } from '#core/db/schema.ts';
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
      result: await whatsapp.sendMessage(outboundMessage(c.row)),
    })),
  );
}

export function outboundMessage(row: NotificationRow): OutboundMessage {
  if (row.message_type === 'template') {
    const template = row.message as { name: string; language: string; components?: unknown[] };
    return { kind: 'template', to: row.recipient, template };
  }
  const text = row.message as { body: string; previewUrl?: boolean };
  return { kind: 'text', to: row.recipient, text };
}
