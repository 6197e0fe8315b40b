/**
 * Which callback URLs the service may post to. In AWS only `https`, and never an address inside
 * a private, loopback, link-local or otherwise special range, checked on the addresses DNS
 * actually returns at connect time (a name that resolves to 169.254.169.254 or 10.0.0.5 is
 * refused, and so is one that changes its answer after registration). Locally `http` and loopback
 * are allowed so tests and the local stack can run a receiver.
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { BlockList, isIP } from 'node:net';

export interface TargetPolicy {
  /** True in AWS: https only, public addresses only. */
  strict: boolean;
}

export class UnsafeCallbackTargetError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnsafeCallbackTargetError';
  }
}

// Two lists: a BlockList also matches IPv4 addresses against IPv6 rules as IPv4-mapped, so one
// list holding ::ffff:0:0/96 would refuse every IPv4 address.
const BLOCKED_V4 = new BlockList();
const BLOCKED_V6 = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const) {
  BLOCKED_V4.addSubnet(net, prefix, 'ipv4');
}
for (const [net, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['64:ff9b::', 96],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
] as const) {
  BLOCKED_V6.addSubnet(net, prefix, 'ipv6');
}

/** True for an address a callback may reach in AWS. */
export function isPublicAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 0) return false;
  if (family === 4) return !BLOCKED_V4.check(address, 'ipv4');
  // An IPv4-mapped IPv6 address is judged as the IPv4 address it carries; in hex form, refused.
  if (/^::ffff:/i.test(address)) {
    const dotted = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
    return dotted ? !BLOCKED_V4.check(dotted[1]!, 'ipv4') : false;
  }
  return !BLOCKED_V6.check(address, 'ipv6');
}

/** Checks a URL when it is registered; the addresses are checked again at every post. */
export function checkCallbackUrl(raw: string, policy: TargetPolicy): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UnsafeCallbackTargetError('url is not a valid absolute URL');
  }
  const allowed = policy.strict ? ['https:'] : ['https:', 'http:'];
  if (!allowed.includes(url.protocol)) {
    throw new UnsafeCallbackTargetError(
      policy.strict ? 'url must use https' : 'url must use http or https',
    );
  }
  if (url.username || url.password) {
    throw new UnsafeCallbackTargetError('url must not carry credentials');
  }
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (policy.strict && isIP(host) && !isPublicAddress(host)) {
    throw new UnsafeCallbackTargetError('url points to a private or reserved address');
  }
  if (policy.strict && (host === 'localhost' || host.endsWith('.localhost'))) {
    throw new UnsafeCallbackTargetError('url points to a private or reserved address');
  }
  return url;
}

type LookupCallback = (
  error: NodeJS.ErrnoException | null,
  address: string | LookupAddress[],
  family?: number,
) => void;

/**
 * A `lookup` for http(s).request that refuses private answers, so the connection goes only to an
 * address that was checked (no window between a check and a second resolution).
 */
export function guardedLookup(
  hostname: string,
  options: { all?: boolean },
  callback: LookupCallback,
): void {
  dnsLookup(hostname, { all: true }, (error, addresses) => {
    if (error) return callback(error, []);
    const refused = addresses.find((a) => !isPublicAddress(a.address));
    if (refused || addresses.length === 0) {
      const err = new UnsafeCallbackTargetError(
        'callback host resolves to a private or reserved address',
      ) as NodeJS.ErrnoException;
      err.code = 'EUNSAFETARGET';
      return callback(err, []);
    }
    if (options.all) return callback(null, addresses);
    callback(null, addresses[0]!.address, addresses[0]!.family);
  });
}
