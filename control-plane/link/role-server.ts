/**
 * The HTTP server of one role, the same shell for meta, data and session: `GET /health` for operators
 * and load balancers, `/metrics` and the admin API when given, WebSocket link endpoints whose first
 * request must be an authenticated `hello` of the right protocol version, and socket endpoints (the
 * agent link) handed to their owner. Malformed requests, bad upgrade targets and unknown paths are
 * answered here, once for every role; every socket starts with the small pre-hello frame limit.
 */
import http from 'node:http';
import type { Duplex } from 'node:stream';
import WebSocket, { WebSocketServer } from 'ws';
import { MeshregError } from '../../proto/errors.js';
import {
  clientErrorHandler,
  safeListener,
  safeUpgrade,
  sendError,
  targetOf,
  writeRawError,
  listenOn,
} from '../../proto/runtime/http-edge.js';
import { opsEndpoints, type AdminRoute, type HttpExtension, type OpsOptions } from '../admin/ops-http.js';
import type { Logger } from '../../proto/runtime/log.js';
import {
  CLUSTER_PROTOCOL_VERSION,
  HELLO_METHOD,
  protocolMismatch,
  type HelloAnswer,
  type LinkHello,
} from '../../proto/rpc.js';
import { consoleAssets } from '../console/console-assets.js';
import { tokensEqual } from './auth.js';
import { RpcPeer } from './rpc-peer.js';
import { closeOversizedWithReason, setMaxPayload } from './ws-limits.js';

/** Where a role listens and how its cluster links are served: the same fields in every role's options. */
export interface RoleServerOptions {
  readonly host: string;
  readonly port: number;
  /** The cluster token a peer's hello must carry. */
  readonly token: string;
  /** Largest frame once the hello is accepted. */
  readonly maxFrameBytes: number;
  /** Largest frame before the hello is accepted (nothing unauthenticated may allocate much). */
  readonly maxHelloBytes: number;
  readonly callTimeoutMs: number;
  /** Time a peer of a link has to say an accepted hello; then it is closed (`handshake_timeout`). */
  readonly helloTimeoutMs: number;
  /** `/metrics` and the admin API on the role's port. */
  readonly ops: Omit<OpsOptions, 'logger'>;
}

/** Frame limits of a socket endpoint: small until its owner accepts the hello, then the full size. */
export interface SocketLimits {
  readonly maxHelloBytes: number;
  readonly maxFrameBytes: number;
}

/** Called once a peer said a valid hello; returns what the hello answers. */
export type PeerAccepted = (peer: RpcPeer, hello: LinkHello) => HelloAnswer;

/**
 * Takes a WebSocket accepted at a socket endpoint (the agent link): its owner speaks the protocol,
 * checks the hello and raises the frame limit after it.
 */
export type SocketAccepted = (ws: WebSocket, req: http.IncomingMessage) => void;

interface SocketEndpoint {
  readonly wss: WebSocketServer;
  readonly accepted: SocketAccepted;
}

export class RoleServer {
  readonly #role: string;
  readonly #opts: RoleServerOptions;
  readonly #logger: Logger;
  readonly #health: () => Record<string, unknown>;
  readonly #http: http.Server;
  readonly #wss: WebSocketServer;
  readonly #links = new Map<string, PeerAccepted>();
  readonly #peers = new Set<RpcPeer>();
  readonly #sockets = new Map<string, SocketEndpoint>();
  #address = '';
  #extension: HttpExtension | undefined;
  /** Tried before the admin API: the console's pages and, on meta, its live events. */
  readonly #extras: HttpExtension[] = [];

