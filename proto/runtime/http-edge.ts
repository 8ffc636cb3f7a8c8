/**
 * The edge every meshreg HTTP server shares, so that nothing a client sends can crash a process
 * (architecture invariant 5): a request-target parser that never throws, JSON error answers on a
 * response or on a raw socket, a `clientError` handler for what Node's parser rejects, and
 * wrappers that turn any throw in a request or upgrade listener into a JSON answer and one
 * rate-limited log line.
 */
import type http from 'node:http';
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import { MeshregError } from '../errors.js';
import type { Logger } from './log.js';

/** A request target that passed {@link parseTarget}. */
export interface RequestTarget {
  /** Always starts with `/`; dot segments resolved, as WHATWG URL does. */
  readonly path: string;
  readonly query: URLSearchParams;
  /** The `host[:port]` of an absolute-form target (RFC 9112 §3.2.2), which then replaces `Host`. */
  readonly authority: string | undefined;
}

/** Longest excerpt of a bad target quoted back in an error message. */
const QUOTE_CHARS = 120;
const PARSE_BASE = 'http://target.invalid';

/**
 * Parses a request target (RFC 9112 §3.2) without ever throwing: origin-form (`/path?query`)
 * or a well-formed `http(s)://` absolute-form. Anything else — asterisk- and authority-form,
 * a target starting with `//` (which URL parsers read as an authority), a bad host or port —
 * gives a `MeshregError('invalid_argument')` with a field at `(target)`.
 */
export function parseTarget(raw: string | undefined): RequestTarget | MeshregError {
  const target = raw ?? '';
  if (target.startsWith('/') && !target.startsWith('//')) {
    const url = tryUrl(PARSE_BASE + target);
    if (url?.origin === PARSE_BASE && url.pathname.startsWith('/'))
      return { path: url.pathname, query: url.searchParams, authority: undefined };
    return badTarget(target, 'must be a valid origin-form path');
  }
  if (/^https?:\/\//i.test(target)) {
    const url = tryUrl(target);
    if (url !== undefined && url.host !== '' && url.pathname.startsWith('/'))
      return { path: url.pathname, query: url.searchParams, authority: url.host };
    return badTarget(target, 'must be a well-formed http:// or https:// URL');
  }
  return badTarget(target, 'must be a path starting with a single / (or an absolute http:// URL)');
}

function tryUrl(text: string): URL | undefined {
  try {
    return new URL(text);
  } catch {
    return undefined;
  }
}

function badTarget(target: string, message: string): MeshregError {
  return new MeshregError('invalid_argument', `invalid request target ${quote(target)}`, {
    fields: [{ path: '(target)', message }],
  });
}

/** A JSON-quoted, shortened excerpt of client input, safe to put in a message or a log. */
export function quote(text: string): string {
  return JSON.stringify(text.length > QUOTE_CHARS ? `${text.slice(0, QUOTE_CHARS)}...` : text);
}

/**
 * Answers with `err`'s status and JSON body; if the headers already went out, the only honest
 * signal left is to cut the connection.
 */
export function sendError(res: http.ServerResponse, err: MeshregError, status = err.httpStatus): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const text = JSON.stringify(err.toJSON());
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/**
 * Writes a complete `Connection: close` JSON error response straight to a socket (an upgrade or a
 * connection the parser gave up on) and closes it; a socket that cannot be written is destroyed.
 */
export function writeRawError(socket: Duplex, err: MeshregError, status = err.httpStatus): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const text = JSON.stringify(err.toJSON());
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Error'}\r\n` +
      'Content-Type: application/json\r\n' +
      `Content-Length: ${Buffer.byteLength(text)}\r\n` +
      'Connection: close\r\n\r\n' +
      text,
  );
  // end() flushes first; destroy soon after so a peer that never reads cannot hold the socket.
  setTimeout(() => socket.destroy(), 1000).unref();
}

const STATUS_TEXT: Readonly<Record<number, string>> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  408: 'Request Timeout',
  413: 'Payload Too Large',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

/** What a `clientError` answers, by Node's error code. */
function clientErrorAnswer(code: string | undefined): { err: MeshregError; status: number } {
  switch (code) {
    case 'HPE_HEADER_OVERFLOW':
      return {
        err: new MeshregError('headers_too_large', 'request headers are over the size limit'),
        status: 431,
      };
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return { err: new MeshregError('payload_too_large', 'chunk extensions are too large'), status: 413 };
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return {
        err: new MeshregError('request_timeout', 'the request was not received in time'),
        status: 408,
      };
    default:
      return {
        err: new MeshregError('invalid_argument', `malformed HTTP request (${code ?? 'unknown'})`),
        status: 400,
      };
  }
}

/**
 * A `clientError` listener (a request Node's parser rejected, or a header/request timeout):
 * answers with a JSON 400/413/431/408 when nothing of a response was written on the socket
 * yet, then closes it. Never logs per client mistake beyond the rate limit.
 */
