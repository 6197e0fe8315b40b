/**
 * The local stack's SQS emulator listens on loopback only: fauxqs binds 0.0.0.0 on its own, the
 * guard moves it to 127.0.0.1, and a server that still ends up elsewhere stops the start with a
 * clear error instead of running open to the network.
 */
import { existsSync, readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { networkInterfaces } from 'node:os';
import { describe, expect, it } from 'vitest';
import { listenOnLoopback, NotLoopbackError, requireLoopback } from '../../bin/local/loopback.ts';
import { startLocalSqs } from '../../bin/local/sqs.ts';

/** Whether a TCP connection to host:port is accepted. */
function connects(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port, timeout: 1_000 });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

describe('the local SQS emulator', () => {
  it('listens on 127.0.0.1 only, unreachable on any other address of this machine', async () => {
    const queues = await startLocalSqs();
    try {
      expect(queues.listenAddresses.length).toBeGreaterThan(0);
      const port = Number(new URL(queues.endpoint).port);
      expect(new Set(queues.listenAddresses)).toEqual(new Set(['127.0.0.1']));
      // Independently of the guard's own report: the kernel's tables of listening sockets.
      if (existsSync('/proc/net/tcp')) {
        const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
        const listening = (file: string) =>
          existsSync(file)
            ? readFileSync(file, 'utf8')
                .split('\n')
                .map((line) => line.trim().split(/\s+/))
                // Column 3 is the state: 0A is LISTEN.
                .filter((cols) => cols[1]?.endsWith(`:${hexPort}`) && cols[3] === '0A')
                .map((cols) => cols[1])
            : [];
        expect(listening('/proc/net/tcp')).toEqual([`0100007F:${hexPort}`]);
        expect(listening('/proc/net/tcp6')).toEqual([]);
      }
      expect(await connects('127.0.0.1', port)).toBe(true);
      const others = Object.values(networkInterfaces())
        .flat()
        .filter((a) => a && !a.internal && a.family === 'IPv4')
        .map((a) => a!.address);
      for (const address of others) expect(await connects(address, port)).toBe(false);
    } finally {
      await queues.stop();
    }
  });

  it('moves a server that asks for every interface onto loopback', async () => {
    const server = http.createServer((_req, res) => res.end('ok'));
    const { addresses } = await listenOnLoopback(
      'a test server',
      () =>
        new Promise<http.Server>((resolve) =>
          server.listen({ port: 0, host: '0.0.0.0' }, () => resolve(server)),
        ),
      (s) => new Promise((resolve) => s.close(resolve)),
    );
    try {
      expect(addresses).toEqual(['127.0.0.1']);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('fails closed, stopping what started, when a server is bound anywhere else', async () => {
    let stopped = false;
    // A start that listened nowhere the guard saw: an unknown bind is refused like a wide one.
    const start = listenOnLoopback(
      'a test server',
      async () => ({ fake: true }),
      async () => {
        stopped = true;
      },
    );
    await expect(start).rejects.toBeInstanceOf(NotLoopbackError);
    expect(stopped).toBe(true);
    expect(() => requireLoopback('the SQS emulator (fauxqs)', ['0.0.0.0'])).toThrow(
      /the SQS emulator \(fauxqs\) listens on 0\.0\.0\.0, not on loopback/,
    );
    expect(() => requireLoopback('x', ['127.0.0.1', '::1'])).not.toThrow();
  });
});
