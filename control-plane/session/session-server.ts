/**
 * A session server: terminates agent WebSockets, keeps each connection's publishers, writes them to
 * the data server that leads their slot, and pushes changed datums to subscribers.
 *
 * It holds no state an agent cannot rebuild. When a connection closes, its publishers stay for a
 * grace period (the agent may be reconnecting here or to another session) and are then dropped.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import { AGENT_LINK_PATH, type Confirm, type Publish, type Unpublish } from '../../proto/agent-link.js';
import { MeshregError } from '../../proto/errors.js';
import type { Logger } from '../../proto/log.js';
import type { CollectParams, OwnedPublisher } from '../../proto/cluster-link.js';
import { tokensEqual } from '../link/auth.js';
import { AgentConnection, type ConnectionHost, type ConnectionLimits } from './agent-connection.js';
import type { DataRouter } from './data-router.js';
import { PushDispatcher, type PushStats } from './push-dispatcher.js';
import { WritePath } from './write-path.js';

export interface SessionOptions {
  readonly id: string;
  readonly host: string;
  readonly port: number;
  /** The URL agents should use to reach this server; derived from host and port when empty. */
  readonly advertiseUrl: string;
  readonly token: string;
  readonly maxFrameBytes: number;
  readonly limits: ConnectionLimits;
  /** How long a closed connection's publishers are kept before they are dropped. */
  readonly clientGraceMs: number;
  readonly coalesceMs: number;
  readonly ackTimeoutMs: number;
  readonly maxPushRetries: number;
  readonly reconcileIntervalMs: number;
  readonly logger: Logger;
}

export class SessionServer implements ConnectionHost {
  readonly sessionId: string;
  readonly logger: Logger;
  readonly limits: ConnectionLimits;
  readonly #opts: SessionOptions;
  readonly #push: PushDispatcher;
  readonly #http: http.Server;
  readonly #wss: WebSocketServer;
  readonly #conns = new Map<string, AgentConnection>();
  readonly #writes: WritePath;
  readonly #byNode = new Map<string, AgentConnection>();
  #seq = 0;
  #url = '';
  #peers: () => string[] = () => [];

  readonly #extraHealth: () => Record<string, unknown>;

