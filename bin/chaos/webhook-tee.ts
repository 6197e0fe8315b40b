/**
 * Sits between the sandbox and the stack's webhook route and notes every `sent` status it passes
 * on. The sandbox posts one `sent` per accepted send (and retries it with the same wamid), so the
 * distinct wamids per recipient are the sends Meta accepted: the count that tells a duplicate
 * delivery from a retry after a failure. Bodies and signatures are forwarded untouched.
 */
import { createServer, type Server } from 'node:http';
import { Agent, request } from 'undici';

export interface WebhookTee {
  url: string;
  /** Accepted sends per recipient (digits, as Meta writes them). Holds full numbers: test use only. */
  acceptedByRecipient(): Map<string, number>;
  acceptedSends(): number;
  stop(): Promise<void>;
}

interface StatusLike {
  id?: unknown;
  status?: unknown;
  recipient_id?: unknown;
}

function sentStatuses(body: string): StatusLike[] {
  try {
    const json = JSON.parse(body) as {
      entry?: { changes?: { value?: { statuses?: StatusLike[] } }[] }[];
    };
    return (json.entry ?? []).flatMap((e) =>
      (e.changes ?? []).flatMap((c) =>
        (c.value?.statuses ?? []).filter((s) => s.status === 'sent'),
      ),
    );
  } catch {
    return [];
  }
}

export async function startWebhookTee(target: string): Promise<WebhookTee> {
  const wamids = new Map<string, string>();
  const agent = new Agent({ connections: 64, keepAliveTimeout: 30_000 });
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      for (const status of sentStatuses(body.toString('utf8'))) {
        if (typeof status.id === 'string' && typeof status.recipient_id === 'string') {
          wamids.set(status.id, status.recipient_id);
        }
      }
      const headers: Record<string, string> = {};
      for (const name of ['content-type', 'x-hub-signature-256']) {
        const value = req.headers[name];
        if (typeof value === 'string') headers[name] = value;
      }
      request(target, { method: 'POST', headers, body, dispatcher: agent })
        .then(async (upstream) => {
          const text = await upstream.body.text();
          res.writeHead(upstream.statusCode, { 'content-type': 'application/json' });
          res.end(text);
        })
        .catch(() => {
          res.writeHead(502, { 'content-type': 'application/json' });
          res.end('{"message":"webhook receiver unreachable"}');
        });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}/webhook/whatsapp`,
    acceptedByRecipient() {
      const counts = new Map<string, number>();
      for (const recipient of wamids.values()) {
        counts.set(recipient, (counts.get(recipient) ?? 0) + 1);
      }
      return counts;
    },
    acceptedSends: () => wamids.size,
    async stop() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await agent.destroy();
    },
  };
}
