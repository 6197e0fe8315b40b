/**
 * What a route is: one object with its method, path, scope, request and response schemas and its
 * handler. The adapter (app.ts) serves it and the generator (openapi.ts) documents it, so the two
 * cannot drift; the request parsing every route shares (zod issues as `{field, message}`, JSON
 * bodies, the Idempotency-Key check) is written here once.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import type { Metrics } from '@aws-lambda-powertools/metrics';
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import type { Kysely } from 'kysely';
import * as z from 'zod';
import type { ApiScope, Database } from '#core/db/schema.ts';
import {
  IDEMPOTENCY_KEY,
  MAX_BODY_BYTES,
  type Priority,
} from '#core/model/notification-request.ts';
import type { ClientLimits } from '#core/notifications/client-quota.ts';
import type { DenialLedger } from '#core/notifications/denials.ts';
import type { QueueTargets } from '#core/notifications/enqueue.ts';
import { HttpError, rawBody } from '#core/platform/http.ts';
import { findUnstorableJson } from '#core/platform/json-input.ts';
import type { GraphClient } from '#core/whatsapp/graph-client.ts';

export interface ApiDeps {
  db: Kysely<Database>;
  sqs: SQSClient;
  queue: QueueTargets;
  now: () => Date;
  version: string;
  logger: Logger;
  metrics: Metrics;
  /** The DLQs, for the depths in /v1/admin/status. */
  deadLetterQueueUrls?: Partial<Record<Priority, string>>;
  /** The configured sender phone number id (WHATSAPP_PHONE_NUMBER_ID): panic mode's default sender. */
  senderId?: string;
  /** Locally only: the SQS emulator, reported to the ops CLI for DLQ redrives. */
  sqsEndpoint?: string;
  /** The WABA (WHATSAPP_WABA_ID) whose template registry acceptance checks; none: no check. */
  wabaId?: string;
  /** The Graph API client for the admin template and token routes, built on first use. */
  whatsapp?: () => Promise<GraphClient>;
  /** Anonymous 401s counted since the last sampled audit entry; one per environment if absent. */
  denials?: DenialLedger;
  /** Callback URLs: strict (https, public addresses) unless the local stack or a test says not. */
  callbackTargets?: { strict: boolean };
}

/** The calling key, once its X-API-Key passed the scope check. */
export interface ApiCaller {
  clientId: string;
  prefix: string;
  scopes: ApiScope[];
  /** The client's own limits (rate, daily quota, highest priority), read with the key. */
  limits: ClientLimits;
}

export interface RequestContext {
  event: APIGatewayProxyEvent;
  requestId: string;
  sourceIp: string | null;
  deps: ApiDeps;
  /** Set by the scope check; public routes have none. */
  client?: ApiCaller;
}

/** A request body: its validating schema, the one the document shows when they differ, and limits. */
export interface BodySpec<S extends z.ZodType = z.ZodType> {
  schema: S;
  /** What the OpenAPI document shows, when validation is done in two steps (the batch). */
  document?: z.ZodType;
  maxBytes?: number;
  /** No body at all reads as `{}`. */
  optional?: boolean;
}

export interface RequestSpec {
  params?: z.ZodType;
  query?: z.ZodType;
  /** Header names as documented; looked up ignoring case. */
  headers?: z.ZodObject;
  body?: BodySpec;
}

/** Headers an answer can carry, each documented once in openapi.ts. */
export type ResponseHeaderName =
  | 'Location'
  | 'Idempotent-Replayed'
  | 'Cache-Control'
  | 'Retry-After'
  | 'RateLimit'
  | 'RateLimit-Policy';

export interface ResponseSpec {
  description: string;
  /** An error status takes the error shape; no schema means the answer is not JSON we describe. */
  schema?: z.ZodType;
  headers?: readonly ResponseHeaderName[];
}

type Out<S> = S extends z.ZodType ? z.output<S> : undefined;

