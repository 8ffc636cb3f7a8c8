/**
 * What every control-plane HTTP port serves besides its links and `/health`: `GET /metrics`
 * (Prometheus text, unauthenticated, as scrapers expect) and the admin API under `/admin/`.
 *
 * A token is never taken from the URL: `?token=` is refused (400 `invalid_argument` naming `token`).
 * The admin API is off unless an admin token is configured (403 `forbidden`), answers only loopback
 * clients unless remote access is allowed (403), and wants `Authorization: Bearer <token>` on every
 * request (401 `unauthorized`; the scheme is case-insensitive, RFC 7235 §2.1). A token gives its
 * caller `read` or `write` access: a `read` caller is refused (403) on routes that change anything.
 * Routes marked `loopback-read` (what the console reads) also answer loopback callers without a token,
 * as the read-only `anonymous` caller, even when the admin API is off. Handlers take a parsed request
 * (with its caller) and return `{status, body}`; routing and the body are the shared JSON router's.
 */
import type http from 'node:http';
import { MeshregError } from '../../proto/errors.js';
import { parseTarget, rateLimitedLog, sendError, type RequestTarget } from '../../proto/runtime/http-edge.js';
import { JsonRouter, type JsonRequest } from '../../proto/runtime/json-router.js';
import type { Logger } from '../../proto/runtime/log.js';
import { tokensEqual } from '../link/auth.js';

/** Serves a request if it is one of ours; false lets the caller answer (404). */
export type HttpExtension = (req: http.IncomingMessage, res: http.ServerResponse) => boolean;

/** Prometheus text of the process's metrics. */
export type Scrape = () => Promise<string>;

/** Who is calling the admin API, as its token says: the name goes into audit records. */
export interface AdminCaller {
  /** The token's name (never its secret); `anonymous` for a loopback reader without a token. */
  readonly name: string;
  readonly access: 'read' | 'write';
}

/** Turns a presented admin token into its caller. */
export interface AdminAuth {
  /** False when no admin token is configured: the admin API is off. Read at each request. */
  enabled(): boolean;
  /** The caller of `token`, or undefined when no admin token matches (compared in constant time). */
  authenticate(token: string): AdminCaller | undefined;
}

/** The caller of a loopback request without a token, on `loopback-read` routes. */
export const ANONYMOUS_CALLER: AdminCaller = Object.freeze({ name: 'anonymous', access: 'read' });

/** One shared admin token (`MESHREG_ADMIN_TOKEN`) with write access; '' turns the admin API off. */
export function sharedAdminToken(token: string): AdminAuth {
  const caller: AdminCaller = Object.freeze({ name: 'admin', access: 'write' });
  return {
    enabled: () => token !== '',
    authenticate: (given) => (tokensEqual(token, given) ? caller : undefined),
  };
}

export interface AdminRequest {
  readonly caller: AdminCaller;
  readonly params: Readonly<Record<string, string>>;
  readonly query: URLSearchParams;
  /** Parsed JSON body; undefined when there was none. */
  readonly body: unknown;
}

export interface AdminResult {
  readonly status: number;
  readonly body?: unknown;
}

export interface AdminRoute {
  readonly method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** `/admin/...`; `:name` segments become params. */
  readonly path: string;
  /**
   * Who may call it: `write` needs a write token, `read` any admin token, `loopback-read` also a
   * loopback caller without one. Default: `read` for GET, `write` for every other method.
   */
  readonly access?: AdminAccess;
  readonly handler: (req: AdminRequest) => AdminResult | Promise<AdminResult>;
}

export type AdminAccess = 'loopback-read' | 'read' | 'write';

export interface OpsOptions {
  /** The admin tokens: {@link sharedAdminToken} or a token policy. */
  readonly adminAuth: AdminAuth;
  /** Accept admin requests from non-loopback addresses. */
  readonly adminRemote: boolean;
  readonly scrape: Scrape | undefined;
  readonly logger: Logger;
}

const ADMIN_BODY = { maxBytes: 256 * 1024, timeoutMs: 10_000 } as const;
const LOOPBACK = /^(127\.|::1$|::ffff:127\.)/;

