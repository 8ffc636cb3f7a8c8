/**
 * What every control-plane HTTP port serves besides its links and `/health`: `GET /metrics`
 * (Prometheus text, unauthenticated, as scrapers expect) and the admin API under `/admin/`.
 *
 * The admin API is off unless a token is configured (403 `forbidden`), answers only loopback
 * clients unless remote access is allowed (403), and wants `Authorization: Bearer <token>` on every
 * request (401 `unauthorized`; the scheme is case-insensitive, RFC 7235 §2.1). Handlers take a
 * parsed request and return `{status, body}`.
 */
import type http from 'node:http';
import { MeshregError } from '../../proto/errors.js';
import { parseTarget, rateLimitedLog, sendError, type RequestTarget } from '../../proto/runtime/http-edge.js';
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

const MAX_BODY_BYTES = 256 * 1024;
const LOOPBACK = /^(127\.|::1$|::ffff:127\.)/;

/** Builds the extension for one role's port with that role's admin routes. */
export function opsEndpoints(opts: OpsOptions, routes: readonly AdminRoute[]): HttpExtension {
  const edgeLog = rateLimitedLog(opts.logger);
  return (req, res) => {
    const target = parseTarget(req.url);
    if (target instanceof MeshregError) {
      sendError(res, target);
      return true;
    }
    const url = { pathname: target.path, searchParams: target.query };
    if (url.pathname === '/metrics' && req.method === 'GET') {
      serveMetrics(opts, res);
      return true;
    }
    if (url.pathname !== '/admin' && !url.pathname.startsWith('/admin/')) return false;
    serveAdmin(opts, routes, req, target).then(
      (r) => {
        sendJson(res, r.status, r.body);
      },
      (err: unknown) => {
        const e = err instanceof MeshregError ? err : new MeshregError('internal', 'internal error');
        if (e.code === 'internal') edgeLog.error('admin request failed', { path: url.pathname, err });
        if (e.code === 'unauthorized') res.setHeader('www-authenticate', 'Bearer realm="meshreg-admin"');
        sendJson(res, e.httpStatus, e.toJSON());
      },
    );
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
      sendJson(res, 500, new MeshregError('internal', 'metrics scrape failed').toJSON());
    },
  );
}

async function serveAdmin(
  opts: OpsOptions,
  routes: readonly AdminRoute[],
  req: http.IncomingMessage,
  target: RequestTarget,
): Promise<AdminResult> {
  const url = { pathname: target.path, searchParams: target.query };
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
  const method = req.method ?? 'GET';
  const m = match(routes, method, url.pathname);
  if (m === 'not_found') throw new MeshregError('not_found', `no admin route for ${method} ${url.pathname}`);
  if (m === 'method_not_allowed')
    throw new MeshregError('method_not_allowed', `${method} is not allowed on ${url.pathname}`);
  const body = await readJson(req);
  return m.route.handler({ params: m.params, query: url.searchParams, body });
}

/** The token of `Authorization: Bearer <token>`, the scheme in any case (RFC 7235 §2.1); '' if none. */
export function bearerToken(header: string | undefined): string {
  const m = /^bearer[ \t]+(.*)$/i.exec(header ?? '');
  return m?.[1]?.trim() ?? '';
}

function match(
  routes: readonly AdminRoute[],
  method: string,
  path: string,
): { route: AdminRoute; params: Record<string, string> } | 'not_found' | 'method_not_allowed' {
  const segs = path.split('/').filter((s) => s !== '');
  let pathMatched = false;
  for (const route of routes) {
    const parts = route.path.split('/').filter((s) => s !== '');
    if (parts.length !== segs.length) continue;
    const params: Record<string, string> = {};
    const ok = parts.every((p, i) => {
      const s = segs[i] ?? '';
      if (!p.startsWith(':')) return p === s;
      params[p.slice(1)] = safeDecode(s, p.slice(1));
      return true;
    });
    if (!ok) continue;
    pathMatched = true;
    if (route.method === method) return { route, params };
  }
  return pathMatched ? 'method_not_allowed' : 'not_found';
}

function safeDecode(s: string, name: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new MeshregError('invalid_argument', `path segment is not valid percent-encoding: ${s}`, {
      fields: [{ path: name, message: 'must be valid percent-encoding (RFC 3986 §2.1)' }],
    });
  }
}

async function readJson(req: http.IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) {
      req.resume();
      throw new MeshregError('payload_too_large', `admin bodies are limited to ${MAX_BODY_BYTES} bytes`);
    }
    chunks.push(chunk);
  }
  if (size === 0) return undefined;
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch {
    throw new MeshregError('invalid_argument', 'body is not valid JSON', {
      fields: [{ path: '(body)', message: 'must be valid JSON' }],
    });
  }
}

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) return;
  const text = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