export interface RouteInput<R extends RequestSpec, S extends ApiScope | 'public'> {
  ctx: RequestContext;
  deps: ApiDeps;
  client: S extends 'public' ? undefined : ApiCaller;
  params: Out<R['params']>;
  query: Out<R['query']>;
  headers: Out<R['headers']>;
  body: R['body'] extends BodySpec<infer B> ? z.output<B> : undefined;
}

export interface ApiRoute<
  R extends RequestSpec = RequestSpec,
  S extends ApiScope | 'public' = ApiScope | 'public',
> {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** A path such as `/v1/notifications/{id}`. */
  path: string;
  operationId: string;
  summary: string;
  tag: 'health' | 'notifications' | 'admin';
  /** The scope the X-API-Key needs (`admin` implies the notification scopes), or `public`. */
  scope: S;
  request?: R;
  /**
   * The answers this route itself gives. The adapter adds what every route can answer: 400 when
   * it parses input, 401/403 when scoped, 415 when it takes a body, 429 and 500.
   */
  responses: Record<number, ResponseSpec>;
  handle: (input: RouteInput<R, S>) => Promise<APIGatewayProxyResult>;
}

/** Declares a route with its types inferred from its schemas; the list holds them erased. */
export function defineRoute<R extends RequestSpec, S extends ApiScope | 'public'>(
  route: ApiRoute<R, S>,
): ApiRoute {
  return route as unknown as ApiRoute;
}

// ------------------------------------------------------------------ parsing, written once

/**
 * The first issue of a failed parse as a field and a message; an unknown field is named, not
 * echoed as a value. `noun` is how an unknown key is called: a body has fields, a query parameters.
 */
export function describeIssue(
  error: z.ZodError,
  prefix: readonly string[] = [],
  noun: 'field' | 'parameter' = 'field',
) {
  const issue = error.issues[0]!;
  const path = [...prefix, ...issue.path.map(String)];
  if (issue.code === 'unrecognized_keys') path.push(issue.keys[0] ?? '');
  const field = path.join('.') || undefined;
  const message =
    issue.code === 'unrecognized_keys' ? `unknown ${noun} ${path.join('.')}` : issue.message;
  return { field, message };
}

/** Parses input against a schema; a failure is a 400 naming the field, and nothing is written. */
export function parseInput<T extends z.ZodType>(
  schema: T,
  input: unknown,
  noun: 'field' | 'parameter' = 'field',
): z.output<T> {
  const result = schema.safeParse(input);
  if (!result.success) {
    const { field, message } = describeIssue(result.error, [], noun);
    throw new HttpError(400, 'validation_error', message, field);
  }
  return result.data;
}

/** Parses a JSON body against a schema: size, JSON syntax, storable values, then the schema. */
export function parseJsonBody<T extends z.ZodType>(
  event: APIGatewayProxyEvent,
  spec: BodySpec<T>,
): z.output<T> {
  let raw = rawBody(event);
  if (raw.length === 0 && spec.optional) raw = Buffer.from('{}');
  const maxBytes = spec.maxBytes ?? MAX_BODY_BYTES;
  if (raw.length > maxBytes) {
    throw new HttpError(400, 'body_too_large', `the body is larger than ${maxBytes} bytes`);
  }
  let json: unknown;
  try {
    json = JSON.parse(raw.toString('utf8'));
  } catch {
    throw new HttpError(400, 'invalid_json', 'the body is not valid JSON');
  }
  const unstorable = findUnstorableJson(json);
  if (unstorable) {
    const where = unstorable.field ?? 'the body';
    throw new HttpError(
      400,
      'validation_error',
      `${where} ${unstorable.message}`,
      unstorable.field,
    );
  }
  return parseInput(spec.schema, json);
}

/** An idempotency key, as the header or as a batch item's field: 1 to 255 visible ASCII characters. */
export function idempotencyKeySchema(name: string) {
  const message = `${name} must be 1 to 255 visible ASCII characters`;
  return z.string({ error: message }).regex(IDEMPOTENCY_KEY, message).optional();
}

/** The actor the audit log records for a change made with this key. */
export const actorOf = (client: Pick<ApiCaller, 'prefix'>) => `key:${client.prefix}`;
