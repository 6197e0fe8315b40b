/**
 * `ops dlq list|redrive`: what sits in the dead-letter queues and why, and moving it back to the
 * delivery queue (receive → send → delete) at a bounded rate with a progress bar. Safe to repeat:
 * the worker sends nothing for a notification that was already sent.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Message, SQSClient } from '@aws-sdk/client-sqs';
import type { AdminStatus } from '#core/admin/admin-status.ts';
import type { Priority } from '#core/model/notification-request.ts';
import { ApiError } from './api-client.ts';
import {
  type Command,
  type CommandContext,
  intFlag,
  positiveNumberFlag,
  stringFlag,
} from './command.ts';
import { formatAge, progressBar, table } from './output.ts';
import { OpsError, type QueuePair, UsageError } from './target.ts';

/** The SQS SDK is loaded by the DLQ commands only: every other command starts faster without it. */
const loadSqs = () => import('@aws-sdk/client-sqs');
const loadSqsHelpers = () => import('#core/platform/sqs.ts');

interface DlqTargets {
  sqs: SQSClient;
  pairs: QueuePair[];
}

/** `https://sqs.eu-west-1.amazonaws.com/…` → `eu-west-1`. */
function regionOf(url: string): string | undefined {
  return /^https:\/\/sqs\.([a-z0-9-]+)\.amazonaws\.com/.exec(url)?.[1];
}

function selectedPriorities(ctx: CommandContext): Priority[] {
  const queue = stringFlag(ctx, 'queue') ?? 'all';
  if (queue === 'all') return ['high', 'bulk'];
  if (queue === 'high' || queue === 'bulk') return [queue];
  throw new UsageError('--queue is high, bulk or all');
}

/**
 * The DLQs and their source queues: from the stack outputs with --stage, otherwise from the admin
 * status (which also names the SQS emulator of a local stack, unless --sqs-endpoint overrides it).
 */
async function dlqTargets(ctx: CommandContext): Promise<DlqTargets> {
  const target = await ctx.target();
  let pairs = target.queues;
  let endpoint = target.sqsEndpoint;
  if (!pairs?.length) {
    const status = await (await ctx.api()).get<AdminStatus>('/v1/admin/status');
    pairs = [];
    for (const priority of ['high', 'bulk'] as const) {
      const queue = status.queues.find((q) => q.priority === priority && q.kind === 'delivery');
      const dlq = status.queues.find((q) => q.priority === priority && q.kind === 'dlq');
      if (queue && dlq) pairs.push({ priority, queueUrl: queue.url, dlqUrl: dlq.url });
    }
    endpoint ??= status.sqs.endpoint ?? undefined;
  }
  const wanted = selectedPriorities(ctx);
  pairs = pairs.filter((p) => wanted.includes(p.priority));
  if (pairs.length === 0) {
    throw new OpsError(
      'the deployment reports no DLQ for that queue (HIGH_DLQ_URL / BULK_DLQ_URL)',
    );
  }
  const region = target.region ?? regionOf(pairs[0]!.dlqUrl) ?? 'us-east-1';
  const { SQSClient } = await loadSqs();
  const sqs = new SQSClient({
    region,
    ...(endpoint
      ? { endpoint, credentials: { accessKeyId: 'local', secretAccessKey: 'local' } }
      : {}),
  });
  return { sqs, pairs };
}

/** Why a DLQ still holds messages after a redrive, in words; nothing when it is empty. */
export function leftBehind(
  r: { queue: string; failed: number; remaining: number },
  stoppedAtMax: boolean,
): string[] {
  if (r.remaining === 0 && r.failed === 0) return [];
  const why: string[] = [];
  if (r.failed > 0) why.push(`${r.failed} could not be moved (the errors are above)`);
  if (stoppedAtMax) why.push('--max was reached');
  if (why.length === 0)
    why.push(
      'they were not visible: another reader (ops dlq list, the console) holds them for its visibility timeout, or SQS had not counted them yet; run it again in a minute',
    );
  return [`${r.remaining} message(s) left in ${r.queue}: ${why.join('; ')}`];
}

/** Visible and in-flight counts of a queue (the DLQs delay nothing). */
async function depth(sqs: SQSClient, url: string) {
  const { queueDepth } = await loadSqsHelpers();
  const { visible, inFlight } = await queueDepth(sqs, url);
  return { visible, inFlight };
}

const queueOptions = {
  queue: { type: 'string' },
} as const;

interface AdminNotification {
  status: string;
  attempts: number;
  to: string;
  error: { class: string; code: number | null; message: string | null } | null;
}

async function lookUp(ctx: CommandContext, id: string): Promise<AdminNotification | null> {
  try {
    return await (await ctx.api()).get<AdminNotification>(`/v1/admin/notifications/${id}`);
  } catch (error) {
    if (error instanceof ApiError && (error.status === 404 || error.status === 400)) return null;
    throw error;
  }
}

