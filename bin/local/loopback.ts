/**
 * Keeps the local stack's SQS emulator on loopback. fauxqs 2.x passes `host: "0.0.0.0"` to its
 * server whatever it is given (its `host` option only names the host in queue URLs), which would
 * let anyone on the same network read and inject queue messages. `listenOnLoopback` rewrites a
 * wildcard bind to 127.0.0.1 while the emulator starts, then checks every server that started and
 * fails closed, stopping the emulator, if one is bound anywhere else.
 */
import net from 'node:net';

const WILDCARDS = new Set([undefined, '', '0.0.0.0', '::', '::0']);
const LOOPBACK = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1']);

export class NotLoopbackError extends Error {
  constructor(what: string, address: string) {
    super(
      `${what} listens on ${address}, not on loopback (127.0.0.1): it would be reachable from ` +
        'other machines, so the local stack refuses to run it. The pinned fauxqs version may have ' +
        'changed how it binds; see bin/local/loopback.ts.',
    );
    this.name = 'NotLoopbackError';
  }
}

/** Throws unless every address is a loopback one. */
export function requireLoopback(what: string, addresses: readonly string[]): void {
  if (addresses.length === 0) throw new NotLoopbackError(what, 'an unknown address');
  for (const address of addresses) {
    if (!LOOPBACK.has(address)) throw new NotLoopbackError(what, address);
  }
}

type Listen = (...args: unknown[]) => net.Server;

/**
 * Runs `start` with wildcard binds rewritten to 127.0.0.1, then checks the servers it started. On
 * a server bound elsewhere, `stop` is called and a NotLoopbackError thrown.
 */
export async function listenOnLoopback<T>(
  what: string,
  start: () => Promise<T>,
  stop: (started: T) => Promise<unknown>,
): Promise<{ started: T; addresses: string[] }> {
  const original = net.Server.prototype.listen as unknown as Listen;
  const servers: net.Server[] = [];
  (net.Server.prototype as unknown as { listen: Listen }).listen = function (
    this: net.Server,
    ...args: unknown[]
  ) {
    servers.push(this);
    const [first, second] = args;
    if (first && typeof first === 'object' && !('path' in first && first.path)) {
      const options = first as { host?: string };
      if (WILDCARDS.has(options.host)) args[0] = { ...options, host: '127.0.0.1' };
    } else if (typeof first === 'number' && (typeof second !== 'string' || WILDCARDS.has(second))) {
      // listen(port[, host][, backlog][, cb]): put the host in, keeping what follows it.
      args.splice(1, typeof second === 'string' ? 1 : 0, '127.0.0.1');
    }
    return original.apply(this, args);
  };
  let started: T;
  try {
    started = await start();
  } finally {
    (net.Server.prototype as unknown as { listen: Listen }).listen = original;
  }
  const addresses = servers
    .map((server) => server.address())
    .map((address) => (address && typeof address === 'object' ? address.address : String(address)));
  try {
    requireLoopback(what, addresses);
  } catch (error) {
    await stop(started);
    throw error;
  }
  return { started, addresses };
}
