/**
 * The HTTP server of one role: `GET /health` for operators and load balancers, `/metrics` and the
 * admin API when given, and WebSocket link endpoints whose first request must be an authenticated `hello` of the right protocol version.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
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
} from '../../proto/runtime/http-edge.js';
import type { HttpExtension } from '../admin/ops-http.js';
import type { Logger } from '../../proto/runtime/log.js';
import {
  CLUSTER_PROTOCOL_VERSION,
  HELLO_METHOD,
  protocolMismatch,
  type HelloAnswer,
  type LinkHello,
} from '../../proto/rpc.js';
import { tokensEqual } from './auth.js';
import { RpcPeer } from './rpc-peer.js';
import { closeOversizedWithReason, setMaxPayload } from './ws-limits.js';

export interface RoleServerOptions {
  readonly role: string;
  readonly host: string;
  readonly port: number;
  readonly token: string;
  /** Largest frame once the hello is accepted. */
  readonly maxFrameBytes: number;
  /** Largest frame before the hello is accepted (nothing unauthenticated may allocate much). */
  readonly maxHelloBytes: number;
  readonly callTimeoutMs: number;
  readonly logger: Logger;
  readonly health: () => Record<string, unknown>;
}

/** Called once a peer said a valid hello; returns what the hello answers. */
export type PeerAccepted = (peer: RpcPeer, hello: LinkHello) => HelloAnswer;

export class RoleServer {
  readonly #opts: RoleServerOptions;
  readonly #http: http.Server;
  readonly #wss: WebSocketServer;
  readonly #links = new Map<string, PeerAccepted>();
  readonly #peers = new Set<RpcPeer>();
  readonly #upgrades = new Map<string, (req: http.IncomingMessage, socket: Duplex, head: Buffer) => void>();
  #address = '';
  #extension: HttpExtension | undefined;

  constructor(opts: RoleServerOptions) {
    this.#opts = opts;
    this.#wss = new WebSocketServer({
      noServer: true,
      // Raised to maxFrameBytes for this connection once its hello is accepted (#accept).
      maxPayload: Math.min(opts.maxHelloBytes, opts.maxFrameBytes),
      perMessageDeflate: false,
    });
    this.#http = http.createServer(
      safeListener(opts.logger, (req, res) => {
        this.#onHttp(req, res);
      }),
    );
    this.#http.on('clientError', clientErrorHandler(opts.logger));
    this.#http.on('upgrade', safeUpgrade(opts.logger, this.#onUpgrade.bind(this)));
  }

  #onHttp(req: http.IncomingMessage, res: http.ServerResponse): void {
    const opts = this.#opts;
    const path = targetOf(req).path;
    if (req.method === 'GET' && path === '/health') {
      const body = { status: 'ok', role: opts.role, ...opts.health() };
      // A degraded role still serves, but a load balancer or probe should know.
      res
        .writeHead(body.status === 'degraded' ? 503 : 200, { 'content-type': 'application/json' })
        .end(JSON.stringify(body));
      return;
    }
    if (this.#extension?.(req, res) === true) return;
    sendError(res, new MeshregError('not_found', `no route for ${req.method ?? ''} ${path}`));
  }

  /** A bad target throws a 400 here, which the safe edge writes on the socket before closing it. */
  #onUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    const path = targetOf(req).path;
    const custom = this.#upgrades.get(path);
    if (custom !== undefined) {
      custom(req, socket, head);
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

  /** Adds `/metrics` and the admin API (tried before the 404). */
  extend(extension: HttpExtension): this {
    this.#extension = extension;
    return this;
  }

  /** Serves a link at `path`. */
  link(path: string, accepted: PeerAccepted): this {
    this.#links.set(path, accepted);
    return this;
  }

  /** Hands upgrades on `path` to another WebSocket server (the agent link). */
  upgrade(path: string, handler: (req: http.IncomingMessage, socket: Duplex, head: Buffer) => void): this {
    this.#upgrades.set(path, handler);
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
    await new Promise<void>((resolve, reject) => {
      this.#http.once('error', reject);
      this.#http.listen(this.#opts.port, this.#opts.host, () => {
        this.#http.off('error', reject);
        resolve();
      });
    });
    const a = this.#http.address() as AddressInfo;
    this.#address = `${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
  }

  async close(): Promise<void> {
    for (const p of this.#peers) p.close('shutting_down', `${this.#opts.role} stopping`);
    this.#wss.close();
    this.#http.closeAllConnections();
    await new Promise<void>((resolve) => this.#http.close(() => resolve()));
  }

  #accept(ws: WebSocket, accepted: PeerAccepted): void {
    const peer = new RpcPeer(ws, {
      callTimeoutMs: this.#opts.callTimeoutMs,
      logger: this.#opts.logger,
      pageBytes: Math.floor(this.#opts.maxFrameBytes / 2),
      firstMethod: HELLO_METHOD,
    });
    closeOversizedWithReason(ws, (limitBytes) => {
      peer.log.warn('link frame too large; closed', { role: this.#opts.role, limitBytes });
    });
    this.#peers.add(peer);
    void peer.closed.then(() => this.#peers.delete(peer));
    const timer = setTimeout(() => {
      peer.close('handshake_timeout', 'no hello received in time');
    }, 5000);
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

export { WebSocket };
