/**
 * Priorities on the real local parts: the high and bulk queues each have an event source of their
 * own (as the deployed worker has one SQS event source per queue), so a bulk backlog never stands
 * in front of high-priority notifications.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it, onTestFinished } from 'vitest';
import { openGates } from '#core/delivery/delivery-gates.ts';
import { type EventSource, startSqsEventSource } from '../../../bin/local/sqs-event-source.ts';
import { testSqsClient } from '../../support/api.ts';
import { testDatabase } from '../../support/database.ts';
import {
  createTestQueues,
  deleteTestQueues,
  deliveryDeps,
  sandboxGraphClient,
  startTestSandbox,
} from '../../support/delivery.ts';
import {
  notificationMaker,
  readRows,
  uniqueMobile,
  uniqueSenderId,
  workerHandler,
} from '../../support/delivery-control.ts';

const db = testDatabase(10);
afterAll(() => db.destroy());

const BULK = 300;
const HIGH = 20;
/** Pollers per queue: the event source's maximum concurrency, the same for both queues. */
const POLLERS = 2;

const mean = (values: readonly number[]) => values.reduce((a, b) => a + b, 0) / values.length;

describe('priorities', () => {
  it('sends every high notification before a bulk backlog is drained, far sooner on average', async () => {
    // prepare
    const sqs = testSqsClient();
    const high = await createTestQueues(sqs, 'high');
    const bulk = await createTestQueues(sqs, 'bulk');
    // Every send takes 200–800 ms, as a loaded Graph API does, so the backlog takes a while.
    const sandbox = await startTestSandbox({ faultRate: 1, faultKinds: ['slow'] });
    const graph = sandboxGraphClient(sandbox, 5_000);
    const sources: EventSource[] = [];
    onTestFinished(async () => {
      await Promise.all(sources.map((s) => s.stop()));
      await sandbox.stop();
      await graph.close();
      await deleteTestQueues(sqs, high);
      await deleteTestQueues(sqs, bulk);
      sqs.destroy();
    });
    const deps = deliveryDeps({
      db,
      sqs,
      whatsapp: graph,
      senderId: uniqueSenderId('prio'),
      gates: openGates,
    });
    const maker = await notificationMaker(db, sqs, { high: high.url, bulk: bulk.url });
    const bulkIds = await maker.notifyMany(
      Array.from({ length: BULK }, () => uniqueMobile()),
      { priority: 'bulk' },
      20,
    );
    const handler = workerHandler(deps, [high.url, bulk.url]);

    // act: the workers start on the backlog, then the high ones arrive
    const startedAt = Date.now();
    for (const queue of [high, bulk]) {
      sources.push(
        startSqsEventSource({
          sqs,
          queueUrl: queue.url,
          queueArn: queue.arn,
          handler,
          concurrency: POLLERS,
          waitSeconds: 1,
        }),
      );
    }
    const highIds = await maker.notifyMany(
      Array.from({ length: HIGH }, () => uniqueMobile()),
      { priority: 'high' },
    );
    const all = [...bulkIds, ...highIds];
    // About 12 s on an idle machine and 25 s beside two busy loops; the ceiling leaves room.
    const deadline = Date.now() + 90_000;
    let rows = await readRows(db, all);
    while ([...rows.values()].some((r) => r.sent_at === null) && Date.now() < deadline) {
      await sleep(200);
      rows = await readRows(db, all);
    }

    // assess
    const sentAt = (id: string) => rows.get(id)?.sent_at?.getTime() ?? Number.NaN;
    expect(all.filter((id) => rows.get(id)?.status !== 'sent')).toEqual([]);
    const lastHigh = Math.max(...highIds.map(sentAt));
    const lastBulk = Math.max(...bulkIds.map(sentAt));
    const bulkAfterLastHigh = bulkIds.filter((id) => sentAt(id) > lastHigh).length;
    // Latency from when the notification could first be worked on: the bulk ones waited for the
    // workers to start, the high ones were created after.
    const latency = (id: string) =>
      sentAt(id) - Math.max(rows.get(id)!.created_at.getTime(), startedAt);
    const highLatency = mean(highIds.map(latency));
    const bulkLatency = mean(bulkIds.map(latency));
    console.log(
      `priorities: last high sent ${lastHigh - startedAt} ms after start, last bulk ${lastBulk - startedAt} ms; ` +
        `${bulkAfterLastHigh} of ${BULK} bulk sent after the last high; ` +
        `mean latency high ${Math.round(highLatency)} ms, bulk ${Math.round(bulkLatency)} ms`,
    );
    expect(lastHigh).toBeLessThan(lastBulk);
    expect(bulkAfterLastHigh).toBeGreaterThanOrEqual(BULK / 2);
    expect(highLatency * 3).toBeLessThan(bulkLatency);
    expect(sandbox.stats().accepted).toBe(BULK + HIGH);
  });
});