/** Builds the extension for one role's port with that role's admin routes. */
export function opsEndpoints(opts: OpsOptions, routes: readonly AdminRoute[]): HttpExtension {
  const edgeLog = rateLimitedLog(opts.logger);
  const router = new JsonRouter();
  const access = new Map<unknown, AdminAccess>();
  for (const r of routes) {
    const handler = (req: JsonRequest): AdminResult | Promise<AdminResult> =>
      r.handler({ ...req, caller: req.context as AdminCaller });
    router.add(r.method, r.path, handler);
    access.set(handler, r.access ?? (r.method === 'GET' ? 'read' : 'write'));
  }
  return (req, res) => {
    const target = parseTarget(req.url);
    if (target instanceof MeshregError) {
      sendError(res, target);
      return true;
    }
    if (target.path === '/metrics' && req.method === 'GET') {
      serveMetrics(opts, res);
      return true;
    }
    if (target.path !== '/admin' && !target.path.startsWith('/admin/')) return false;
    serveAdmin(opts, router, access, req, res, target).catch((err: unknown) => {
      const e = err instanceof MeshregError ? err : new MeshregError('internal', 'internal error');
      if (e.code === 'internal') edgeLog.error('admin request failed', { path: target.path, err });
      if (e.code === 'unauthorized') res.setHeader('www-authenticate', 'Bearer realm="meshreg-admin"');
      sendError(res, e);
    });
    return true;
  };
}

function serveMetrics(opts: OpsOptions, res: http.ServerResponse): void {
  const scrape = opts.scrape ?? (() => Promise.resolve(''));
  scrape().then(
    (text) => {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(text);
    },
    (err: unknown) => {
      opts.logger.error('metrics scrape failed', { err });
      sendError(res, new MeshregError('internal', 'metrics scrape failed'));
    },
  );
}

/** Admits the request (loopback, on, token, access), then lets the router serve it as its caller. */
async function serveAdmin(
  opts: OpsOptions,
  router: JsonRouter,
  accessOf: ReadonlyMap<unknown, AdminAccess>,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  target: RequestTarget,
): Promise<void> {
  refuseTokenInUrl(target.query);
  const loopback = LOOPBACK.test(req.socket.remoteAddress ?? '');
  if (!opts.adminRemote && !loopback)
    throw new MeshregError(
      'forbidden',
      'admin requests are accepted from loopback only (MESHREG_ADMIN_REMOTE)',
    );
  const match = router.match(req.method ?? 'GET', target.path);
  const access = match instanceof MeshregError ? 'write' : (accessOf.get(match.handler) ?? 'write');
  const caller = admit(opts.adminAuth, bearerToken(req.headers.authorization), access, loopback);
  const abort = new AbortController();
  res.once('close', () => {
    abort.abort();
  });
  await router.serve(req, res, target, { body: ADMIN_BODY, signal: abort.signal, context: caller });
}

/** The caller a request may act as on a route of `access`, or the 401/403 that refuses it. */
function admit(auth: AdminAuth, given: string, access: AdminAccess, loopback: boolean): AdminCaller {
  if (given === '' && access === 'loopback-read' && loopback) return ANONYMOUS_CALLER;
  if (!auth.enabled())
    throw new MeshregError(
      'forbidden',
      'the admin API is off: set MESHREG_ADMIN_TOKEN (or an admin token in MESHREG_TOKEN_POLICY_FILE) to turn it on',
    );
  const caller = given === '' ? undefined : auth.authenticate(given);
  if (caller === undefined)
    throw new MeshregError('unauthorized', given === '' ? 'missing bearer token' : 'wrong admin token');
  if (access === 'write' && caller.access !== 'write')
    throw new MeshregError('forbidden', `the token "${caller.name}" is read-only`);
  return caller;
}

/**
 * A token in the query string is refused (400 naming the parameter) whether or not it is right:
 * URLs end up in access logs, proxies and browser history (Consul refuses `?token=` too).
 */
function refuseTokenInUrl(query: URLSearchParams): void {
  for (const key of query.keys())
    if (/^(access_)?token$/i.test(key))
      throw new MeshregError('invalid_argument', `${key}: a token is never accepted in a URL`, {
        fields: [{ path: key, message: 'never in a URL: send Authorization: Bearer <token>' }],
      });
}

/** The token of `Authorization: Bearer <token>`, the scheme in any case (RFC 7235 §2.1); '' if none. */
export function bearerToken(header: string | undefined): string {
  const m = /^bearer[ \t]+(.*)$/i.exec(header ?? '');
  return m?.[1]?.trim() ?? '';
}
