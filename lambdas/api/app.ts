/**
 * The API function's adapter: it serves the route list (routes/index.ts) on the router, running
 * for each request the steps every route shares — the scope check, the content type, parsing the
 * declared headers, path, query and body — and one error handler for the error shape.
 *
 * Router: the hand-written one in #core/platform/http.ts, kept over Powertools event-handler's
 * REST `Router` after measuring both (2026-11, Node 24, this machine). Bundle: Powertools' router
 * adds about 26 KB minified, well inside the 1 MB budget. Latency: routing and answering one GET
 * with a path parameter in-process took 1.3–2.4 µs with ours and 24–33 µs with Powertools, which
 * turns every API Gateway event into a Web `Request` and the answer back from a `Response`; both
 * are small beside a database round trip, so latency did not decide it. What did: the routes'
 * answers are pinned by the API tests (405 for a known path with the wrong method, the error
 * shape, base64 bodies, hostile paths as 4xx — Powertools answers a badly percent-encoded path
 * with its own 500), and with the declaration, scope check and error handler now written once,
 * the router is ~40 lines that only match paths. Swapping it later touches this file only.
 */
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { authenticateApiKey } from '#core/admin/api-keys.ts';
import type { ApiScope } from '#core/db/schema.ts';
import { writeAudit } from '#core/notifications/audit.ts';
import { DenialLedger, recordDenial } from '#core/notifications/denials.ts';
import {
  errorResponse,
  HttpError,
  header,
  type Route,
  Router,
  rawBody,
} from '#core/platform/http.ts';
import { pickRequestId } from '#core/platform/ids.ts';
import { maskPhonesIn } from '#core/platform/phone.ts';
import { reportError } from '#core/platform/sentry.ts';
import {
  type ApiCaller,
  type ApiDeps,
  type ApiRoute,
  parseInput,
  parseJsonBody,
  type RequestContext,
} from './route.ts';
import { apiRoutes } from './routes/index.ts';

export type { ApiDeps, RequestContext } from './route.ts';

/** The denial tally of this execution environment, for deps that bring none (the handler's). */
const fallbackLedger = new DenialLedger();

/** Reasons where nothing proves who called: the presented text matched no stored key. */
const ANONYMOUS_DENIALS = new Set(['missing', 'malformed', 'unknown']);

/**
 * The scope check: authenticates the X-API-Key and checks its scope. A caller no key proves is
 * counted (metric, and a sampled audit entry as `anonymous`, see denials.ts), never recorded under
 * a prefix or request id it chose; a real key that is refused (revoked) or lacks the scope is
 * audited under that key. `admin` implies the notification scopes: an admin key can create a key
 * with them anyway, and `ops send-test` sends with the operator's admin key.
 */
async function requireScope(ctx: RequestContext, scope: ApiScope): Promise<ApiCaller> {
  const { deps, event } = ctx;
  const auth = await authenticateApiKey(deps.db, header(event, 'x-api-key'), deps.now());
  if (!auth.ok) {
    if (ANONYMOUS_DENIALS.has(auth.reason)) {
      await recordDenial(
        { ...deps, ledger: deps.denials ?? fallbackLedger },
        {
          action: 'auth.denied',
          reason: auth.reason,
          gatewayRequestId: event.requestContext.requestId ?? null,
          sourceIp: ctx.sourceIp,
          method: event.httpMethod,
          path: event.path,
        },
      );
      deps.logger.warn('api key rejected', { reason: auth.reason });
    } else {
      await writeAudit(deps.db, {
        actor: `key:${auth.prefix}`,
        action: 'auth.denied',
        outcome: 'denied',
        requestId: event.requestContext.requestId ?? null,
        sourceIp: ctx.sourceIp,
        detail: { reason: auth.reason, method: event.httpMethod, path: maskPhonesIn(event.path) },
      });
      deps.logger.warn('api key rejected', { reason: auth.reason, keyPrefix: auth.prefix });
    }
    if (auth.reason === 'expired') {
      throw new HttpError(401, 'api_key_expired', 'this API key has expired; ask for a new one');
    }
    throw new HttpError(401, 'unauthorized', 'a valid X-API-Key header is required');
  }
  if (!auth.scopes.includes(scope) && !auth.scopes.includes('admin')) {
    await writeAudit(deps.db, {
      actor: `key:${auth.prefix}`,
      action: 'auth.forbidden',
      outcome: 'denied',
      requestId: ctx.requestId,
      sourceIp: ctx.sourceIp,
      detail: { required: scope, method: event.httpMethod, path: event.path },
    });
    deps.logger.warn('api key lacks scope', { keyPrefix: auth.prefix, required: scope });
    throw new HttpError(403, 'forbidden', `this key does not have the ${scope} scope`);
  }
  ctx.client = {
    clientId: auth.clientId,
    prefix: auth.prefix,
    scopes: auth.scopes,
    limits: auth.limits,
  };
  deps.logger.appendKeys({ keyPrefix: auth.prefix });
  return ctx.client;
}

