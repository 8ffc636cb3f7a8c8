/**
 * Who may change this agent through its local HTTP API. With a local token
 * (`MESHREG_AGENT_LOCAL_TOKEN`), every write — register, deregister, check updates, leave — must
 * present it in Consul's `X-Consul-Token` header or as `Authorization: Bearer`; reads stay open, as
 * with Consul's `default_policy = "allow"` for reads. Without one, local writes are open (Consul's
 * default): any process that can reach the port can register or deregister anything on this node.
 *
 * A token in the URL (`?token=`) is refused on every route whatever the setting, since URLs land in
 * access logs and proxies. Decisions depend only on the token and on the socket's peer address,
 * never on a header a client chooses (`User-Agent`, `X-Forwarded-For`, `X-Real-IP`, `Host`).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type http from 'node:http';
import { MeshregError } from '../../proto/errors.js';

/** What the edge learned of a local caller before routing (handed to handlers as context). */
export interface LocalCaller {
  /** The socket's peer is a loopback address. */
  readonly loopback: boolean;
  /** The request presented the configured local token. */
  readonly tokenValid: boolean;
}

const WRITE_METHODS: ReadonlySet<string> = new Set(['PUT', 'POST', 'DELETE', 'PATCH']);
const LOOPBACK_PEER = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|::1|::ffff:127\.\d{1,3}\.\d{1,3}\.\d{1,3})$/i;

/** True for a socket peer address on loopback (IPv4, IPv6, or IPv4-mapped). */
export function isLoopbackPeer(address: string | undefined): boolean {
  return LOOPBACK_PEER.test(address ?? '');
}

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

/** The local token check of the agent's HTTP API. */
export class LocalAuth {
  readonly #digest: Buffer | undefined;
  readonly #readPosts: ReadonlySet<string>;

  /**
   * @param token the local token; '' leaves local writes open
   * @param readPosts paths whose POST only reads (REST EDS): open like GETs
   */
  constructor(token: string, readPosts: readonly string[] = []) {
    this.#digest = token === '' ? undefined : digest(token);
    this.#readPosts = new Set(readPosts);
  }

  /** True when writes need the token. */
  get required(): boolean {
    return this.#digest !== undefined;
  }

  /** `X-Consul-Default-ACL-Policy`, as Consul sends it: `deny` when writes need a token. */
  get defaultPolicy(): 'allow' | 'deny' {
    return this.required ? 'deny' : 'allow';
  }

  /**
   * Admits a request or throws: 400 `invalid_argument` naming `token` for a token in the query,
   * 401 `unauthorized` naming `X-Consul-Token` for a write without one, 403 `forbidden` for a
   * wrong one. The token is compared in constant time and never echoed.
   */
  admit(
    method: string,
    path: string,
    headers: http.IncomingHttpHeaders,
    query: URLSearchParams,
    peer: string | undefined,
  ): LocalCaller {
    for (const key of query.keys())
      if (key.toLowerCase() === 'token')
        throw new MeshregError(
          'invalid_argument',
          'a token in the URL is refused: send it in X-Consul-Token',
          {
            fields: [
              { path: 'token', message: 'must not be in the query string (use the X-Consul-Token header)' },
            ],
          },
        );
    const given = presentedToken(headers);
    const tokenValid = this.#matches(given);
    const caller = { loopback: isLoopbackPeer(peer), tokenValid };
    const write = WRITE_METHODS.has(method) && !(method === 'POST' && this.#readPosts.has(path));
    if (!write || !this.required || tokenValid) return caller;
    if (given === '')
      throw new MeshregError('unauthorized', 'this agent requires its local token for writes', {
        fields: [{ path: 'X-Consul-Token', message: 'is required (or Authorization: Bearer)' }],
      });
    throw new MeshregError('forbidden', 'the local token presented is not valid', {
      fields: [{ path: 'X-Consul-Token', message: 'is not the local token' }],
    });
  }

  #matches(given: string): boolean {
    if (this.#digest === undefined || given === '') return false;
    return timingSafeEqual(this.#digest, digest(given));
  }
}

/** The token of `X-Consul-Token`, else of `Authorization: Bearer` (scheme in any case); '' if none. */
export function presentedToken(headers: http.IncomingHttpHeaders): string {
  const consul = headers['x-consul-token'];
  if (typeof consul === 'string' && consul.trim() !== '') return consul.trim();
  const m = /^bearer[ \t]+(.*)$/i.exec(headers.authorization ?? '');
  return m?.[1]?.trim() ?? '';
}

/**
 * The extra rule of `PUT /v1/agent/leave`, which stops the agent: besides the token when one is
 * set (checked as for every write), the caller must be on loopback — unless it presented the
 * token, so an operator can make a remote agent leave only with the token.
 */
export function assertMayLeave(context: unknown): void {
  const c = context as LocalCaller | undefined;
  if (c?.loopback === true || c?.tokenValid === true) return;
  throw new MeshregError('forbidden', 'leave is accepted from loopback only (or with the local token)', {
    fields: [{ path: '(peer)', message: 'is not a loopback address' }],
  });
}
