/**
 * What keeps a health check from being turned against the network (the lessons of Consul's
 * redirect SSRF, CVE-2022-29153): where an HTTP or TCP check may connect (`MESHREG_CHECK_ALLOW`),
 * which redirects an HTTP check follows (`MESHREG_CHECK_REDIRECTS`), and how much of a body it
 * reads (`MESHREG_CHECK_MAX_BODY_BYTES`).
 *
 * The target rule is applied twice: to a literal address or a resolved name at registration (a
 * 400 naming the field), and to the address each probe actually connects to, after its own DNS
 * lookup, so a name that later resolves elsewhere (DNS rebinding) is refused at connect time.
 */
import dns from 'node:dns';
import type { LookupAddress, LookupAllOptions, LookupOptions } from 'node:dns';
import net from 'node:net';
import os from 'node:os';
import { inCidr, parseCidr, parseIp, type Cidr } from './cidr.js';

/** Which redirects an HTTP check follows: same scheme, host and port only, or none. */
export type RedirectMode = 'same-origin' | 'none';

/** Most same-origin redirects one probe follows (Consul's Go client follows 10). */
export const MAX_CHECK_REDIRECTS = 3;

/** Longest a registration waits to resolve a check's host name. */
const REGISTRATION_LOOKUP_MS = 5000;

const LOOPBACK: readonly Cidr[] = ['127.0.0.0/8', '::1/128', '0.0.0.0/32', '::/128'].map(
  (c) => parseCidr(c) as Cidr,
);

/** The addresses of this host's interfaces, as /32 or /128 ranges. */
export function hostAddresses(): Cidr[] {
  const out: Cidr[] = [];
  for (const list of Object.values(os.networkInterfaces()))
    for (const a of list ?? []) {
      const c = parseCidr(a.address.replace(/%.*$/, ''));
      if (typeof c !== 'string') out.push(c);
    }
  return out;
}