/**
 * A body is JSON. A request that says it sends something else is refused before parsing; one that
 * names no type is read as JSON, as it always was (curl without -H, older clients).
 */
function requireJsonContent(event: APIGatewayProxyEvent): void {
  const type = header(event, 'content-type');
  if (type === undefined || type.trim() === '' || rawBody(event).length === 0) return;
  const media = type.split(';')[0]!.trim().toLowerCase();
  if (media === 'application/json' || /^application\/[\w.+-]+\+json$/.test(media)) return;
  throw new HttpError(415, 'unsupported_media_type', 'the body must be application/json');
}

/** The declared headers, looked up ignoring case, as HTTP does. */
function declaredHeaders(event: APIGatewayProxyEvent, route: ApiRoute): Record<string, string> {
  const names = Object.keys(route.request?.headers?.shape ?? {});
  const found: Record<string, string> = {};
  for (const name of names) {
    const value = header(event, name);
    if (value !== undefined) found[name] = value;
  }
  return found;
}

/** The steps every route shares, in the order the answers depend on, then its handler. */
async function serve(
  route: ApiRoute,
  ctx: RequestContext,
  params: Record<string, string>,
): Promise<APIGatewayProxyResult> {
  const { event } = ctx;
  const client = route.scope === 'public' ? undefined : await requireScope(ctx, route.scope);
  const request = route.request ?? {};
  if (request.body) requireJsonContent(event);
  const input = {
    ctx,
    deps: ctx.deps,
    client,
    headers: request.headers
      ? parseInput(request.headers, declaredHeaders(event, route))
      : undefined,
    params: request.params ? parseInput(request.params, params) : undefined,
    query: request.query
      ? parseInput(request.query, event.queryStringParameters ?? {}, 'parameter')
      : undefined,
    body: request.body ? parseJsonBody(event, request.body) : undefined,
  };
  return route.handle(input as Parameters<ApiRoute['handle']>[0]);
}

/**
 * Errors only a client's input causes, when a value slipped past the route's schema: text that is
 * not valid percent-encoding (URIError), or a value PostgreSQL refuses as data (SQLSTATE class 22:
 * out of range, bad text representation, bad byte sequence). They are the client's 400, not a 500
 * that pages on-call, and are still logged so the schema gets the bound it lacked.
 */
function clientCaused(error: unknown): HttpError | undefined {
  if (error instanceof URIError) {
    return new HttpError(400, 'validation_error', 'the request is not valid percent-encoding');
  }
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && /^22[0-9A-Z]{3}$/.test(code)) {
    return new HttpError(
      400,
      'validation_error',
      'a value in the request is out of range or malformed',
    );
  }
  return undefined;
}

/** The one error handler: an HttpError is answered in the error shape, anything else is a 500. */
function answerError(error: unknown, ctx: RequestContext): APIGatewayProxyResult {
  if (error instanceof HttpError) return errorResponse(error, ctx.requestId);
  const client = clientCaused(error);
  if (client) {
    ctx.deps.logger.warn('request refused after validation: a route schema lacks a bound', {
      errorName: error instanceof Error ? error.name : 'error',
      sqlState: (error as { code?: unknown }).code,
      method: ctx.event.httpMethod,
      path: ctx.event.path,
    });
    return errorResponse(client, ctx.requestId);
  }
  ctx.deps.logger.error('request failed', {
    error: error instanceof Error ? error : String(error),
  });
  reportError(error, {
    requestId: ctx.requestId,
    method: ctx.event.httpMethod,
    path: ctx.event.path,
  });
  return errorResponse(
    new HttpError(500, 'internal_error', 'something went wrong on our side; retry later'),
    ctx.requestId,
  );
}

export function createApiApp(
  deps: ApiDeps,
  routes: readonly ApiRoute[] = apiRoutes,
): (event: APIGatewayProxyEvent) => Promise<APIGatewayProxyResult> {
  const router = new Router<RequestContext>(
    routes.map(
      (route): Route<RequestContext> => ({
        method: route.method,
        path: route.path,
        handle: (ctx, params) => serve(route, ctx, params),
      }),
    ),
  );
  return async (event) => {
    const requestId = pickRequestId(header(event, 'x-request-id'), event.requestContext.requestId);
    deps.logger.appendKeys({ requestId });
    const ctx: RequestContext = {
      event,
      requestId,
      sourceIp: event.requestContext.identity?.sourceIp ?? null,
      deps,
    };
    try {
      const matched = router.match(event.httpMethod, event.path);
      if (matched instanceof HttpError) throw matched;
      const response = await matched.handle(ctx, matched.params);
      response.headers = { ...response.headers, 'x-request-id': requestId };
      return response;
    } catch (error) {
      return answerError(error, ctx);
    } finally {
      deps.logger.removeKeys(['requestId', 'keyPrefix']);
    }
  };
}