  /** `health` adds to the `/health` body; a `status: 'degraded'` in it answers 503. */
  constructor(
    role: string,
    opts: RoleServerOptions,
    logger: Logger,
    health: () => Record<string, unknown> = () => ({}),
  ) {
    this.#role = role;
    this.#opts = opts;
    this.#logger = logger;
    this.#health = health;
    this.#wss = preHelloServer(opts);
    this.#http = http.createServer(
      safeListener(logger, (req, res) => {
        this.#onHttp(req, res);
      }),
    );
    this.#http.on('clientError', clientErrorHandler(logger));
    this.#http.on('upgrade', safeUpgrade(logger, this.#onUpgrade.bind(this)));
    this.#extras.push(consoleAssets(opts.ops.adminRemote));
  }

  #onHttp(req: http.IncomingMessage, res: http.ServerResponse): void {
    const path = targetOf(req).path;
    if (req.method === 'GET' && path === '/health') {
      const body = { status: 'ok', role: this.#role, ...this.#health() };
      // A degraded role still serves, but a load balancer or probe should know.
      res
        .writeHead(body.status === 'degraded' ? 503 : 200, { 'content-type': 'application/json' })
        .end(JSON.stringify(body));
      return;
    }
    if (this.#extras.some((serve) => serve(req, res))) return;
    if (this.#extension?.(req, res) === true) return;
    sendError(res, new MeshregError('not_found', `no route for ${req.method ?? ''} ${path}`));
  }

  /** A bad target throws a 400 here, which the safe edge writes on the socket before closing it. */
  #onUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    const path = targetOf(req).path;
    const endpoint = this.#sockets.get(path);
    if (endpoint !== undefined) {
      endpoint.wss.handleUpgrade(req, socket, head, (ws) => {
        endpoint.accepted(ws, req);
      });
      return;
    }
    const accepted = this.#links.get(path);
    if (accepted === undefined) {
      writeRawError(socket, new MeshregError('not_found', `no link at ${path}`));
      return;
    }
    this.#wss.handleUpgrade(req, socket, head, (ws) => {
      this.#accept(ws, accepted);
    });
  }

  /** Serves `/metrics` and the admin API with the role's `routes` (tried before the 404). */
  ops(routes: readonly AdminRoute[]): this {
    this.#extension = opsEndpoints({ ...this.#opts.ops, logger: this.#logger }, routes);
    return this;
  }

  /** Serves what `ext` takes before the admin API (the console's live events). */
  extend(ext: HttpExtension): this {
    this.#extras.push(ext);
    return this;
  }

  /** Serves a link at `path`. */
  link(path: string, accepted: PeerAccepted): this {
    this.#links.set(path, accepted);
    return this;
  }

  /** Serves a socket endpoint at `path` whose owner speaks its own protocol (the agent link). */
  socket(path: string, limits: SocketLimits, accepted: SocketAccepted): this {
    this.#sockets.set(path, { wss: preHelloServer(limits), accepted });
    return this;
  }

  get httpServer(): http.Server {
    return this.#http;
  }

  /** `host:port` it listens on. */
  get address(): string {
    return this.#address;
  }

  url(path: string): string {
    return `ws://${this.#address}${path}`;
  }

  async listen(): Promise<void> {
    const a = await listenOn(this.#http, this.#opts.port, this.#opts.host);
    this.#address = `${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
  }

  async close(): Promise<void> {
    for (const p of this.#peers) p.close('shutting_down', `${this.#role} stopping`);
    this.#wss.close();
    for (const e of this.#sockets.values()) e.wss.close();
    this.#http.closeAllConnections();
    await new Promise<void>((resolve) => this.#http.close(() => resolve()));
  }

  #accept(ws: WebSocket, accepted: PeerAccepted): void {
    const peer = new RpcPeer(ws, {
      callTimeoutMs: this.#opts.callTimeoutMs,
      logger: this.#logger,
      pageBytes: Math.floor(this.#opts.maxFrameBytes / 2),
      firstMethod: HELLO_METHOD,
    });
    closeOversizedWithReason(ws, (limitBytes) => {
      peer.log.warn('link frame too large; closed', { role: this.#role, limitBytes });
    });
    this.#peers.add(peer);
    void peer.closed.then(() => this.#peers.delete(peer));
    const timer = setTimeout(() => {
      peer.close('handshake_timeout', 'no hello received in time');
    }, this.#opts.helloTimeoutMs);
    timer.unref();
    void peer.closed.then(() => {
      clearTimeout(timer);
    });
    let said = false;
    peer.handle(HELLO_METHOD, (asked) => {
      if (said) throw this.#refuse(peer, new MeshregError('invalid_frame', 'hello sent twice'));
      said = true;
      clearTimeout(timer);
      const hello = this.#checkHello(peer, asked);
      setMaxPayload(ws, this.#opts.maxFrameBytes);
      peer.authenticated();
      return accepted(peer, hello);
    });
  }

  /** Checks a decoded hello; a refused one fails the link (after its error answer is written) and throws. */
  #checkHello(peer: RpcPeer, hello: LinkHello): LinkHello {
    const mismatch = protocolMismatch('cluster', hello.protocolVersion, CLUSTER_PROTOCOL_VERSION);
    if (mismatch !== undefined) throw this.#refuse(peer, mismatch);
    if (!tokensEqual(this.#opts.token, hello.token))
      throw this.#refuse(peer, new MeshregError('unauthorized', 'wrong cluster token'));
    return hello;
  }

  #refuse(peer: RpcPeer, err: MeshregError): MeshregError {
    setImmediate(() => {
      peer.close(err.code, err.message);
    });
    return err;
  }
}

/**
 * A WebSocket server for upgrades handed over by the HTTP server. Every connection starts with the
 * small pre-hello frame limit; it is raised for that connection once its hello is accepted.
 */
function preHelloServer(limits: SocketLimits): WebSocketServer {
  return new WebSocketServer({
    noServer: true,
    maxPayload: Math.min(limits.maxHelloBytes, limits.maxFrameBytes),
    perMessageDeflate: false,
  });
}

export { WebSocket };
