/**
 * The HTTP server of one role, the same shell for meta, data and session: `GET /health` for operators
 * and load balancers, `/metrics` and the admin API when given, WebSocket link endpoints whose first
 * request must be an authenticated `hello` of the right protocol version, and socket endpoints (the
 * agent link) handed to their owner. Malformed requests, bad upgrade targets and unknown paths are
 * answered here, once for every role; every socket starts with the small pre-hello frame limit.
 *
 * With TLS settings the port serves TLS only (a plaintext client fails the handshake) and, with a
 * CA, refuses clients without a certificate it signed. Every socket is counted against the
 * per-address and pending-handshake bounds (`conn-limits.ts`) before anything is read from it.
 */
import http from 'node:http';
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
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
  rateLimitedLog,
} from '../../proto/runtime/http-edge.js';
import { opsEndpoints, type AdminRoute, type HttpExtension, type OpsOptions } from '../admin/ops-http.js';
import type { Logger } from '../../proto/runtime/log.js';
import { isLoopbackAddress } from '../../proto/runtime/tls-config.js';
import type { TlsSource } from '../../proto/runtime/tls.js';
import {
  CLUSTER_PROTOCOL_VERSION,
  HELLO_METHOD,
  protocolMismatch,
  type HelloAnswer,
  type LinkHello,
  type LinkRole,
  type MemberHello,
} from '../../proto/rpc.js';
import { MEMBER_ROLES } from '../../proto/cluster-records.js';
import { consoleAssets } from '../console/console-assets.js';
import { tokensEqual } from './auth.js';
import { guardConnections, type ConnGuard, type ConnLimitOptions } from './conn-limits.js';
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
  /** With a certificate, the port serves TLS only (`wss://`, `https://`); with a CA, clients need certificates. */
  readonly tls?: TlsSource | undefined;
  /** Sockets per client address and handshakes under way; none: unbounded (tests of other things). */
  readonly connLimits?: ConnLimitOptions | undefined;
}

/** Frame limits of a socket endpoint: small until its owner accepts the hello, then the full size. */
export interface SocketLimits {
  readonly maxHelloBytes: number;
  readonly maxFrameBytes: number;
}

/** Called once a member said a valid hello; returns what the hello answers. */
export type PeerAccepted = (peer: RpcPeer, hello: MemberHello) => HelloAnswer;

/**
 * A link whose peers are not members (the federation link): which roles may say its hello, and the
 * check of their credentials in place of the cluster token (a refusal is a {@link MeshregError}).
 */
