/**
 * The agent's HTTP front: a thin mapping from method + path to handlers that take a parsed request
 * and return `{status, body, headers}`. Handlers never see sockets, so they are tested directly.
 *
 * This layer owns what every request shares: the body size limit (413), JSON parsing (400 naming
 * the problem), 404/405, `Content-Type: application/json` on every answer, and turning a
 * {@link MeshregError} into its status and JSON body. Nothing a request sends can crash the process:
 * the target is parsed without throwing and every listener runs inside the shared safe edge.
 *
 * It also bounds what clients can hold (see the README's Limits table): open connections, blocking
 * queries per client address, the time to send headers and body, idle keep-alive; and it refuses
 * writes whose `Host` is not loopback or allowed (DNS rebinding).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { MeshregError } from '../../proto/errors.js';
import {
  clientErrorHandler,
  rateLimitedLog,
  safeListener,
  sendError,
  targetOf,
} from '../../proto/runtime/http-edge.js';
import type { Logger } from '../../proto/runtime/log.js';
import type { AgentHttpLimits } from '../config.js';
import { BlockingQuota, HostPolicy, isBlockingQuery } from './http-limits.js';

export interface HttpRequest {
  readonly method: string;
  readonly path: string;
  readonly params: Readonly<Record<string, string>>;
  readonly query: URLSearchParams;
  /** Parsed JSON body; `undefined` when the request had none. */
  readonly body: unknown;
  readonly headers: http.IncomingHttpHeaders;
  /** Aborted when the client goes away (ends blocking queries early). */
  readonly signal: AbortSignal;
}

export interface HttpResult {
  readonly status: number;
  /** Serialised as JSON; `undefined` sends an empty body. */
  readonly body?: unknown;
  /** Sent as is instead of `body` (with its own content type in `headers`), e.g. Prometheus text. */
  readonly text?: string;
  readonly headers?: Readonly<Record<string, string>>;
}

export type Handler = (req: HttpRequest) => HttpResult | Promise<HttpResult>;

interface Route {
  readonly method: string;
  readonly parts: readonly string[];
  readonly handler: Handler;
}

export class Router {
  readonly #routes: Route[] = [];

  /** Adds a route; `:name` segments become params (URL-decoded), a trailing `*name` takes the rest. */
  add(method: string, pattern: string, handler: Handler): this {
    this.#routes.push({ method, parts: pattern.split('/').filter((p) => p !== ''), handler });
    return this;
  }

  match(
    method: string,
    path: string,
  ): { handler: Handler; params: Record<string, string> } | 'not_found' | 'method_not_allowed' {
    const segs = path.split('/').filter((p) => p !== '');
    let pathMatched = false;
    for (const r of this.#routes) {
      const params = matchParts(r.parts, segs);
      if (params === undefined) continue;
      pathMatched = true;
      if (r.method === method || (method === 'HEAD' && r.method === 'GET')) {
        // Decoded only now: a path that no route takes is a 404 whatever its encoding.
        const decoded: Record<string, string> = {};
        for (const [name, raw] of Object.entries(params)) decoded[name] = decode(raw, name);
        return { handler: r.handler, params: decoded };
      }
    }
    return pathMatched ? 'method_not_allowed' : 'not_found';
  }
}

/** The raw (still percent-encoded) params when `segs` fits the route, else `undefined`. */
function matchParts(parts: readonly string[], segs: readonly string[]): Record<string, string> | undefined {
  const params: Record<string, string> = {};
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i] ?? '';
    if (p.startsWith('*')) {
      params[p.slice(1)] = segs.slice(i).join('/');
      return segs.length > i ? params : undefined;
    }
    const s = segs[i];
    if (s === undefined) return undefined;
    if (p.startsWith(':')) params[p.slice(1)] = s;
    else if (p !== s) return undefined;
  }
  return parts.length === segs.length ? params : undefined;
}

function decode(s: string, name: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new MeshregError('invalid_argument', `path segment is not valid percent-encoding: ${s}`, {
      fields: [{ path: name, message: 'must be valid percent-encoding (RFC 3986 §2.1)' }],
    });
  }
}

export interface HttpServerOptions {
  readonly host: string;
  readonly port: number;
  readonly maxBodyBytes: number;
  readonly logger: Logger;
  readonly limits: AgentHttpLimits;
}

/** How often Node checks the headers timeout (its default of 30 s would stretch a 10 s timeout to 40 s). */
const CONNECTIONS_CHECK_MS = 1000;

export class HttpServer {
  readonly #server: http.Server;
  readonly #router: Router;
  readonly #opts: HttpServerOptions;
  readonly #hosts: HostPolicy;
  readonly #blocking: BlockingQuota;
  #dropped = 0;