/**
 * Receives up to `max` messages without deleting them, then makes them visible again at once.
 * `expected` (the visible count) ends the loop early instead of waiting on an empty receive.
 */
async function peek(
  sqs: SQSClient,
  url: string,
  max: number,
  expected: number,
): Promise<Message[]> {
  const { ChangeMessageVisibilityBatchCommand, ReceiveMessageCommand } = await loadSqs();
  const messages: Message[] = [];
  while (messages.length < max) {
    const answer = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: url,
        MaxNumberOfMessages: Math.min(10, max - messages.length),
        VisibilityTimeout: 30,
        WaitTimeSeconds: 1,
        MessageSystemAttributeNames: ['SentTimestamp', 'ApproximateReceiveCount'],
        MessageAttributeNames: ['All'],
      }),
    );
    const batch = answer.Messages ?? [];
    if (batch.length === 0) break;
    messages.push(...batch);
    if (messages.length >= expected) break;
  }
  const { inSqsBatches } = await loadSqsHelpers();
  for (const chunk of inSqsBatches(messages)) {
    await sqs.send(
      new ChangeMessageVisibilityBatchCommand({
        QueueUrl: url,
        Entries: chunk.map((m, j) => ({
          Id: String(j),
          ReceiptHandle: m.ReceiptHandle!,
          VisibilityTimeout: 0,
        })),
      }),
    );
  }
  return messages;
}