/** Resolves a name to all its addresses (`dns.lookup` with `all: true`; injected in tests). */
export type Resolver = (
  hostname: string,
  options: LookupAllOptions,
  callback: (err: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void,
) => void;

const systemResolver: Resolver = (hostname, options, callback) => {
  dns.lookup(hostname, options, callback);
};

/** Where checks may connect: anywhere (no allow list), or loopback, this host and the allowed CIDRs. */
export class TargetPolicy {
  readonly #ranges: readonly Cidr[] | undefined;
  readonly #resolve: Resolver;

  /**
   * @param allow the `MESHREG_CHECK_ALLOW` CIDRs; `undefined` leaves targets unrestricted
   * @param own this host's addresses (always allowed when a list is set)
   * @param resolve how names are resolved, at registration and at each connect
   */
  constructor(
    allow: readonly Cidr[] | undefined,
    own: readonly Cidr[] = hostAddresses(),
    resolve: Resolver = systemResolver,
  ) {
    this.#ranges = allow === undefined ? undefined : [...LOOPBACK, ...own, ...allow];
    this.#resolve = resolve;
  }

  get restricted(): boolean {
    return this.#ranges !== undefined;
  }

  /** True when a check may connect to the IP literal `ip`; a non-IP is refused when restricted. */
  allowsAddress(ip: string): boolean {
    if (this.#ranges === undefined) return true;
    const bytes = parseIp(ip);
    return bytes !== undefined && this.#ranges.some((r) => inCidr(bytes, r));
  }

  /**
   * Why a check may not connect to `host` (a name is resolved, and every address must be
   * allowed), or `undefined` when it may.
   */
  async refusal(host: string): Promise<string | undefined> {
    if (this.#ranges === undefined) return undefined;
    const bare = unbracket(host);
    if (net.isIP(bare) !== 0) return this.#addressRefusal(bare);
    const resolved = await new Promise<LookupAddress[] | NodeJS.ErrnoException>((resolve) => {
      // A registration never waits on a slow resolver for long: no answer in time is a refusal.
      const timer = setTimeout(() => {
        resolve(Object.assign(new Error('resolution timed out'), { code: 'ETIMEOUT' }));
      }, REGISTRATION_LOOKUP_MS);
      this.#resolve(bare, { all: true }, (err, addresses) => {
        clearTimeout(timer);
        resolve(err ?? addresses);
      });
    });
    if (!Array.isArray(resolved))
      return `${JSON.stringify(bare)} does not resolve (${resolved.code ?? 'error'})`;
    for (const a of resolved) {
      const why = this.#addressRefusal(a.address);
      if (why !== undefined) return `${JSON.stringify(bare)} resolves to ${a.address}: ${why}`;
    }
    return undefined;
  }

  /** Synchronous verdict for a literal target; names need {@link refusal}. */
  literalRefusal(host: string): string | undefined {
    const bare = unbracket(host);
    return net.isIP(bare) === 0 ? undefined : this.#addressRefusal(bare);
  }

  #addressRefusal(ip: string): string | undefined {
    return this.allowsAddress(ip)
      ? undefined
      : `${ip} is outside loopback, this host's addresses and MESHREG_CHECK_ALLOW`;
  }

  /**
   * A `lookup` for `net.connect` (and undici's connector): resolves as usual, then fails with
   * `EACCES` unless every address is allowed. Node skips `lookup` for an IP literal, which
   * callers check with {@link literalRefusal} first.
   */
  readonly lookup = (
    hostname: string,
    options: LookupOptions,
    callback: (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void,
  ): void => {
    const all: LookupAllOptions = { ...options, all: true };
    this.#resolve(hostname, all, (err, addresses) => {
      if (err !== null) {
        callback(err, '');
        return;
      }
      const bad = addresses.find((a) => !this.allowsAddress(a.address));
      if (bad !== undefined) {
        const refused: NodeJS.ErrnoException = new Error(
          `${hostname} resolves to ${bad.address}, outside loopback, this host's addresses and MESHREG_CHECK_ALLOW`,
        );
        refused.code = 'EACCES';
        callback(refused, '');
        return;
      }
      if (options.all === true) callback(null, addresses);
      else callback(null, addresses[0]?.address ?? '', addresses[0]?.family ?? 4);
    });
  };
}

function unbracket(host: string): string {
  return host.replace(/^\[(.*)\]$/, '$1');
}

/** The network policy of probes, from the agent's configuration. */
export interface CheckNetPolicy {
  readonly targets: TargetPolicy;
  readonly redirects: RedirectMode;
  /** Most bytes of a response body a probe reads; the rest is not read. */
  readonly maxBodyBytes: number;
}

/** No restriction beyond Consul's own behaviour: for decoders and runners built without a config. */
export const OPEN_NET_POLICY: CheckNetPolicy = Object.freeze({
  targets: new TargetPolicy(undefined, []),
  redirects: 'same-origin',
  maxBodyBytes: 64 * 1024,
});

/** What a probe does with a redirect: follow it to `url`, or stop with a `reason`. */
export type RedirectStep = { readonly follow: URL } | { readonly stop: string };

/**
 * The redirect rule: `location` (relative or absolute) is followed only in `same-origin` mode, when
 * it has exactly the scheme, host and port of `from`, and while fewer than
 * {@link MAX_CHECK_REDIRECTS} were followed.
 */
export function redirectStep(
  from: URL,
  location: string,
  mode: RedirectMode,
  followed: number,
): RedirectStep {
  if (mode === 'none') return { stop: 'redirects are not followed' };
  let next: URL;
  try {
    next = new URL(location, from);
  } catch {
    return { stop: `redirect to an invalid location ${JSON.stringify(location.slice(0, 200))}` };
  }
  if (next.origin !== from.origin || next.username !== '' || next.password !== '')
    return { stop: `redirect to another origin (${next.origin}) is not followed` };
  if (followed >= MAX_CHECK_REDIRECTS) return { stop: `more than ${String(MAX_CHECK_REDIRECTS)} redirects` };
  return { follow: next };
}