export interface LinkPolicy {
  readonly roles: readonly LinkRole[];
  readonly authorize: (hello: LinkHello) => MeshregError | undefined;
  readonly accepted: (peer: RpcPeer, hello: LinkHello) => HelloAnswer;
}

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
  /** Tried before the admin API: the console's pages and, on meta, its live events. */
  readonly #extras: HttpExtension[] = [];
  readonly #links = new Map<string, LinkPolicy>();
  readonly #peers = new Set<RpcPeer>();
  readonly #sockets = new Map<string, SocketEndpoint>();
  #address = '';
  #extension: HttpExtension | undefined;
  readonly #guard: ConnGuard | undefined;
  readonly #unserveTls: () => void;

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
    const listener = safeListener(logger, (req, res) => {
      this.#onHttp(req, res);
    });
    const tls = opts.tls?.serving === true ? opts.tls : undefined;
    if (tls === undefined) {
      this.#http = http.createServer(listener);
      this.#unserveTls = () => undefined;
    } else {
      // The TLS handshake gets the hello's time: a socket that never finishes it is cut then.
      const server = https.createServer(
        { ...tls.serverOptions(), handshakeTimeout: opts.helloTimeoutMs },
        listener,
      );
      this.#http = server;
      this.#unserveTls = tls.serve(server);
      refuseUnverifiedClients(server, tls, role, logger);
    }
    this.#guard =
      opts.connLimits === undefined
        ? undefined
        : guardConnections(this.#http, {
            ...opts.connLimits,
            role,
            logger,
            handshakeTimeoutMs: opts.helloTimeoutMs,
          });
    this.#http.on('clientError', clientErrorHandler(logger));
    this.#http.on('upgrade', safeUpgrade(logger, this.#onUpgrade.bind(this)));
    this.#extras.push(consoleAssets(opts.ops.adminRemote));
  }

  #onHttp(req: http.IncomingMessage, res: http.ServerResponse): void {
    const path = targetOf(req).path;
    const refused = probeOnlyRefusal(req, path, false);
    if (refused !== undefined) {
      res.setHeader('connection', 'close');
      sendError(res, refused);
      return;
    }
    // Liveness (the event loop answers), for orchestrators; readiness is `/health`, 503 when degraded.
    if (req.method === 'GET' && path === '/live') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
      return;
    }
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
    const refused = probeOnlyRefusal(req, path, true);
    if (refused !== undefined) {
      writeRawError(socket, refused);
      return;
    }
    const endpoint = this.#sockets.get(path);
    if (endpoint !== undefined) {
      endpoint.wss.handleUpgrade(req, socket, head, (ws) => {
        // The owner answers the hello at once (welcome or close): its first frame ends the handshake.
        ws.once('message', () => this.#guard?.handshakeDone(socket));
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
      this.#accept(ws, accepted, () => this.#guard?.handshakeDone(socket));
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

  /** Serves a member link at `path` (data and session servers, with the cluster token). */
  link(path: string, accepted: PeerAccepted): this {
    const refusal = () => new MeshregError('unauthorized', 'wrong cluster token');
    const authorize = (h: LinkHello) => (tokensEqual(this.#opts.token, h.token) ? undefined : refusal());
    // The roles are checked before `accepted` runs: a hello here is a member's.
    const member = (p: RpcPeer, h: LinkHello) => accepted(p, h as MemberHello);
    return this.linkWith(path, { roles: MEMBER_ROLES, authorize, accepted: member });
  }

  /** Serves a link at `path` whose peers `policy` admits (the federation link). */
  linkWith(path: string, policy: LinkPolicy): this {
    this.#links.set(path, policy);
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

  /** `wss` when the port serves TLS, else `ws` (its HTTP endpoints: `https`, `http`). */
  get scheme(): 'ws' | 'wss' {
    return this.#http instanceof https.Server ? 'wss' : 'ws';
  }

  url(path: string): string {
    return `${this.scheme}://${this.#address}${path}`;
  }

  async listen(): Promise<void> {
    const a = await listenOn(this.#http, this.#opts.port, this.#opts.host);
    this.#address = `${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
    if (this.scheme === 'ws' && !isLoopbackAddress(a.address))
      this.#logger.warn(
        'listening on a non-loopback address without TLS: tokens and registrations cross the network in plain text (set MESHREG_TLS_CERT_FILE and MESHREG_TLS_KEY_FILE)',
        { role: this.#role, address: this.#address },
      );
  }

  async close(): Promise<void> {
    for (const p of this.#peers) p.close('shutting_down', `${this.#role} stopping`);
    this.#wss.close();
    for (const e of this.#sockets.values()) e.wss.close();
    this.#guard?.stop();
    this.#unserveTls();
    this.#http.closeAllConnections();
    await new Promise<void>((resolve) => this.#http.close(() => resolve()));
  }

  #accept(ws: WebSocket, policy: LinkPolicy, handshakeDone: () => void): void {
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
      const hello = this.#checkHello(peer, asked, policy);
      setMaxPayload(ws, this.#opts.maxFrameBytes);
      handshakeDone();
      peer.authenticated();
      return policy.accepted(peer, hello);
    });
  }

  /** Checks a decoded hello; a refused one fails the link (after its error answer is written) and throws. */
  #checkHello(peer: RpcPeer, hello: LinkHello, policy: LinkPolicy): LinkHello {
    const mismatch = protocolMismatch('cluster', hello.protocolVersion, CLUSTER_PROTOCOL_VERSION);
    if (mismatch !== undefined) throw this.#refuse(peer, mismatch);
    if (!policy.roles.includes(hello.role))
      throw this.#refuse(peer, new MeshregError('forbidden', `role ${hello.role} may not use this link`));
    const refusal = policy.authorize(hello);
    if (refusal !== undefined) throw this.#refuse(peer, refusal);
    return hello;
  }

  #refuse(peer: RpcPeer, err: MeshregError): MeshregError {
    setImmediate(() => {
      peer.close(err.code, err.message);
    });
    return err;
  }
}

/** TLS sockets without a verified client certificate, kept for {@link PROBE_PATHS} only. */
const UNVERIFIED = new WeakSet<object>();

/** What a client without a certificate may still GET when the role allows it (probes, scrapers). */
const PROBE_PATHS: ReadonlySet<string> = new Set(['/live', '/health', '/metrics']);

/** The refusal of a request from a socket kept only for the probe paths; undefined when allowed. */
function probeOnlyRefusal(
  req: http.IncomingMessage,
  path: string,
  upgrade: boolean,
): MeshregError | undefined {
  if (!UNVERIFIED.has(req.socket)) return undefined;
  if (!upgrade && (req.method === 'GET' || req.method === 'HEAD') && PROBE_PATHS.has(path)) return undefined;
  return new MeshregError(
    'forbidden',
    'a client certificate is required (only /live, /health and /metrics are open without one)',
  );
}

/**
 * Logs why a TLS peer was refused, which only the server knows. A client certificate is checked
 * here rather than by OpenSSL's `rejectUnauthorized`, which closes without saying why: this
 * listener runs first on every secure connection and destroys an unverified one before any of its
 * bytes are read.
 */
function refuseUnverifiedClients(server: https.Server, tls: TlsSource, role: string, logger: Logger): void {
  const log = rateLimitedLog(logger);
  server.prependListener('secureConnection', (socket: TLSSocket) => {
    if (!tls.verifiesClients || socket.authorized) return;
    if (tls.probesWithoutClientCert) {
      // Kept for the probe paths only: `#onHttp` and `#onUpgrade` refuse it everything else.
      UNVERIFIED.add(socket);
      return;
    }
    log.warn('TLS client refused', {
      role,
      ip: socket.remoteAddress,
      err: String(socket.authorizationError),
    });
    socket.destroy();
  });
  server.on('tlsClientError', (err: NodeJS.ErrnoException, socket) => {
    // A client that gave up (it refused our certificate) resets; its alert, when sent, is the message.
    const fields = { role, ip: socket.remoteAddress, code: err.code, err: err.message };
    if (err.code === 'ECONNRESET') log.debug('TLS handshake failed', fields);
    else log.warn('TLS handshake failed', fields);
    socket.destroy();
  });
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
