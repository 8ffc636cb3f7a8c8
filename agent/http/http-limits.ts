/**
 * The agent HTTP server's bounds that are decided per request: which `Host` may write (so a web
 * page that rebinds its DNS name to 127.0.0.1 cannot register services through a browser), and
 * how many blocking queries one client address may hold at once.
 */
import { MeshregError } from '../../proto/errors.js';

const LOOPBACK_NAMES: ReadonlySet<string> = new Set(['localhost', '::1']);
const LOOPBACK_V4 = /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/;
const WRITE_METHODS: ReadonlySet<string> = new Set(['PUT', 'POST', 'DELETE', 'PATCH']);

/** The host name of a `Host` value or absolute-form authority: port and IPv6 brackets removed. */
export function hostnameOf(authority: string): string {
  const a = authority.trim().toLowerCase();
  if (a.startsWith('[')) {
    const end = a.indexOf(']');
    return end < 0 ? a : a.slice(1, end);
  }
  const colon = a.indexOf(':');
  return colon < 0 ? a : a.slice(0, colon);
}

/** Decides which `Host` names may send writes. */
export class HostPolicy {
  readonly #extra: ReadonlySet<string>;

  /**
   * @param bindHost the agent's bind address, accepted too unless it is a wildcard
   * @param allowed further names (no port), from `MESHREG_AGENT_ALLOWED_HOSTS`
   */
  constructor(bindHost: string, allowed: readonly string[]) {
    const extra = new Set(allowed.map((h) => hostnameOf(h)));
    const bind = hostnameOf(bindHost);
    if (bind !== '0.0.0.0' && bind !== '::' && bind !== '') extra.add(bind);
    this.#extra = extra;
  }

  /** True when `host` (with any port) is a loopback name or one of the configured ones. */
  allows(host: string | undefined): boolean {
    if (host === undefined || host === '') return false;
    const name = hostnameOf(host);
    return LOOPBACK_NAMES.has(name) || LOOPBACK_V4.test(name) || this.#extra.has(name);
  }

  /**
   * Throws 403 `forbidden` naming `Host` for a write whose host is not allowed. Reads stay open:
   * Consul clients read from wherever the agent is reachable.
   */
  check(method: string, host: string | undefined): void {
    if (!WRITE_METHODS.has(method) || this.allows(host)) return;
    throw new MeshregError(
      'forbidden',
      `writes are accepted only with a loopback Host or one in MESHREG_AGENT_ALLOWED_HOSTS`,
      { fields: [{ path: 'Host', message: `${JSON.stringify(host ?? '')} is not an allowed host` }] },
    );
  }
}

/**
 * True for a request that may be held: a Consul blocking query (`?index=` above 0, as Consul
 * blocks only then) or a REST EDS poll with `?wait=`.
 */
export function isBlockingQuery(method: string, query: URLSearchParams): boolean {
  if (method !== 'GET' && method !== 'POST') return false;
  const index = query.get('index');
  if (index !== null && index !== '' && index !== '0') return true;
  return method === 'POST' && (query.get('wait') ?? '') !== '';
}

/** Counts concurrent blocking queries per client address and refuses those over the cap. */
export class BlockingQuota {
  readonly #max: number;
  readonly #held = new Map<string, number>();

  constructor(maxPerClient: number) {
    this.#max = maxPerClient;
  }

  /**
   * Takes a slot for `client` and returns its release (call it exactly once, when the response
   * closes, whether it finished or was aborted); throws 429 `rate_limited` naming the limit.
   */
  acquire(client: string): () => void {
    const n = this.#held.get(client) ?? 0;
    if (n >= this.#max) {
      throw new MeshregError(
        'rate_limited',
        `at most ${String(this.#max)} concurrent blocking queries per client (MESHREG_AGENT_MAX_BLOCKING_PER_IP)`,
      );
    }
    this.#held.set(client, n + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.#held.get(client) ?? 1) - 1;
      if (left <= 0) this.#held.delete(client);
      else this.#held.set(client, left);
    };
  }

  /** Blocking queries `client` holds now. */
  held(client: string): number {
    return this.#held.get(client) ?? 0;
  }
}
