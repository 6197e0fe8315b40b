/**
 * The `callbacks-dead` phase: the same drain as the delivery phase, with the bench client's
 * callback endpoint missing, pointing at a receiver that answers at once, at one that accepts the
 * connection and never answers, and at a port that refuses it, in rotating order over a few
 * rounds. Issue 15 promises that a dead receiver never slows sending; this puts the throughput and
 * round trips of each side by side (the answering one tells the cost of having an endpoint at all
 * from that of its being dead), with the dispatcher's posts counted so the comparison cannot pass
 * with an idle dispatcher.
 */
import { createServer as createHttpServer } from 'node:http';
import { createServer, type Socket } from 'node:net';
import { type Kysely, sql } from 'kysely';
import { createCallbackEndpoint, removeCallbackEndpoint } from '#core/callbacks/endpoints.ts';
import type { Database } from '#core/db/schema.ts';
import { freePort } from '../local/free-port.ts';
import type { DeliveryFigures } from './report.ts';
import { median } from './stats.ts';

export const CALLBACK_RECEIVERS = ['none', 'answering', 'hanging', 'refused'] as const;
export type CallbackReceiver = (typeof CALLBACK_RECEIVERS)[number];

const RECEIVER_LABELS: Record<CallbackReceiver, string> = {
  none: 'no endpoint',
  answering: 'endpoint answers 204 at once',
  hanging: 'endpoint accepts, never answers',
  refused: 'endpoint refuses connections',
};

/** What the dispatcher did for the endpoint while one drain ran (seeding to the last webhook). */
export interface CallbackActivity {
  /** Deliveries the outbox trigger wrote for the endpoint (one per event it wants). */
  deliveries: number;
  /** Posts the dispatcher had claimed by the end (a claim counts the attempt before the post). */
  postsStarted: number;
  /** Attempts the dispatcher recorded, by error (the first words of it). */
  attempts: number;
  attemptsByError: Record<string, number>;
  /** Connections the hanging receiver accepted, and those still held open when the drain ended. */
  connectionsAccepted: number | null;
  connectionsOpenAtEnd: number | null;
}

export interface CallbackRound {
  round: number;
  receiver: CallbackReceiver;
  delivery: DeliveryFigures;
  /** Null without an endpoint. */
  activity: CallbackActivity | null;
}

export interface CallbackReceiverSummary {
  receiver: CallbackReceiver;
  /** Medians over the rounds. */
  perSecond: number;
  workerQueriesPerNotification: number;
  /** The stack process's statements per notification: status webhooks and the dispatcher. */
  stackQueriesPerNotification: number;
  /** Of those, the ones on callback_* tables (the dispatcher's claims and records). */
  callbackQueriesPerNotification: number;
  /** Ratios of the medians to those with no endpoint. */
  perSecondRatio: number;
  /** The throughput's median to that with an answering endpoint: what being dead costs. */
  perSecondRatioToAnswering: number;
  workerQueriesRatio: number;
  /** Summed over the rounds. */
  postsStarted: number;
  attempts: number;
  connectionsAccepted: number | null;
}

export interface CallbacksDeadFigures {
  notifications: number;
  rounds: number;
  /** The dispatcher's post timeout in the stack (CALLBACK_TIMEOUT_MS). */
  postTimeoutMs: number;
  summaries: CallbackReceiverSummary[];
  runs: CallbackRound[];
}

export interface CallbacksDeadInput {
  db: Kysely<Database>;
  clientId: string;
  notifications: number;
  rounds: number;
  postTimeoutMs: number;
  /** One drain of the delivery phase (worker started, drained, webhooks settled, worker stopped). */
  drain: (tag: string, recipientPrefix: string, label: string) => Promise<DeliveryFigures>;
  progress: (line: string) => void;
}

const ACTOR = { actor: 'bench', requestId: null, sourceIp: null };

