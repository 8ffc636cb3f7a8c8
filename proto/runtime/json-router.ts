/**
 * The one small router of meshreg's JSON HTTP APIs (the agent's Consul API, every role's admin
 * API): method + path pattern → a handler that takes a parsed request and returns
 * `{status, body, headers}`. Handlers never see sockets: {@link JsonRouter.handle} runs the whole
 * mapping on given bytes (for tests), {@link JsonRouter.serve} on a Node request.
 *
 * What every request shares lives here once: 404 and 405 in the JSON error shape, percent-decoded
 * params (a bad encoding is a 400 naming the param), the bounded JSON body (413/408/400 naming
 * `(body)`), and a thrown {@link MeshregError} answered with its status and JSON body.
 */
import type http from 'node:http';
import { MeshregError } from '../errors.js';
import { sendError } from './http-edge.js';
import { parseJsonBody, readJsonBody, type BodyLimits, type BodyRead } from './json-body.js';

export interface JsonRequest {
  readonly method: string;
  readonly path: string;
  /** The route's `:name` and `*name` segments, percent-decoded. */
  readonly params: Readonly<Record<string, string>>;
  readonly query: URLSearchParams;
  /** Parsed JSON body; `undefined` when the request had none. */
  readonly body: unknown;
  readonly headers: http.IncomingHttpHeaders;
  /** Aborted when the client goes away (ends blocking queries early). */
  readonly signal: AbortSignal;
  /** What the server's edge learned of the caller before routing (the admin API's caller); opaque here. */
  readonly context?: unknown;
}

export interface JsonAnswer {
  readonly status: number;
  /** Serialised as JSON; `undefined` sends an empty body. */
  readonly body?: unknown;
  /** Sent as is instead of `body` (with its own content type in `headers`), e.g. Prometheus text. */
  readonly text?: string;
  readonly headers?: Readonly<Record<string, string>>;
}

export type JsonHandler = (req: JsonRequest) => JsonAnswer | Promise<JsonAnswer>;

/** A route that took the request, with its decoded params. */
export interface RouteMatch {
  readonly handler: JsonHandler;
  readonly params: Readonly<Record<string, string>>;
}

/** A request as {@link JsonRouter.handle} takes it: the body as bytes or text, not yet parsed. */
export interface RawJsonRequest {
  readonly method: string;
  readonly path: string;
  readonly query?: URLSearchParams;
  readonly headers?: http.IncomingHttpHeaders;
  readonly body?: Uint8Array | string | undefined;
  readonly signal?: AbortSignal;
}

/** How {@link JsonRouter.serve} reads a body, and what runs between matching and reading. */
export interface ServeOptions {
  readonly body: BodyLimits;
  readonly signal: AbortSignal;
  /** Runs once a route took the request, before its body is read (a throw is the answer). */
  readonly admitted?: (match: RouteMatch) => void;
  /** Handed to the handler as {@link JsonRequest.context}. */
  readonly context?: unknown;
}

interface Route {
  readonly method: string;
  readonly parts: readonly string[];
  readonly handler: JsonHandler;
}

export class JsonRouter {
  readonly #routes: Route[] = [];

  /** Adds a route; `:name` segments become params (URL-decoded), a trailing `*name` takes the rest. */
  add(method: string, pattern: string, handler: JsonHandler): this {
    this.#routes.push({ method, parts: pattern.split('/').filter((p) => p !== ''), handler });
    return this;
  }

  /**
   * The route for `method` and `path` (HEAD is served by GET), or the answer's error: `not_found`,
   * `method_not_allowed`, or `invalid_argument` for a param that is not valid percent-encoding.
   */
  match(method: string, path: string): RouteMatch | MeshregError {
    const segs = path.split('/').filter((p) => p !== '');
    let pathMatched = false;
    for (const r of this.#routes) {
      const raw = matchParts(r.parts, segs);
      if (raw === undefined) continue;
      pathMatched = true;
      if (r.method !== method && !(method === 'HEAD' && r.method === 'GET')) continue;
      // Decoded only now: a path that no route takes is a 404 whatever its encoding.
      const params: Record<string, string> = {};
      for (const [name, value] of Object.entries(raw)) {
        const decoded = decodeParam(value, name);
        if (decoded instanceof MeshregError) return decoded;
        params[name] = decoded;
      }
      return { handler: r.handler, params };
    }
    return pathMatched
      ? new MeshregError('method_not_allowed', `${method} is not allowed on ${path}`)
      : new MeshregError('not_found', `no route for ${method} ${path}`);
  }

