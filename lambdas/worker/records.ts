/**
 * Turns SQS event records into delivery records, finding each record's queue URL from its ARN, and
 * runs an event through the delivery core (the worker handler's body, shared with the tests).
 */
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import {
  type DeliveryDeps,
  type DeliveryRecord,
  deliverBatch,
} from '#core/delivery/deliver-batch.ts';

/** `arn:aws:sqs:region:account:name` and `https://…/account/name` share the queue name. */
export function queueUrlForArn(arn: string, queueUrls: readonly string[]): string {
  const name = arn.split(':').pop() ?? '';
  const url = queueUrls.find((u) => u.endsWith(`/${name}`));
  if (!url) throw new Error(`no configured queue URL for queue ${name}`);
  return url;
}

export function toDeliveryRecord(record: SQSRecord, queueUrls: readonly string[]): DeliveryRecord {
  return {
    messageId: record.messageId,
    receiptHandle: record.receiptHandle,
    body: record.body.trim(),
    receiveCount: Number(record.attributes.ApproximateReceiveCount ?? 1),
    requestId: record.messageAttributes?.requestId?.stringValue,
    queueUrl: queueUrlForArn(record.eventSourceARN, queueUrls),
  };
}

/** One SQS event through the delivery core, answered as a partial batch response. */
export async function deliverSqsBatch(
  deps: DeliveryDeps,
  event: SQSEvent,
  queueUrls: readonly string[],
): Promise<SQSBatchResponse> {
  const records = event.Records.map((r) => toDeliveryRecord(r, queueUrls));
  const { batchItemFailures } = await deliverBatch(deps, records);
  return { batchItemFailures };
}
