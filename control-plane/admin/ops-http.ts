/**
 * What every control-plane HTTP port serves besides its links and `/health`: `GET /metrics`
 * (Prometheus text, unauthenticated, as scrapers expect) and the admin API under `/admin/`.
 *
 * The admin API is off unless a token is configured (403 `forbidden`), answers only loopback
 * clients unless remote access is allowed (403), and wants `Authorization: Bearer <token>` on every
 * request (401 `unauthorized`; the scheme is case-insensitive, RFC 7235 §2.1). Handlers take a
 * parsed request and return `{status, body}`; routing and the body are the shared JSON router's.
 */
import type http from 'node:http';
import { MeshregError } from '../../proto/errors.js';
import { parseTarget, rateLimitedLog, sendError, type RequestTarget } from '../../proto/runtime/http-edge.js';
import { JsonRouter } from '../../proto/runtime/json-router.js';
import type { Logger } from '../../proto/runtime/log.js';
import { tokensEqual } from '../link/auth.js';

/** Serves a request if it is one of ours; false lets the caller answer (404). */
export type HttpExtension = (req: http.IncomingMessage, res: http.ServerResponse) => boolean;

/** Prometheus text of the process's metrics. */
export type Scrape = () => Promise<string>;

export interface AdminRequest {
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
  readonly handler: (req: AdminRequest) => AdminResult | Promise<AdminResult>;
}

export interface OpsOptions {
  /** Admin bearer token; '' turns the admin API off. */
  readonly adminToken: string;
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
  for (const r of routes) router.add(r.method, r.path, (req) => r.handler(req));
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
    serveAdmin(opts, router, req, res, target).catch((err: unknown) => {
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

/** Admits the request (on, loopback, token), then lets the router serve it. */
async function serveAdmin(
  opts: OpsOptions,
  router: JsonRouter,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  target: RequestTarget,
): Promise<void> {
  if (opts.adminToken === '')
    throw new MeshregError('forbidden', 'the admin API is off: set MESHREG_ADMIN_TOKEN to turn it on');
  if (!opts.adminRemote && !LOOPBACK.test(req.socket.remoteAddress ?? ''))
    throw new MeshregError(
      'forbidden',
      'admin requests are accepted from loopback only (MESHREG_ADMIN_REMOTE)',
    );
  const given = bearerToken(req.headers.authorization);
  if (given === '' || !tokensEqual(opts.adminToken, given))
    throw new MeshregError('unauthorized', given === '' ? 'missing bearer token' : 'wrong admin token');
  const abort = new AbortController();
  res.once('close', () => {
    abort.abort();
  });
  await router.serve(req, res, target, { body: ADMIN_BODY, signal: abort.signal });
}

/** The token of `Authorization: Bearer <token>`, the scheme in any case (RFC 7235 §2.1); '' if none. */
export function bearerToken(header: string | undefined): string {
  const m = /^bearer[ \t]+(.*)$/i.exec(header ?? '');
  return m?.[1]?.trim() ?? '';
}