export const dlqCommands: Command[] = [
  {
    name: 'dlq list',
    summary: 'what is in the dead-letter queues, with each notification’s status and last error',
    usage: '[--queue high|bulk|all] [--max 20]',
    description:
      'Peeks at DLQ messages (received and made visible again at once, nothing is deleted) and looks\n' +
      'each notification up through the admin API. Needs SQS access: AWS credentials for a deployed\n' +
      'stage; for the local stack the emulator endpoint comes from WN_SQS_ENDPOINT or the admin status.',
    options: { ...queueOptions, max: { type: 'string' } },
    optionsHelp: [
      ['--queue high|bulk|all', 'which DLQ (default all)'],
      ['--max <n>', 'messages to show per DLQ (default 20, at most 100)'],
    ],
    async run(ctx) {
      const max = intFlag(ctx, 'max', { min: 1, max: 100 }) ?? 20;
      const { sqs, pairs } = await dlqTargets(ctx);
      const report = [];
      try {
        for (const pair of pairs) {
          const counts = await depth(sqs, pair.dlqUrl);
          const messages =
            counts.visible > 0 ? await peek(sqs, pair.dlqUrl, max, counts.visible) : [];
          const rows = [];
          for (const m of messages) {
            const id = (m.Body ?? '').trim();
            const sentAt = Number(m.Attributes?.SentTimestamp ?? 0);
            rows.push({
              messageId: m.MessageId ?? '',
              notificationId: id,
              sentAt: sentAt ? new Date(sentAt).toISOString() : null,
              ageSeconds: sentAt ? Math.round((Date.now() - sentAt) / 1000) : null,
              receiveCount: Number(m.Attributes?.ApproximateReceiveCount ?? 0),
              requestId: m.MessageAttributes?.requestId?.StringValue ?? null,
              notification: await lookUp(ctx, id),
            });
          }
          report.push({
            queue: `${pair.priority}-dlq`,
            url: pair.dlqUrl,
            ...counts,
            messages: rows,
          });
        }
      } finally {
        sqs.destroy();
      }
      ctx.out.data({ queues: report });
      for (const q of report) {
        ctx.out.line(`${q.queue}: ${q.visible} visible, ${q.inFlight} in flight`);
        if (q.messages.length === 0) continue;
        ctx.out.line(
          table(q.messages, [
            { title: 'NOTIFICATION', value: (m) => m.notificationId },
            { title: 'AGE', value: (m) => formatAge(m.ageSeconds), align: 'right' },
            { title: 'STATUS', value: (m) => m.notification?.status ?? 'unknown' },
            { title: 'ATTEMPTS', value: (m) => m.notification?.attempts, align: 'right' },
            {
              title: 'LAST ERROR',
              value: (m) =>
                m.notification?.error
                  ? `${m.notification.error.class} ${m.notification.error.code ?? ''}`.trim()
                  : null,
            },
            { title: 'TO', value: (m) => m.notification?.to },
            { title: 'REQUEST ID', value: (m) => m.requestId },
          ]),
        );
        if (q.visible > q.messages.length) {
          ctx.out.line(`(${q.visible - q.messages.length} more not shown; --max raises the limit)`);
        }
      }
      return 0;
    },
  },
  {
    name: 'dlq redrive',
    summary: 'move DLQ messages back to their delivery queue at a bounded rate, with progress',
    usage: '[--queue high|bulk|all] [--rate 10] [--max N] [--dry-run]',
    description:
      'Receives each DLQ message, sends it to the queue it came from (same body and request id) and\n' +
      'then deletes it, at --rate messages per second so the worker and Meta are not flooded.\n' +
      'Fix the cause first (ops dlq list): a message that fails again returns to the DLQ after 5 receives.\n' +
      'In AWS the console or `aws sqs start-message-move-task` can do the same.',
    options: {
      ...queueOptions,
      rate: { type: 'string' },
      max: { type: 'string' },
      'dry-run': { type: 'boolean' },
    },
    optionsHelp: [
      ['--queue high|bulk|all', 'which DLQ (default all)'],
      ['--rate <n>', 'messages per second (default 10)'],
      ['--max <n>', 'move at most this many messages in total'],
      ['--dry-run', 'only count what would move'],
    ],
    examples: ['npm run ops -- dlq redrive --queue high --rate 5'],
    async run(ctx) {
      const rate = positiveNumberFlag(ctx, 'rate') ?? 10;
      const max = intFlag(ctx, 'max', { min: 1, max: 10_000_000 });
      const dryRun = ctx.flags['dry-run'] === true;
      const { sqs, pairs } = await dlqTargets(ctx);
      const { ReceiveMessageCommand } = await loadSqs();
      const { moveMessage } = await loadSqsHelpers();
      const results: {
        queue: string;
        target: string;
        moved: number;
        failed: number;
        remaining: number;
      }[] = [];
      const started = Date.now();
      let total = 0;
      try {
        for (const pair of pairs) {
          const name = `${pair.priority}-dlq`;
          const before = await depth(sqs, pair.dlqUrl);
          if (dryRun) {
            results.push({
              queue: name,
              target: pair.priority,
              moved: 0,
              failed: 0,
              remaining: before.visible + before.inFlight,
            });
            continue;
          }
          if (before.visible === 0) {
            results.push({
              queue: name,
              target: pair.priority,
              moved: 0,
              failed: 0,
              remaining: before.inFlight,
            });
            continue;
          }
          const bar = progressBar(`${name} → ${pair.priority}`, before.visible);
          let moved = 0;
          let failed = 0;
          let empty = 0;
          bar.update(0);
          while (max === undefined || total < max) {
            const answer = await sqs.send(
              new ReceiveMessageCommand({
                QueueUrl: pair.dlqUrl,
                MaxNumberOfMessages: Math.min(10, max === undefined ? 10 : max - total),
                // Long enough to send and delete at the slowest rate; a failed move reappears after it.
                VisibilityTimeout: Math.max(60, Math.ceil(10 / rate) + 30),
                WaitTimeSeconds: 1,
                MessageAttributeNames: ['All'],
              }),
            );
            const messages = answer.Messages ?? [];
            if (messages.length === 0) {
              // SQS can answer empty while messages remain; once the count seen at the start has
              // been handled, one empty answer ends the run, otherwise two.
              empty += 1;
              if (empty >= 2 || moved + failed >= before.visible) break;
              continue;
            }
            empty = 0;
            for (const message of messages) {
              // Paced over the whole run: message n leaves no earlier than n / rate seconds in.
              const due = started + (total * 1000) / rate;
              if (due > Date.now()) await sleep(due - Date.now());
              total += 1;
              try {
                await moveMessage(sqs, message, pair.dlqUrl, pair.queueUrl);
                moved += 1;
              } catch (error) {
                failed += 1;
                ctx.out.note(
                  `could not move message ${message.MessageId}: ${error instanceof Error ? error.name : String(error)}`,
                );
              }
              bar.update(moved + failed, failed ? `(${failed} failed)` : '');
            }
          }
          bar.finish(failed ? `(${failed} failed)` : '');
          const after = await depth(sqs, pair.dlqUrl);
          results.push({
            queue: name,
            target: pair.priority,
            moved,
            failed,
            remaining: after.visible + after.inFlight,
          });
        }
      } finally {
        sqs.destroy();
      }
      ctx.out.data({ dryRun, rate, queues: results });
      ctx.out.line(
        table(results, [
          { title: 'DLQ', value: (r) => r.queue },
          { title: 'TO', value: (r) => r.target },
          {
            title: dryRun ? 'WOULD MOVE' : 'MOVED',
            value: (r) => (dryRun ? r.remaining : r.moved),
            align: 'right',
          },
          { title: 'FAILED', value: (r) => r.failed, align: 'right' },
          { title: 'LEFT', value: (r) => (dryRun ? r.remaining : r.remaining), align: 'right' },
        ]),
      );
      if (dryRun) return 0;
      // A redrive that leaves work behind is not a success: say what is left and why, exit 1.
      const reasons = results.flatMap((r) => leftBehind(r, max !== undefined && total >= max));
      for (const reason of reasons) ctx.out.note(`ops: ${reason}`);
      return reasons.length > 0 ? 1 : 0;
    },
  },
];
