/** Builders for API tests: API Gateway proxy events, clients with keys, and the app on the real local parts. */
import { randomUUID } from 'node:crypto';
import { SQSClient } from '@aws-sdk/client-sqs';
import type { APIGatewayProxyEvent } from 'aws-lambda';
import type { Kysely } from 'kysely';
import { createApiClient } from '#core/admin/api-keys.ts';
import type { ApiScope, Database } from '#core/db/schema.ts';
import { type ApiDeps, createApiApp } from '../../lambdas/api/app.ts';
import { silentLogger, testMetrics } from './observability.ts';

export { uniqueRecipient } from './phones.ts';

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

export function testApiApp(
  db: Kysely<Database>,
  overrides: Partial<ApiDeps> = {},
  routes?: Parameters<typeof createApiApp>[1],
) {
  const sqs = overrides.sqs ?? testSqsClient();
  return createApiApp(
    {
      db,
      sqs,
      queue: { sqs, queueUrls: testQueueUrls() },
      now: () => new Date(),
      version: 'test',
      logger: silentLogger(),
      metrics: testMetrics(),
      ...overrides,
    },
    routes,
  );
}