export async function measureCallbacksDead(
  input: CallbacksDeadInput,
): Promise<CallbacksDeadFigures> {
  const hanging = await startHangingReceiver();
  const answering = await startAnsweringReceiver();
  const runs: CallbackRound[] = [];
  try {
    for (let round = 0; round < input.rounds; round += 1) {
      // The order turns every round, so a machine that gets busier (or a database that grows)
      // over the phase does not favour one of the receivers.
      for (let i = 0; i < CALLBACK_RECEIVERS.length; i += 1) {
        const receiver = CALLBACK_RECEIVERS[(round + i) % CALLBACK_RECEIVERS.length]!;
        const index = round * CALLBACK_RECEIVERS.length + i;
        const tag = `cb${receiver}${round + 1}`;
        // Fresh recipients every drain (the per-recipient spacing would hold back a repeat).
        const prefix = String(320 + index);
        const label = `callbacks-dead ${round + 1}/${input.rounds}, ${RECEIVER_LABELS[receiver]}`;
        const url = {
          none: '',
          answering: answering.url,
          hanging: hanging.url,
          // A port that was free a moment ago: nothing listens, the connection is refused at once.
          refused: `http://127.0.0.1:${await freePort()}/callbacks`,
        }[receiver];
        runs.push(
          await oneDrain(input, hanging, { round: round + 1, receiver, url, tag, prefix, label }),
        );
      }
    }
  } finally {
    await hanging.stop();
    await answering.stop();
  }
  const summaries = summarize(runs);
  for (const s of summaries) {
    input.progress(
      `callbacks-dead: ${RECEIVER_LABELS[s.receiver]}: median ${Math.round(s.perSecond)} /s (${(100 * s.perSecondRatio).toFixed(1)} % of no endpoint, ${(100 * s.perSecondRatioToAnswering).toFixed(1)} % of answering), ${s.postsStarted} posts started, ${s.attempts} attempts recorded`,
    );
  }
  return {
    notifications: input.notifications,
    rounds: input.rounds,
    postTimeoutMs: input.postTimeoutMs,
    summaries,
    runs,
  };
}

async function oneDrain(
  input: CallbacksDeadInput,
  hanging: HangingReceiver,
  run: {
    round: number;
    receiver: CallbackReceiver;
    url: string;
    tag: string;
    prefix: string;
    label: string;
  },
): Promise<CallbackRound> {
  const { db } = input;
  if (run.receiver === 'none') {
    const delivery = await input.drain(run.tag, run.prefix, run.label);
    return { round: run.round, receiver: run.receiver, delivery, activity: null };
  }
  const endpoint = await createCallbackEndpoint(
    db,
    ACTOR,
    { clientId: input.clientId, url: run.url },
    { strict: false },
  );
  const acceptedBefore = hanging.accepted;
  const from = new Date();
  let delivery: DeliveryFigures;
  try {
    delivery = await input.drain(run.tag, run.prefix, run.label);
  } catch (error) {
    await removeCallbackEndpoint(db, ACTOR, { endpointId: endpoint.id });
    throw error;
  }
  const to = new Date();
  const accepted = hanging.accepted - acceptedBefore;
  const openAtEnd = hanging.open;
  const activity = await callbackActivity(db, endpoint.id, from, to);
  if (run.receiver === 'hanging') {
    activity.connectionsAccepted = accepted;
    activity.connectionsOpenAtEnd = openAtEnd;
  }
  input.progress(
    `${run.label}: ${activity.deliveries} deliveries written, ${activity.postsStarted} posts started, ${activity.attempts} attempts recorded${run.receiver === 'hanging' ? `, ${activity.connectionsAccepted} connections accepted (${activity.connectionsOpenAtEnd} held open at the end)` : ''}`,
  );
  // Off, so the dispatcher claims nothing more; then every claimed post must end (a hanging one
  // only at the post timeout, and a round of them takes several) before the endpoint goes. Else
  // the next drain would share the machine with this one's retries, or find the dispatcher still
  // waiting on this receiver.
  await db
    .updateTable('callback_endpoints')
    .set({ disabled_at: new Date(), disabled_reason: 'bench: phase over' })
    .where('id', '=', endpoint.id)
    .execute();
  const settled = await waitForPostsToEnd(db, endpoint.id, 120_000);
  if (!settled) input.progress(`${run.label}: posts still in flight after 120 s; removing anyway`);
  await removeCallbackEndpoint(db, ACTOR, { endpointId: endpoint.id });
  return { round: run.round, receiver: run.receiver, delivery, activity };
}