  constructor(
    opts: SessionOptions,
    router: DataRouter,
    extraHealth: () => Record<string, unknown> = () => ({}),
  ) {
    this.#extraHealth = extraHealth;
    this.#opts = opts;
    this.sessionId = opts.id;
    this.logger = opts.logger.child({ role: 'session', sessionId: opts.id });
    this.limits = opts.limits;

    this.#push = new PushDispatcher(opts.id, router, {
      coalesceMs: opts.coalesceMs,
      ackTimeoutMs: opts.ackTimeoutMs,
      maxRetries: opts.maxPushRetries,
      reconcileIntervalMs: opts.reconcileIntervalMs,
      logger: this.logger,
    });
    this.#writes = new WritePath(router, {
      graceMs: opts.clientGraceMs,
      retryIntervalMs: 500,
      logger: this.logger,
      confirm: (connId, frame) => {
        this.#conns.get(connId)?.send(JSON.stringify(frame));
      },
    });
    this.#wss = new WebSocketServer({
      noServer: true,
      maxPayload: opts.maxFrameBytes,
      perMessageDeflate: false,
    });
    this.#http = http.createServer((req, res) => {
      this.#onHttp(req, res);
    });
    this.#http.on('upgrade', (req, socket, head) => {
      const path = (req.url ?? '').split('?')[0];
      if (path !== AGENT_LINK_PATH) {
        socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
        return;
      }
      this.#wss.handleUpgrade(req, socket, head, (ws) => {
        const id = `${this.sessionId}:${++this.#seq}`;
        const remote = `${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? 0}`;
        this.#conns.set(id, new AgentConnection(id, ws, remote, this));
      });
    });
  }

  /** The WebSocket URL agents connect to. */
  get url(): string {
    return this.#url;
  }

  get pushStats(): PushStats {
    return this.#push.stats;
  }

  /** Lets the deployment provide the other sessions' URLs (handed to agents for failover). */
  setPeers(peers: () => string[]): void {
    this.#peers = peers;
  }

  /** Starts receiving notifications from a data server added to the router. */
  attachDataServer(id: string): void {
    this.#push.attachServer(id);
    void this.#writes.retry();
  }

  /** Stops listening to a data server removed from the router. */
  detachDataServer(id: string): void {
    this.#push.detachServer(id);
  }

  /** A new slot table: retry what failed for want of a leader. */
  tableChanged(): void {
    void this.#writes.retry();
  }

  /** This session's publishers in `p.slots`, for a data server rebuilding them. */
  collect(p: CollectParams): OwnedPublisher[] {
    return this.#writes.collect(p);
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.#http.once('error', reject);
      this.#http.listen(this.#opts.port, this.#opts.host, () => {
        this.#http.off('error', reject);
        resolve();
      });
    });
    const addr = this.#http.address() as AddressInfo;
    const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
    this.#url =
      this.#opts.advertiseUrl !== ''
        ? this.#opts.advertiseUrl
        : `ws://${host}:${addr.port}${AGENT_LINK_PATH}`;
    this.logger.info('session listening', { url: this.#url });
  }

  async close(): Promise<void> {
    this.#push.close();
    this.#writes.close();
    for (const conn of this.#conns.values()) conn.fail('shutting_down', 'session server is stopping');
    this.#wss.close();
    this.#http.closeAllConnections();
    await new Promise<void>((resolve) => this.#http.close(() => resolve()));
  }

  stats(): Record<string, unknown> {
    return { connections: this.#byNode.size, ...this.#writes.stats(), push: { ...this.#push.stats } };
  }

  // ---- ConnectionHost ---------------------------------------------------------------------------

  tokenMatches(token: string): boolean {
    return tokensEqual(this.#opts.token, token);
  }

  sessions(): string[] {
    return [...new Set([this.#url, ...this.#peers()])];
  }

  adopt(conn: AgentConnection): void {
    const nodeId = conn.nodeId ?? '';
    const old = this.#byNode.get(nodeId);
    this.#byNode.set(nodeId, conn);
    this.#writes.open(conn.id, nodeId);
    if (old !== undefined && old !== conn)
      old.fail('replaced', 'a newer connection of the same node took over');
  }

  async publish(conn: AgentConnection, frame: Publish): Promise<Confirm> {
    return { type: 'confirm', results: await this.#writes.publish(conn.id, frame.registrations) };
  }

  async unpublish(conn: AgentConnection, frame: Unpublish): Promise<Confirm> {
    return { type: 'confirm', results: await this.#writes.unpublish(conn.id, frame.registrations) };
  }

  subscribe(conn: AgentConnection, key: string, knownVersion: number | undefined): void {
    this.#push.subscribe(conn, key, knownVersion);
  }

  unsubscribe(conn: AgentConnection, key: string): void {
    this.#push.unsubscribe(conn, key);
  }

  ack(conn: AgentConnection, key: string, version: number): void {
    this.#push.ack(conn, key, version);
  }

  closed(conn: AgentConnection): void {
    this.#push.removeTarget(conn, conn.subscriptions);
    const nodeId = conn.nodeId;
    if (nodeId !== undefined && this.#byNode.get(nodeId) === conn) this.#byNode.delete(nodeId);
    this.#conns.delete(conn.id);
    this.#writes.closed(conn.id);
  }

  #onHttp(req: http.IncomingMessage, res: http.ServerResponse): void {
    const path = (req.url ?? '').split('?')[0];
    if (req.method === 'GET' && path === '/health') {
      const body = JSON.stringify({
        status: 'ok',
        role: 'session',
        sessionId: this.sessionId,
        ...this.stats(),
        ...this.#extraHealth(),
      });
      res.writeHead(200, { 'content-type': 'application/json' }).end(body);
      return;
    }
    const err = new MeshregError('not_found', `no route for ${req.method ?? ''} ${path ?? ''}`);
    res.writeHead(err.httpStatus, { 'content-type': 'application/json' }).end(JSON.stringify(err.toJSON()));
  }
}
