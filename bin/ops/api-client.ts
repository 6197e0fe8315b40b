/** The ops CLI's HTTP client for the service's API: the admin key on every call, errors in the service's shape. */
import { randomBytes } from 'node:crypto';
import type { Target } from './target.ts';

/** The service answered with an error (`{error: {code, message, field?, requestId}}`). */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly field: string | undefined;
  readonly requestId: string | undefined;
  constructor(status: number, code: string, message: string, field?: string, requestId?: string) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.field = field;
    this.requestId = requestId;
  }
}

export interface ApiClient {
  /** Every call of one CLI run carries this X-Request-ID, so the audit log ties them together. */
  readonly requestId: string;
  get<T>(path: string, query?: Record<string, string | number | undefined>): Promise<T>;
  post<T>(path: string, body?: unknown, headers?: Record<string, string>): Promise<T>;
  put<T>(path: string, body: unknown): Promise<T>;
  delete<T>(path: string): Promise<T>;
}

export function createApiClient(target: Target, timeoutMs = 30_000): ApiClient {
  const base = target.apiUrl.endsWith('/') ? target.apiUrl : `${target.apiUrl}/`;
  const requestId = `ops-${randomBytes(6).toString('hex')}`;

  async function call<T>(
    method: string,
    path: string,
    options: {
      body?: unknown;
      query?: Record<string, string | number | undefined>;
      headers?: Record<string, string>;
    } = {},
  ): Promise<T> {
    const url = new URL(path.replace(/^\//, ''), base);
    for (const [key, value] of Object.entries(options.query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    let response: Response;
    try {
      response = await fetch(url, {
        method,
        headers: {
          accept: 'application/json',
          'x-api-key': target.apiKey,
          'x-request-id': requestId,
          'user-agent': 'whatsapp-notif-ops',
          ...(options.body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...options.headers,
        },
        ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (error) {
      const cause = (error as { cause?: { code?: string } }).cause?.code;
      const reason = cause ?? (error instanceof Error ? error.name : 'error');
      throw new ApiError(
        0,
        'unreachable',
        `cannot reach ${url.origin} (${target.source}): ${reason}`,
      );
    }
    const text = await response.text();
    let body: unknown;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      body = undefined;
    }
    if (!response.ok) {
      const e = (
        body as { error?: { code?: string; message?: string; field?: string; requestId?: string } }
      )?.error;
      throw new ApiError(
        response.status,
        e?.code ?? `http_${response.status}`,
        e?.message ?? `HTTP ${response.status} from ${method} ${url.pathname}`,
        e?.field,
        e?.requestId ?? response.headers.get('x-request-id') ?? undefined,
      );
    }
    return body as T;
  }

  return {
    requestId,
    get: (path, query) => call('GET', path, query ? { query } : {}),
    post: (path, body, headers) =>
      call('POST', path, {
        ...(body !== undefined ? { body } : {}),
        ...(headers ? { headers } : {}),
      }),
    put: (path, body) => call('PUT', path, { body }),
    delete: (path) => call('DELETE', path),
  };
}