  /**
   * The answer to a request whose body is given whole, without a socket. Never rejects: an error a
   * handler throws is its JSON answer, anything else an opaque 500 `internal`.
   */
  async handle(req: RawJsonRequest, maxBodyBytes = Number.POSITIVE_INFINITY): Promise<JsonAnswer> {
    const bytes =
      typeof req.body === 'string' ? Buffer.from(req.body, 'utf8') : (req.body ?? new Uint8Array());
    const request = {
      method: req.method,
      path: req.path,
      query: req.query ?? new URLSearchParams(),
      headers: req.headers ?? {},
      signal: req.signal ?? new AbortController().signal,
    };
    try {
      return await this.#run(request, () => Promise.resolve(parseJsonBody(bytes, maxBodyBytes)));
    } catch (err) {
      return errorAnswer(err instanceof MeshregError ? err : new MeshregError('internal', 'internal error'));
    }
  }

  /**
   * Serves a Node request whose target is already parsed: match, `admitted`, read the body, run the
   * handler, write the answer. A {@link MeshregError} becomes its JSON answer (closing the
   * connection after a body left unread); anything else rejects, for the caller's safe edge.
   */
  async serve(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    target: { readonly path: string; readonly query: URLSearchParams },
    opts: ServeOptions,
  ): Promise<void> {
    const method = req.method ?? 'GET';
    const request = {
      method,
      ...target,
      headers: req.headers,
      signal: opts.signal,
      ...(opts.context === undefined ? {} : { context: opts.context }),
    };
    try {
      const answer = await this.#run(request, () => readJsonBody(req, opts.body), opts.admitted);
      if (!res.destroyed) writeAnswer(res, answer, method === 'HEAD');
    } catch (err) {
      if (!(err instanceof MeshregError)) throw err;
      // The rest of the body is not read: the connection cannot carry another request.
      if (err.code === 'payload_too_large' || err.code === 'request_timeout')
        res.setHeader('connection', 'close');
      sendError(res, err);
    }
  }

  async #run(
    req: Omit<JsonRequest, 'params' | 'body'>,
    readBody: () => Promise<BodyRead>,
    admitted?: (match: RouteMatch) => void,
  ): Promise<JsonAnswer> {
    const m = this.match(req.method, req.path);
    if (m instanceof MeshregError) return errorAnswer(m);
    admitted?.(m);
    const body = await readBody();
    if (!body.ok) throw body.error;
    return m.handler({ ...req, params: m.params, body: body.body });
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

function decodeParam(s: string, name: string): string | MeshregError {
  try {
    return decodeURIComponent(s);
  } catch {
    return new MeshregError('invalid_argument', `path segment is not valid percent-encoding: ${s}`, {
      fields: [{ path: name, message: 'must be valid percent-encoding (RFC 3986 §2.1)' }],
    });
  }
}

/** The JSON answer of an error: its status and `{error: {code, message, fields}}` body. */
export function errorAnswer(err: MeshregError): JsonAnswer {
  return { status: err.httpStatus, body: err.toJSON() };
}

/** Writes an answer: JSON (or its `text`), with its length; a HEAD answer has headers only. */
export function writeAnswer(res: http.ServerResponse, answer: JsonAnswer, head = false): void {
  const isText = answer.text !== undefined;
  const text = answer.text ?? (answer.body === undefined ? '' : JSON.stringify(answer.body));
  res.writeHead(answer.status, {
    'content-type': isText ? 'text/plain; charset=utf-8' : 'application/json',
    ...answer.headers,
    'content-length': Buffer.byteLength(text),
  });
  res.end(head ? undefined : text);
}
