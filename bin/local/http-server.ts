/**
 * The local stand-in for API Gateway: turns each HTTP request into a REST API proxy event, invokes
 * the function that owns the path, and writes its answer back.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import { localLambdaContext } from './lambda-context.ts';

export type ProxyHandler = (
  event: APIGatewayProxyEvent,
  context: Context,
) => Promise<APIGatewayProxyResult>;

export interface LocalRoute {
  /** Paths equal to this or below it go to the handler. */
  prefix: string;
  functionName: string;
  handler: ProxyHandler;
}

/** API Gateway's own payload limit; our functions enforce their tighter ones themselves. */
const MAX_PAYLOAD_BYTES = 10 * 1024 * 1024;

export function buildProxyEvent(
  request: IncomingMessage,
  body: Buffer,
  stage = 'local',
): APIGatewayProxyEvent {
  const url = new URL(request.url ?? '/', 'http://localhost');
  const headers: Record<string, string> = {};
  const multiValueHeaders: Record<string, string[]> = {};
  for (let i = 0; i < request.rawHeaders.length; i += 2) {
    const name = request.rawHeaders[i]!;
    const value = request.rawHeaders[i + 1]!;
    headers[name] = value;
    const list = multiValueHeaders[name] ?? [];
    list.push(value);
    multiValueHeaders[name] = list;
  }
  const query: Record<string, string> = {};
  const multiQuery: Record<string, string[]> = {};
  for (const [key, value] of url.searchParams) {
    query[key] = value;
    const list = multiQuery[key] ?? [];
    list.push(value);
    multiQuery[key] = list;
  }
  const textual = isTextual(headers);
  const now = Date.now();
  return {
    resource: url.pathname,
    path: url.pathname,
    httpMethod: request.method ?? 'GET',
    headers,
    multiValueHeaders,
    queryStringParameters: url.searchParams.size ? query : null,
    multiValueQueryStringParameters: url.searchParams.size ? multiQuery : null,
    pathParameters: null,
    stageVariables: null,
    body: body.length ? body.toString(textual ? 'utf8' : 'base64') : null,
    isBase64Encoded: body.length > 0 && !textual,
    requestContext: {
      accountId: '000000000000',
      apiId: 'local',
      authorizer: null,
      protocol: `HTTP/${request.httpVersion}`,
      httpMethod: request.method ?? 'GET',
      path: `/${stage}${url.pathname}`,
      stage,
      requestId: randomUUID(),
      requestTimeEpoch: now,
      resourceId: 'local',
      resourcePath: url.pathname,
      identity: {
        accessKey: null,
        accountId: null,
        apiKey: null,
        apiKeyId: null,
        caller: null,
        clientCert: null,
        cognitoAuthenticationProvider: null,
        cognitoAuthenticationType: null,
        cognitoIdentityId: null,
        cognitoIdentityPoolId: null,
        principalOrgId: null,
        sourceIp: request.socket.remoteAddress ?? '127.0.0.1',
        user: null,
        userAgent: request.headers['user-agent'] ?? null,
        userArn: null,
      },
    },
  };
}

function isTextual(headers: Record<string, string>): boolean {
  const type = Object.entries(headers).find(([k]) => k.toLowerCase() === 'content-type')?.[1];
  return !type || /json|text|x-www-form-urlencoded|xml/i.test(type);
}

export function startLocalHttpServer(
  routes: LocalRoute[],
  port: number,
  host = '127.0.0.1',
  onError: (error: unknown) => void = () => {},
): Promise<Server> {
  const sorted = [...routes].sort((a, b) => b.prefix.length - a.prefix.length);
  const server = createServer(async (request, response) => {
    try {
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of request) {
        size += (chunk as Buffer).length;
        if (size > MAX_PAYLOAD_BYTES) {
          response.writeHead(413, { 'content-type': 'application/json' });
          response.end(JSON.stringify({ message: 'Request Too Long' }));
          return;
        }
        chunks.push(chunk as Buffer);
      }
      const event = buildProxyEvent(request, Buffer.concat(chunks));
      const route = sorted.find(
        (r) => event.path === r.prefix || event.path.startsWith(`${r.prefix}/`) || r.prefix === '/',
      );
      if (!route) {
        response.writeHead(404, { 'content-type': 'application/json' });
        response.end(JSON.stringify({ message: 'Missing Authentication Token' }));
        return;
      }
      const result = await route.handler(event, localLambdaContext(route.functionName));
      const headers: Record<string, string | string[]> = {};
      for (const [k, v] of Object.entries(result.headers ?? {})) headers[k] = String(v);
      for (const [k, v] of Object.entries(result.multiValueHeaders ?? {}))
        headers[k] = v.map(String);
      response.writeHead(result.statusCode, headers);
      response.end(result.isBase64Encoded ? Buffer.from(result.body, 'base64') : result.body);
    } catch (error) {
      // What API Gateway answers when the integration itself fails.
      onError(error);
      if (!response.headersSent) response.writeHead(502, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ message: 'Internal server error' }));
    }
  });
  server.keepAliveTimeout = 65_000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}