/** The endpoint's deliveries, and the attempts recorded between two instants (database clock). */
async function callbackActivity(
  db: Kysely<Database>,
  endpointId: string,
  from: Date,
  to: Date,
): Promise<CallbackActivity> {
  const deliveries = await db
    .selectFrom('callback_deliveries')
    .select((eb) => [
      eb.fn.countAll<string>().as('n'),
      eb.fn.coalesce(eb.fn.sum<string>('attempts'), sql<string>`0`).as('claimed'),
    ])
    .where('endpoint_id', '=', endpointId)
    .executeTakeFirstOrThrow();
  const attempts = await sql<{ error: string; n: string }>`
    select coalesce(split_part(a.error, ' ', 1) || ' ' || split_part(a.error, ' ', 2), 'delivered') as error,
      count(*) as n
    from callback_attempts a
    join callback_deliveries d on d.id = a.delivery_id
    where d.endpoint_id = ${endpointId} and a.at >= ${from} and a.at <= ${to}
    group by 1 order by 2 desc`.execute(db);
  const attemptsByError = Object.fromEntries(attempts.rows.map((r) => [r.error, Number(r.n)]));
  return {
    deliveries: Number(deliveries.n),
    postsStarted: Number(deliveries.claimed),
    attempts: Object.values(attemptsByError).reduce((a, b) => a + b, 0),
    attemptsByError,
    connectionsAccepted: null,
    connectionsOpenAtEnd: null,
  };
}

/**
 * Waits until every claim of the endpoint has its recorded attempt: the claim adds one to
 * `attempts` before the post, the record follows it, so equal counts mean no post in flight.
 */
async function waitForPostsToEnd(
  db: Kysely<Database>,
  endpointId: string,
  timeoutMs: number,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { rows } = await sql<{ in_flight: string }>`
      select coalesce(sum(d.attempts), 0)
        - (select count(*) from callback_attempts a join callback_deliveries x on x.id = a.delivery_id
           where x.endpoint_id = ${endpointId}) as in_flight
      from callback_deliveries d where d.endpoint_id = ${endpointId}`.execute(db);
    if (Number(rows[0]?.in_flight ?? 0) <= 0) return true;
    if (Date.now() > deadline) return false;
    await new Promise((done) => setTimeout(done, 250));
  }
}

function summarize(runs: CallbackRound[]): CallbackReceiverSummary[] {
  const of = (receiver: CallbackReceiver) => runs.filter((r) => r.receiver === receiver);
  const medians = (receiver: CallbackReceiver) => {
    const mine = of(receiver);
    const callbackShare = (d: DeliveryFigures) =>
      Object.entries(d.stackQueriesByShape)
        .filter(([shape]) => shape.includes('callback_'))
        .reduce((sum, [, n]) => sum + n, 0);
    return {
      perSecond: median(mine.map((r) => r.delivery.perSecond)),
      workerQueriesPerNotification: median(
        mine.map((r) => r.delivery.workerPath.queriesPerNotification),
      ),
      stackQueriesPerNotification: median(mine.map((r) => r.delivery.stackQueriesPerNotification)),
      callbackQueriesPerNotification: median(mine.map((r) => callbackShare(r.delivery))),
    };
  };
  const base = medians('none');
  const alive = medians('answering');
  return CALLBACK_RECEIVERS.map((receiver) => {
    const m = medians(receiver);
    const activities = of(receiver).map((r) => r.activity);
    return {
      receiver,
      ...m,
      perSecondRatio: m.perSecond / base.perSecond,
      perSecondRatioToAnswering: m.perSecond / alive.perSecond,
      workerQueriesRatio: m.workerQueriesPerNotification / base.workerQueriesPerNotification,
      postsStarted: activities.reduce((sum, a) => sum + (a?.postsStarted ?? 0), 0),
      attempts: activities.reduce((sum, a) => sum + (a?.attempts ?? 0), 0),
      connectionsAccepted:
        receiver === 'hanging'
          ? activities.reduce((sum, a) => sum + (a?.connectionsAccepted ?? 0), 0)
          : null,
    };
  });
}