export function clientErrorHandler(logger: Logger): (err: Error, socket: Duplex) => void {
  const log = rateLimitedLog(logger);
  return (err, socket) => {
    const code = (err as NodeJS.ErrnoException).code;
    // A reset peer cannot read an answer; and a response already under way must not be corrupted
    // by a second one (the check Node's own default handler makes).
    const inFlight = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
    if (code === 'ECONNRESET' || inFlight?.headersSent === true) {
      socket.destroy();
      return;
    }
    const answer = clientErrorAnswer(code);
    log.debug('http client error', { code, status: answer.status });
    writeRawError(socket, answer.err, answer.status);
  };
}

/** The log calls the edge makes; each logger gets one shared limiter. */
export interface EdgeLog {
  error(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  debug(msg: string, fields?: Record<string, unknown>): void;
}

/** Most error lines a logger's edge writes per second; the rest are counted and summarised. */
export const EDGE_LOG_LINES_PER_SEC = 5;

const LIMITERS = new WeakMap<Logger, EdgeLog>();

/**
 * A view of `logger` whose `error` and `warn` together write at most {@link EDGE_LOG_LINES_PER_SEC} lines per
 * second; lines over it are counted and the count is logged with the next line let through.
 */
export function rateLimitedLog(logger: Logger, now: () => number = Date.now): EdgeLog {
  const known = LIMITERS.get(logger);
  if (known !== undefined) return known;
  let windowStartMs = -Infinity;
  let inWindow = 0;
  let suppressed = 0;
  const limited =
    (write: (msg: string, fields: Record<string, unknown>) => void) =>
    (msg: string, fields: Record<string, unknown> = {}): void => {
      const t = now();
      if (t - windowStartMs >= 1000) {
        windowStartMs = t;
        inWindow = 0;
      }
      if (inWindow >= EDGE_LOG_LINES_PER_SEC) {
        suppressed++;
        return;
      }
      inWindow++;
      write(msg, suppressed > 0 ? { ...fields, suppressedBefore: suppressed } : fields);
      suppressed = 0;
    };
  const log: EdgeLog = {
    error: limited((msg, fields) => {
      logger.error(msg, fields);
    }),
    warn: limited((msg, fields) => {
      logger.warn(msg, fields);
    }),
    debug(msg, fields) {
      logger.debug(msg, fields);
    },
  };
  LIMITERS.set(logger, log);
  return log;
}

/** What a listener's throw becomes: a MeshregError as it is, anything else an opaque 500. */
function asAnswer(err: unknown, log: EdgeLog, what: string): MeshregError {
  if (err instanceof MeshregError && err.code !== 'internal') return err;
  log.error(`${what} failed unexpectedly`, { err });
  return err instanceof MeshregError ? err : new MeshregError('internal', 'internal error');
}

/**
 * Wraps a request listener so that a synchronous throw or a rejected promise becomes the
 * MeshregError's JSON answer (or the documented 500 `internal`, logged once, rate-limited)
 * instead of an uncaught exception that ends the process.
 */
export function safeListener(
  logger: Logger,
  fn: (req: http.IncomingMessage, res: http.ServerResponse) => void | Promise<void>,
): (req: http.IncomingMessage, res: http.ServerResponse) => void {
  const log = rateLimitedLog(logger);
  return (req, res) => {
    const fail = (err: unknown): void => {
      sendError(res, asAnswer(err, log, 'http request'));
    };
    try {
      const pending = fn(req, res);
      if (pending instanceof Promise) pending.catch(fail);
    } catch (err) {
      fail(err);
    }
  };
}

/** Like {@link safeListener} for `upgrade` listeners: a throw answers on the raw socket and closes it. */
export function safeUpgrade(
  logger: Logger,
  fn: (req: http.IncomingMessage, socket: Duplex, head: Buffer) => void,
): (req: http.IncomingMessage, socket: Duplex, head: Buffer) => void {
  const log = rateLimitedLog(logger);
  return (req, socket, head) => {
    try {
      fn(req, socket, head);
    } catch (err) {
      writeRawError(socket, asAnswer(err, log, 'http upgrade'));
    }
  };
}

/** Parses `req.url`, throwing the 400 for a bad target (for use inside a safe listener). */
export function targetOf(req: http.IncomingMessage): RequestTarget {
  const t = parseTarget(req.url);
  if (t instanceof MeshregError) throw t;
  return t;
}

/**
 * Starts `server` on `host:port` (port 0: any free port) and resolves with its bound address;
 * rejects with the listen error (EADDRINUSE, EACCES) instead of letting it reach the process.
 */
export function listenOn(server: net.Server, port: number, host: string): Promise<net.AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server.address() as net.AddressInfo);
    });
  });
}
