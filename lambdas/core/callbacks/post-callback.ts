/**
 * One HTTP post of a callback: a hard timeout on the whole exchange, no redirects followed (a 3xx
 * is a failure), only the first few KiB of the answer read, and in AWS the connection goes only to
 * checked public addresses. Returns what happened; never throws.
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP } from 'node:net';
import { guardedLookup, isPublicAddress, type TargetPolicy } from '#core/callbacks/safe-target.ts';

export interface PostOptions extends TargetPolicy {
  timeoutMs: number;
  /** The most of the answer read; the rest is dropped with the connection. */
  maxResponseBytes: number;
}

export interface PostResult {
  statusCode: number | null;
  latencyMs: number;
  /** Why it did not count as delivered (timeout, refused, non-2xx); null when it did. */
  error: string | null;
}

export type PostCallback = (
  url: string,
  body: string,
  headers: Record<string, string>,
) => Promise<PostResult>;

export function createPostCallback(options: PostOptions): PostCallback {
  return (url, body, headers) => postCallback(url, body, headers, options);
}

export function postCallback(
  rawUrl: string,
  body: string,
  headers: Record<string, string>,
  options: PostOptions,
): Promise<PostResult> {
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  return new Promise((resolve) => {
    let settled = false;
    const finish = (statusCode: number | null, error: string | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ statusCode, latencyMs: elapsed(), error });
    };
    let url: URL;
    try {
      url = new URL(rawUrl);
    } catch {
      return finish(null, 'invalid url');
    }
    if (options.strict && url.protocol !== 'https:') return finish(null, 'url must use https');
    const host = url.hostname.replace(/^\[|\]$/g, '');
    // Node skips `lookup` for an IP literal, so a literal is checked here.
    if (options.strict && isIP(host) && !isPublicAddress(host)) {
      return finish(null, 'private or reserved address');
    }
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = send(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'content-length': String(Buffer.byteLength(body)),
        'user-agent': 'whatsapp-notif-callbacks',
        ...headers,
      },
      ...(options.strict ? { lookup: guardedLookup } : {}),
      agent: false,
    });
    const timer = setTimeout(() => {
      finish(null, `timeout after ${options.timeoutMs} ms`);
      req.destroy();
    }, options.timeoutMs);
    req.on('error', (error) => finish(null, error.message.slice(0, 200)));
    req.on('response', (res) => {
      const status = res.statusCode ?? 0;
      let read = 0;
      res.on('data', (chunk: Buffer) => {
        read += chunk.length;
        // Enough to know the answer came; a receiver streaming megabytes is cut off here.
        if (read > options.maxResponseBytes) {
          res.destroy();
          done();
        }
      });
      const done = () => {
        if (status >= 200 && status < 300) finish(status, null);
        else if (status >= 300 && status < 400) finish(status, 'redirect not followed');
        else finish(status, `answered ${status}`);
      };
      res.on('end', done);
      res.on('error', done);
    });
    req.end(body);
  });
}
