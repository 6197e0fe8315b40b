/**
 * Where callbacks may go: https only and public addresses only in AWS (checked at registration and
 * again on the addresses DNS returns at each post), http and loopback locally; no redirect
 * followed, the answer read only so far, a hard timeout.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import { describe, expect, it, onTestFinished } from 'vitest';
import { postCallback } from '#core/callbacks/post-callback.ts';
import { checkCallbackUrl, isPublicAddress } from '#core/callbacks/safe-target.ts';

const STRICT = { strict: true };

async function server(handler: Parameters<typeof createServer>[1]) {
  const s = createServer(handler);
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  onTestFinished(
    () =>
      new Promise<void>((resolve) => {
        s.close(() => resolve());
        s.closeAllConnections();
      }),
  );
  return `http://127.0.0.1:${(s.address() as AddressInfo).port}/hook`;
}

describe('checkCallbackUrl', () => {
  it('refuses http, credentials and private or reserved literals in AWS', () => {
    for (const url of [
      'http://example.com/hook',
      'https://user:pw@example.com/hook',
      'https://127.0.0.1/hook',
      'https://10.1.2.3/hook',
      'https://169.254.169.254/latest/meta-data',
      'https://[::1]/hook',
      'https://[fd00::1]/hook',
      'https://localhost/hook',
      'ftp://example.com',
      'not a url',
    ]) {
      expect(() => checkCallbackUrl(url, STRICT), url).toThrow();
    }
    expect(checkCallbackUrl('https://example.com/hooks?x=1', STRICT).host).toBe('example.com');
  });

  it('allows http and loopback locally', () => {
    expect(checkCallbackUrl('http://127.0.0.1:8080/hook', { strict: false }).port).toBe('8080');
  });
});

describe('isPublicAddress', () => {
  it('refuses every address in 10/8, 127/8, 169.254/16, 172.16/12 and 192.168/16', () => {
    const inRange = (first: number, second: [number, number]) =>
      fc
        .tuple(fc.integer({ min: second[0], max: second[1] }), fc.nat(255), fc.nat(255))
        .map(([b, c, d]) => `${first}.${b}.${c}.${d}`);
    fc.assert(
      fc.property(
        fc.oneof(
          inRange(10, [0, 255]),
          inRange(127, [0, 255]),
          inRange(169, [254, 254]),
          inRange(172, [16, 31]),
          inRange(192, [168, 168]),
        ),
        (address) => !isPublicAddress(address) && !isPublicAddress(`::ffff:${address}`),
      ),
    );
  });

  it('accepts ordinary public addresses', () => {
    expect(['8.8.8.8', '52.94.236.248', '2606:4700::1111'].map(isPublicAddress)).toEqual([
      true,
      true,
      true,
    ]);
  });
});

describe('postCallback', () => {
  it('refuses, in AWS mode, a host whose DNS answer is loopback, before connecting', async () => {
    let reached = false;
    const url = await server((_req, res) => {
      reached = true;
      res.end();
    });
    const port = new URL(url).port;
    const result = await postCallback(
      `https://localhost:${port}/hook`,
      '{}',
      {},
      {
        ...STRICT,
        timeoutMs: 1_000,
        maxResponseBytes: 1024,
      },
    );
    expect(result.error).toMatch(/private or reserved/);
    expect(reached).toBe(false);
  });

  it('does not follow a redirect', async () => {
    let hits = 0;
    const url = await server((_req, res) => {
      hits += 1;
      res.writeHead(307, { location: 'http://169.254.169.254/' });
      res.end();
    });
    const result = await postCallback(
      url,
      '{}',
      {},
      { strict: false, timeoutMs: 1_000, maxResponseBytes: 1024 },
    );
    expect(result).toMatchObject({ statusCode: 307, error: 'redirect not followed' });
    expect(hits).toBe(1);
  });

  it('stops reading a huge answer and still counts a 2xx as delivered', async () => {
    const url = await server((_req, res) => {
      res.writeHead(200);
      const chunk = Buffer.alloc(64 * 1024, 'x');
      const pump = () => {
        while (res.write(chunk)) {}
        res.once('drain', pump);
      };
      pump();
    });
    const result = await postCallback(
      url,
      '{}',
      {},
      { strict: false, timeoutMs: 2_000, maxResponseBytes: 4096 },
    );
    expect(result).toMatchObject({ statusCode: 200, error: null });
    expect(result.latencyMs).toBeLessThan(2_000);
  });

  it('gives up on a receiver that does not answer within the timeout', async () => {
    const url = await server(() => {});
    const result = await postCallback(
      url,
      '{}',
      {},
      { strict: false, timeoutMs: 150, maxResponseBytes: 1024 },
    );
    expect(result).toMatchObject({ statusCode: null, error: 'timeout after 150 ms' });
  });
});
