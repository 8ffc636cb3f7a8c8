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
import {
  AGENT_LINK_PATH,
  type Confirm,
  type ConfirmResult,
  type Publish,
  type Unpublish,
} from '../../proto/agent-link.js';
import { MeshregError } from '../../proto/errors.js';
import { registrationId } from '../../proto/instance.js';
import type { Logger } from '../../proto/log.js';
import type { PublishItem } from '../data/data-api.js';
import {
  AgentConnection,
  tokensEqual,
  type ConnectionHost,
  type ConnectionLimits,
} from './agent-connection.js';
import type { DataRouter } from './data-router.js';
import { PushDispatcher, type PushStats } from './push-dispatcher.js';

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

interface ConnRecord {
  readonly conn: AgentConnection;
  /** serviceId → what this connection published (what the data layer is rebuilt from). */
  readonly publishers: Map<string, PublishItem>;
}

export class SessionServer implements ConnectionHost {
  readonly sessionId: string;
  readonly logger: Logger;
  readonly limits: ConnectionLimits;
  readonly #opts: SessionOptions;
  readonly #router: DataRouter;
  readonly #push: PushDispatcher;
  readonly #http: http.Server;
  readonly #wss: WebSocketServer;
  readonly #conns = new Map<string, ConnRecord>();
  readonly #byNode = new Map<string, AgentConnection>();
  readonly #graceTimers = new Map<string, NodeJS.Timeout>();
  #seq = 0;
  #url = '';
  #peers: () => string[] = () => [];

  constructor(opts: SessionOptions, router: DataRouter) {
    this.#opts = opts;
    this.sessionId = opts.id;
    this.logger = opts.logger.child({ role: 'session', sessionId: opts.id });
    this.limits = opts.limits;
    this.#router = router;
    this.#push = new PushDispatcher(opts.id, router, {
      coalesceMs: opts.coalesceMs,
      ackTimeoutMs: opts.ackTimeoutMs,
      maxRetries: opts.maxPushRetries,
      reconcileIntervalMs: opts.reconcileIntervalMs,
      logger: this.logger,
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
        const conn = new AgentConnection(id, ws, remote, this);
        this.#conns.set(id, { conn, publishers: new Map() });
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
    for (const t of this.#graceTimers.values()) clearTimeout(t);
    this.#graceTimers.clear();
    for (const { conn } of this.#conns.values()) conn.fail('shutting_down', 'session server is stopping');
    this.#wss.close();
    this.#http.closeAllConnections();
    await new Promise<void>((resolve) => this.#http.close(() => resolve()));
  }

  stats(): { connections: number; publishers: number; push: PushStats } {
    let publishers = 0;
    for (const r of this.#conns.values()) publishers += r.publishers.size;
    return { connections: this.#byNode.size, publishers, push: { ...this.#push.stats } };
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
    if (old !== undefined && old !== conn)
      old.fail('replaced', 'a newer connection of the same node took over');
  }

  async publish(conn: AgentConnection, frame: Publish): Promise<Confirm> {
    const rec = this.#conns.get(conn.id);
    const results: ConfirmResult[] = [];
    const byServer = new Map<string, { server: ReturnType<DataRouter['forKey']>; items: PublishItem[] }>();
    for (const { instance, version } of frame.registrations) {
      if (instance.nodeId !== conn.nodeId) {
        results.push(
          refused(
            'publish',
            instance.id,
            version,
            'invalid_argument',
            'instance.nodeId differs from the hello',
          ),
        );
        continue;
      }
      const item: PublishItem = { registrationId: registrationId(instance), instance, version };
      rec?.publishers.set(instance.id, item);
      try {
        const server = this.#router.forKey(instance.service);
        const group = byServer.get(server.id) ?? { server, items: [] };
        group.items.push(item);
        byServer.set(server.id, group);
      } catch (err) {
        results.push(refusedBy('publish', instance.id, version, err));
      }
    }
    for (const { server, items } of byServer.values()) {
      try {
        await server.publish(conn.id, items);
        for (const i of items) results.push({ op: 'publish', id: i.instance.id, version: i.version });
      } catch (err) {
        for (const i of items) results.push(refusedBy('publish', i.instance.id, i.version, err));
      }
    }
    return { type: 'confirm', results };
  }

  async unpublish(conn: AgentConnection, frame: Unpublish): Promise<Confirm> {
    const rec = this.#conns.get(conn.id);
    const results: ConfirmResult[] = [];
    for (const w of frame.registrations) {
      const regId = registrationId({ nodeId: conn.nodeId ?? '', id: w.id });
      const held = rec?.publishers.get(w.id);
      if (held !== undefined && held.version <= w.version) rec?.publishers.delete(w.id);
      try {
        await this.#router
          .forKey(w.service)
          .unpublish([{ key: w.service, registrationId: regId, version: w.version }]);
        results.push({ op: 'unpublish', id: w.id, version: w.version });
      } catch (err) {
        results.push(refusedBy('unpublish', w.id, w.version, err));
      }
    }
    return { type: 'confirm', results };
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
    const rec = this.#conns.get(conn.id);
    this.#conns.delete(conn.id);
    if (rec === undefined || rec.publishers.size === 0) return;
    // Keep the publishers for the grace period; whatever the agent re-sends meanwhile (here or at
    // another session) changes owner and survives the drop.
    const timer = setTimeout(() => {
      this.#graceTimers.delete(conn.id);
      for (const server of this.#router.servers()) {
        server.dropOwner(conn.id).catch((err: unknown) => {
          this.logger.warn('dropping publishers failed', { conn: conn.id, dataId: server.id, err });
        });
      }
    }, this.#opts.clientGraceMs);
    timer.unref();
    this.#graceTimers.set(conn.id, timer);
  }

  #onHttp(req: http.IncomingMessage, res: http.ServerResponse): void {
    const path = (req.url ?? '').split('?')[0];
    if (req.method === 'GET' && path === '/health') {
      const body = JSON.stringify({
        status: 'ok',
        role: 'session',
        sessionId: this.sessionId,
        ...this.stats(),
      });
      res.writeHead(200, { 'content-type': 'application/json' }).end(body);
      return;
    }
    const err = new MeshregError('not_found', `no route for ${req.method ?? ''} ${path ?? ''}`);
    res.writeHead(err.httpStatus, { 'content-type': 'application/json' }).end(JSON.stringify(err.toJSON()));
  }
}

function refused(
  op: 'publish' | 'unpublish',
  id: string,
  version: number,
  code: string,
  message: string,
): ConfirmResult {
  return { op, id, version, error: { code, message } };
}

function refusedBy(op: 'publish' | 'unpublish', id: string, version: number, err: unknown): ConfirmResult {
  if (err instanceof MeshregError) return refused(op, id, version, err.code, err.message);
  return refused(op, id, version, 'internal', 'internal error');
}