  constructor(router: Router, opts: HttpServerOptions) {
    this.#router = router;
    this.#opts = opts;
    this.#hosts = new HostPolicy(opts.host, opts.limits.allowedHosts);
    this.#blocking = new BlockingQuota(opts.limits.maxBlockingPerClient);
    this.#server = http.createServer(
      // Host is checked here, for writes only, with a JSON answer (Node's own check is a bare 400).
      { connectionsCheckingInterval: CONNECTIONS_CHECK_MS, requireHostHeader: false },
      safeListener(opts.logger, (req, res) => this.#serve(req, res)),
    );
    this.#server.on('clientError', clientErrorHandler(opts.logger));
    // Over the cap Node closes new sockets at once, before reading anything ('drop').
    this.#server.maxConnections = opts.limits.maxConnections;
    const edgeLog = rateLimitedLog(opts.logger);
    this.#server.on('drop', () => {
      this.#dropped++;
      edgeLog.warn('http connection refused: at the connection cap', {
        maxConnections: opts.limits.maxConnections,
        dropped: this.#dropped,
      });
    });
    this.#server.keepAliveTimeout = opts.limits.keepAliveTimeoutMs;
    // A blocking query may hold a request for up to 10 min + jitter: no whole-request timeout, but
    // the headers and (in readBody) the body each have their own.
    this.#server.requestTimeout = 0;
    this.#server.headersTimeout = opts.limits.headersTimeoutMs;
  }

  /** Sockets closed unanswered because the connection cap was reached. */
  get droppedConnections(): number {
    return this.#dropped;
  }

  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  get address(): string {
    return `http://${this.#opts.host.includes(':') ? `[${this.#opts.host}]` : this.#opts.host}:${this.port}`;
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(this.#opts.port, this.#opts.host, () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  /** Takes a blocking-query slot when the request is one; it is freed when the response closes. */
  #admit(req: http.IncomingMessage, res: http.ServerResponse, method: string, query: URLSearchParams): void {
    if (!isBlockingQuery(method, query)) return;
    const client = (req.socket.remoteAddress ?? '?').replace(/^::ffff:/, '');
    const release = this.#blocking.acquire(client);
    res.once('close', release);
  }

  async #serve(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    const abort = new AbortController();
    res.on('close', () => {
      abort.abort();
    });
    try {
      const target = targetOf(req);
      // An absolute-form target's authority replaces Host (RFC 9112 §3.2.2), so check that one.
      const url = { pathname: target.path, searchParams: target.query };
      this.#hosts.check(method, target.authority ?? req.headers.host);
      const m = this.#router.match(method, url.pathname);
      if (m === 'not_found') throw new MeshregError('not_found', `no route for ${method} ${url.pathname}`);
      if (m === 'method_not_allowed')
        throw new MeshregError('method_not_allowed', `${method} is not allowed on ${url.pathname}`);
      this.#admit(req, res, method, url.searchParams);
      const body = await readBody(req, this.#opts.maxBodyBytes, this.#opts.limits.bodyTimeoutMs);
      const result = await m.handler({
        method,
        path: url.pathname,
        params: m.params,
        query: url.searchParams,
        body,
        headers: req.headers,
        signal: abort.signal,
      });
      if (res.destroyed) return;
      if (result.text !== undefined)
        sendText(res, result.status, result.text, result.headers, method === 'HEAD');
      else send(res, result.status, result.body, result.headers, method === 'HEAD');
    } catch (err) {
      if (!(err instanceof MeshregError)) throw err;
      // The rest of the body is not read: the connection cannot carry another request.
      if (err.code === 'payload_too_large' || err.code === 'request_timeout')
        res.setHeader('connection', 'close');
      sendError(res, err);
    }
  }
}

function send(
  res: http.ServerResponse,
  status: number,
  body: unknown,
  headers: Readonly<Record<string, string>> = {},
  head = false,
): void {
  const text = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(head ? undefined : text);
}

function sendText(
  res: http.ServerResponse,
  status: number,
  text: string,
  headers: Readonly<Record<string, string>> = {},
  head = false,
): void {
  res.writeHead(status, {
    'content-type': 'text/plain; charset=utf-8',
    ...headers,
    'content-length': Buffer.byteLength(text),
  });
  res.end(head ? undefined : text);
}

/** Reads and parses a JSON body within `limit` bytes and `timeoutMs`. */
async function readBody(req: http.IncomingMessage, limit: number, timeoutMs: number): Promise<unknown> {
  const declared = Number(req.headers['content-length'] ?? '0');
  if (declared > limit) {
    req.resume();
    throw new MeshregError(
      'payload_too_large',
      `body is ${String(declared)} bytes; the limit is ${String(limit)}`,
    );
  }
  const raw = await collect(req, limit, timeoutMs);
  if (raw.length === 0) return undefined;
  try {
    return JSON.parse(raw.toString('utf8')) as unknown;
  } catch (err) {
    throw new MeshregError('invalid_argument', `body is not valid JSON: ${(err as Error).message}`, {
      fields: [{ path: '(body)', message: 'must be valid JSON' }],
    });
  }
}

/**
 * The body's bytes, or a rejection: `payload_too_large` past `limit`, `request_timeout` when the
 * body has not fully arrived within `timeoutMs` (a slow sender cannot hold a request forever
 * while the whole-request timeout is off for blocking queries), or the stream's own error.
 */
function collect(req: http.IncomingMessage, limit: number, timeoutMs: number): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (): void => {
      clearTimeout(timer);
      req.off('data', onData).off('end', onEnd).off('error', onError);
    };
    const fail = (err: MeshregError): void => {
      done();
      req.resume();
      reject(err);
    };
    const timer = setTimeout(() => {
      fail(new MeshregError('request_timeout', `the body was not received within ${String(timeoutMs)} ms`));
    }, timeoutMs);
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit)
        fail(new MeshregError('payload_too_large', `body is over the limit of ${String(limit)} bytes`));
      else chunks.push(chunk);
    };
    const onEnd = (): void => {
      done();
      resolve(Buffer.concat(chunks));
    };
    const onError = (err: Error): void => {
      done();
      reject(err);
    };
    req.on('data', onData).on('end', onEnd).on('error', onError);
  });
}
