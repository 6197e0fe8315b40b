/**
 * A real HTTP receiver for callback tests: records every post with its raw body and headers,
 * counts repeats of an event id, and answers as told (2xx, an error status, slowly, a redirect).
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedPost {
  /** The status this receiver answered with (a 5xx post still arrived, the dispatcher retries). */
  answered: number;
  eventId: string;
  signature: string;
  timestamp: string;
  rawBody: string;
  body: { id: string; type: string; sequence: number; data: Record<string, unknown> } & Record<
    string,
    unknown
  >;
}

export type Answer = { status: number; delayMs?: number; headers?: Record<string, string> };

export interface CallbackReceiver {
  url: string;
  posts: ReceivedPost[];
  /** How many posts arrived per event id (redeliveries and retries after a lost answer repeat). */
  countsById(): Map<string, number>;
  /** The posts answered 2xx: what the client actually took. */
  accepted(): ReceivedPost[];
  /** The next answers, in order; once used up, 200. */
  answerNext(...answers: Answer[]): void;
  /** Every answer from now on, until changed. */
  answerAlways(answer: Answer | null): void;
  stop(): Promise<void>;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

export async function startCallbackReceiver(): Promise<CallbackReceiver> {
  const posts: ReceivedPost[] = [];
  const queued: Answer[] = [];
  let always: Answer | null = null;
  const server: Server = createServer(async (req, res) => {
    const rawBody = await readBody(req);
    const answer = queued.shift() ?? always ?? { status: 200 };
    posts.push({
      answered: answer.status,
      eventId: String(req.headers['webhook-id']),
      signature: String(req.headers['webhook-signature']),
      timestamp: String(req.headers['webhook-timestamp']),
      rawBody,
      body: JSON.parse(rawBody),
    });
    const reply = () => {
      if (res.destroyed) return;
      res.writeHead(answer.status, answer.headers ?? {});
      res.end('ok');
    };
    if (answer.delayMs) setTimeout(reply, answer.delayMs);
    else reply();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hooks`,
    posts,
    countsById() {
      const counts = new Map<string, number>();
      for (const p of posts.filter((q) => q.answered < 300))
        counts.set(p.eventId, (counts.get(p.eventId) ?? 0) + 1);
      return counts;
    },
    accepted: () => posts.filter((p) => p.answered >= 200 && p.answered < 300),
    answerNext: (...answers) => queued.push(...answers),
    answerAlways: (answer) => {
      always = answer;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
