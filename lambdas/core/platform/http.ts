/**
 * The HTTP edge shared by the API and webhook functions: one error shape
 * `{error: {code, message, field?, requestId}}`, JSON answers, and a small method + path router.
 */
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { maskPhonesIn } from '#core/platform/phone.ts';

export class HttpError extends Error {
  readonly status: number;
  readonly code: string;
  readonly field: string | undefined;
  constructor(status: number, code: string, message: string, field?: string) {
    super(message);
    this.name = 'HttpError';
    this.status = status;
    this.code = code;
    this.field = field;
  }
}

export function jsonResponse(
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): APIGatewayProxyResult {
  return {
    statusCode: status,
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  };
}

/** An error's code, message and field, its text masked as log lines are: no answer echoes a number. */
export function errorFields(error: { code: string; message: string; field?: string | undefined }) {
  return {
    code: error.code,
    message: maskPhonesIn(error.message),
    ...(error.field ? { field: maskPhonesIn(error.field) } : {}),
  };
}

/** The error shape: `{error: {code, message, field?, requestId}}`. */
export function errorResponse(error: HttpError, requestId: string): APIGatewayProxyResult {
  return jsonResponse(
    error.status,
    { error: { ...errorFields(error), requestId } },
    { 'x-request-id': requestId },
  );
}

/** Header lookup that ignores case, as HTTP does (API Gateway passes them as the client sent them). */
export function header(event: APIGatewayProxyEvent, name: string): string | undefined {
  const wanted = name.toLowerCase();
  for (const [key, value] of Object.entries(event.headers ?? {})) {
    if (key.toLowerCase() === wanted && value !== undefined) return value;
  }
  return undefined;
}

export function rawBody(event: APIGatewayProxyEvent): Buffer {
  if (!event.body) return Buffer.alloc(0);
  return Buffer.from(event.body, event.isBase64Encoded ? 'base64' : 'utf8');
}

export interface RouteMatch<C> {
  handle: (ctx: C, params: Record<string, string>) => Promise<APIGatewayProxyResult>;
  params: Record<string, string>;
}

export interface Route<C> {
  method: string;
  /** A path such as `/v1/notifications/{id}`. */
  path: string;
  handle: (ctx: C, params: Record<string, string>) => Promise<APIGatewayProxyResult>;
}

interface CompiledRoute<C> extends Route<C> {
  regex: RegExp;
  names: string[];
}

export class Router<C> {
  private readonly routes: CompiledRoute<C>[];

  constructor(routes: Route<C>[]) {
    this.routes = routes.map((route) => {
      const names: string[] = [];
      const pattern = route.path.replace(/\{(\w+)\}/g, (_m, name: string) => {
        names.push(name);
        return '([^/]+)';
      });
      return { ...route, regex: new RegExp(`^${pattern}/?$`), names };
    });
  }

  /** The route for a request, or an HttpError (404 for an unknown path, 405 for a wrong method). */
  match(method: string, path: string): RouteMatch<C> | HttpError {
    let pathKnown = false;
    for (const route of this.routes) {
      const found = route.regex.exec(path);
      if (!found) continue;
      pathKnown = true;
      if (route.method !== method) continue;
      const params: Record<string, string> = {};
      for (const [i, name] of route.names.entries()) {
        const decoded = decodePathSegment(found[i + 1] ?? '');
        if (decoded === undefined) {
          return new HttpError(
            400,
            'validation_error',
            `${name} is not valid percent-encoding`,
            name,
          );
        }
        params[name] = decoded;
      }
      return { handle: route.handle, params };
    }
    return pathKnown
      ? new HttpError(405, 'method_not_allowed', `${method} is not allowed on this path`)
      : new HttpError(404, 'not_found', 'no such route');
  }
}

/** A path segment decoded, or undefined when its percent-encoding is broken (`%E0%A4%A`): a 400, not a 500. */
function decodePathSegment(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}
