/**
 * The agent's HTTP front: a thin mapping from method + path to handlers that take a parsed request
 * and return `{status, body, headers}`. Handlers never see sockets, so they are tested directly.
 *
 * This layer owns what every request shares: the body size limit (413), JSON parsing (400 naming
 * the problem), 404/405, `Content-Type: application/json` on every answer, and turning a
 * {@link MeshregError} into its status and JSON body. Nothing a request sends can crash the process.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { MeshregError } from '../../proto/errors.js';
import type { Logger } from '../../proto/log.js';

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
        for (const [name, raw] of Object.entries(params)) decoded[name] = decode(raw);
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

function decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new MeshregError('invalid_argument', `path segment is not valid percent-encoding: ${s}`);
  }
}

export interface HttpServerOptions {
  readonly host: string;
  readonly port: number;
  readonly maxBodyBytes: number;
  readonly logger: Logger;
}

export class HttpServer {
  readonly #server: http.Server;
  readonly #router: Router;
  readonly #opts: HttpServerOptions;

  constructor(router: Router, opts: HttpServerOptions) {
    this.#router = router;
    this.#opts = opts;
    this.#server = http.createServer((req, res) => {
      this.#serve(req, res).catch((err: unknown) => {
        opts.logger.error('request failed unexpectedly', { err });
        if (!res.headersSent) send(res, 500, new MeshregError('internal', 'internal error').toJSON());
        else res.destroy();
      });
    });
    this.#server.keepAliveTimeout = 65_000;
    // A blocking query may hold a request for up to 10 min + jitter.
    this.#server.requestTimeout = 0;
    this.#server.headersTimeout = 30_000;
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

  async #serve(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://agent');
    const method = req.method ?? 'GET';
    const abort = new AbortController();
    res.on('close', () => {
      abort.abort();
    });
    try {
      const m = this.#router.match(method, url.pathname);
      if (m === 'not_found') throw new MeshregError('not_found', `no route for ${method} ${url.pathname}`);
      if (m === 'method_not_allowed')
        throw new MeshregError('method_not_allowed', `${method} is not allowed on ${url.pathname}`);
      const body = await readBody(req, this.#opts.maxBodyBytes);
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
      if (err.code === 'payload_too_large') res.setHeader('connection', 'close');
      send(res, err.httpStatus, err.toJSON());
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

/** Reads and parses a JSON body within `limit` bytes. */
async function readBody(req: http.IncomingMessage, limit: number): Promise<unknown> {
  const declared = Number(req.headers['content-length'] ?? '0');
  if (declared > limit) {
    req.resume();
    throw new MeshregError('payload_too_large', `body is ${declared} bytes; the limit is ${limit}`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) {
      req.resume();
      throw new MeshregError('payload_too_large', `body is over the limit of ${limit} bytes`);
    }
    chunks.push(chunk);
  }
  if (size === 0) return undefined;
  const text = Buffer.concat(chunks).toString('utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new MeshregError('invalid_argument', `body is not valid JSON: ${(err as Error).message}`, {
      fields: [{ path: '(body)', message: 'must be valid JSON' }],
    });
  }
}
