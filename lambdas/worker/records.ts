/** Turns SQS event records into delivery records, finding each record's queue URL from its ARN. */
import type { SQSRecord } from 'aws-lambda';
import type { DeliveryRecord } from '#core/delivery/deliver-batch.ts';

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