/** Rows for the results table: each receiver's medians next to those with no endpoint. */
export function callbacksDeadRows(f: CallbacksDeadFigures): [string, string][] {
  const rows: [string, string][] = [
    [
      `callbacks-dead: ${f.notifications.toLocaleString('en-US')} queued, median of ${f.rounds} drains each, post timeout ${f.postTimeoutMs} ms`,
      '',
    ],
  ];
  const n = (v: number, digits: number) => (Number.isFinite(v) ? v.toFixed(digits) : 'n/a');
  const pct = (v: number) => (Number.isFinite(v) ? `${(100 * v).toFixed(1)} %` : 'n/a');
  for (const s of f.summaries) {
    const dead = s.receiver === 'hanging' || s.receiver === 'refused';
    const ratio =
      s.receiver === 'none'
        ? ''
        : ` (${pct(s.perSecondRatio)}${dead ? `; ${pct(s.perSecondRatioToAnswering)} of answering` : ''})`;
    rows.push([`  ${RECEIVER_LABELS[s.receiver]}: throughput`, `${n(s.perSecond, 0)} /s${ratio}`]);
    rows.push([
      '    DB round trips / notification: worker; stack (of it callback_*)',
      `${n(s.workerQueriesPerNotification, 2)}${s.receiver === 'none' ? '' : ` (${pct(s.workerQueriesRatio)})`}; ${n(s.stackQueriesPerNotification, 2)} (${n(s.callbackQueriesPerNotification, 2)})`,
    ]);
    if (s.receiver !== 'none') {
      rows.push([
        '    dispatcher during the drains: posts started; attempts recorded; connections accepted',
        `${s.postsStarted.toLocaleString('en-US')}; ${s.attempts.toLocaleString('en-US')}; ${s.connectionsAccepted === null ? 'n/a' : s.connectionsAccepted.toLocaleString('en-US')}`,
      ]);
    }
  }
  return rows;
}

interface HangingReceiver {
  url: string;
  /** Connections accepted so far, and those open now. */
  readonly accepted: number;
  readonly open: number;
  stop(): Promise<void>;
}

/** A healthy receiver: reads the post and answers 204 at once. */
async function startAnsweringReceiver(): Promise<{ url: string; stop(): Promise<void> }> {
  const server = createHttpServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(204).end());
  });
  await new Promise<void>((done, fail) => {
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => done());
  });
  const address = server.address();
  if (!address || typeof address !== 'object')
    throw new Error('the answering receiver has no port');
  return {
    url: `http://127.0.0.1:${address.port}/callbacks`,
    stop: () =>
      new Promise<void>((done) => {
        server.close(() => done());
        server.closeAllConnections();
      }),
  };
}

/**
 * A receiver that is up but dead: it accepts the TCP connection, reads whatever is sent and never
 * answers, so every post waits out the dispatcher's timeout (the worst a live socket can do).
 */
async function startHangingReceiver(): Promise<HangingReceiver> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server = createServer((socket) => {
    accepted += 1;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    socket.resume();
  });
  await new Promise<void>((done, fail) => {
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => done());
  });
  const address = server.address();
  if (!address || typeof address !== 'object') throw new Error('the hanging receiver has no port');
  return {
    url: `http://127.0.0.1:${address.port}/callbacks`,
    get accepted() {
      return accepted;
    },
    get open() {
      return sockets.size;
    },
    async stop() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((done) => server.close(() => done()));
    },
  };
}
