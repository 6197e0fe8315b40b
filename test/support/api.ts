/** Builders for API tests: API Gateway proxy events, clients with keys, and the app on the real local parts. */
import { randomUUID } from 'node:crypto';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { SQSClient } from '@aws-sdk/client-sqs';
import type { APIGatewayProxyEvent } from 'aws-lambda';
import type { Kysely } from 'kysely';
import { createApiClient } from '#core/admin/api-keys.ts';
import type { ApiScope, Database } from '#core/db/schema.ts';
import { type ApiDeps, createApiApp } from '../../lambdas/api/app.ts';

export function testSqsClient(endpoint = process.env.SQS_ENDPOINT): SQSClient {
  return new SQSClient({
    endpoint,
    region: process.env.AWS_REGION ?? 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
}

export function testQueueUrls() {
  return { high: process.env.HIGH_QUEUE_URL!, bulk: process.env.BULK_QUEUE_URL! };
}

export interface EventInput {
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: unknown;
  rawBody?: string;
}

export function apiEvent(input: EventInput): APIGatewayProxyEvent {
  const body = input.rawBody ?? (input.body === undefined ? null : JSON.stringify(input.body));
  return {
    resource: input.path,
    path: input.path,
    httpMethod: input.method,
    headers: { 'content-type': 'application/json', ...input.headers },
    multiValueHeaders: {},
    queryStringParameters: null,
    multiValueQueryStringParameters: null,
    pathParameters: null,
    stageVariables: null,
    body,
    isBase64Encoded: false,
    requestContext: {
      requestId: randomUUID(),
      identity: { sourceIp: '127.0.0.1' },
    } as APIGatewayProxyEvent['requestContext'],
  };
}

export async function createTestClient(
  db: Kysely<Database>,
  scopes: ApiScope[] = ['notifications:write', 'notifications:read'],
) {
  return createApiClient(db, { name: `test-${randomUUID()}`, scopes });
}

export function testApiApp(db: Kysely<Database>, overrides: Partial<ApiDeps> = {}) {
  const sqs = overrides.sqs ?? testSqsClient();
  return createApiApp({
    db,
    sqs,
    queue: { sqs, queueUrls: testQueueUrls() },
    now: () => new Date(),
    version: 'test',
    logger: new Logger({ serviceName: 'whatsapp-notif-test', logLevel: 'SILENT' }),
    metrics: new Metrics({ namespace: 'WhatsAppNotifTest', serviceName: 'test' }),
    ...overrides,
  });
}

let sequence = 0;

/** A valid Colombian mobile number unique to this test process, so parallel tests never share one. */
export function uniqueRecipient(): string {
  sequence += 1;
  const tail = String((process.pid * 1000 + sequence) % 10_000_000).padStart(7, '0');
  return `+57310${tail}`;
}
