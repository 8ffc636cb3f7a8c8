/**
 * A session server: terminates agent WebSockets, keeps each connection's publishers, writes them to
 * the data server that leads their slot, and pushes changed datums to subscribers.
 *
 * It holds no state an agent cannot rebuild. When a connection closes, its publishers stay for a
 * grace period (the agent may be reconnecting here or to another session) and are then dropped.
 */
import type http from 'node:http';
import type WebSocket from 'ws';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import {
  DATACENTERS_PROTOCOL_VERSION,
  type Confirm,
  type Datacenters,
  type Hello,
  type Publish,
  type Unpublish,
} from '../../proto/agent-link.js';
import type { AdminConnection } from '../../proto/admin-api.js';
import type { ErrorCode } from '../../proto/errors.js';
import type { Logger } from '../../proto/runtime/log.js';
import type { OwnedPublisher } from '../../proto/cluster-records.js';
import type { CollectParams } from '../../proto/data-link.js';
import type { Switches } from '../../proto/switches.js';
import { contextFrom, traceparentOfSpan, tracer } from '../../proto/runtime/telemetry.js';
import { AgentGrants } from '../auth/agent-grants.js';
import { sharedAgentToken } from '../auth/token-store.js';
import { SessionConsoleBook, type SessionConsoleSource } from '../console/session-console.js';
import { AgentConnection, type ConnectionHost, type ConnectionLimits } from './agent-connection.js';
import { wsTransport } from './agent-transport.js';
import type { DataRouter } from './data-router.js';
import { DEFAULT_OVERLOAD, OverloadGuard } from './overload.js';
import { PushDispatcher, type PushStats } from './push-dispatcher.js';
import { registerSessionMetrics } from './session-ops.js';
import { SessionRefusals, sendRefused } from './session-refusals.js';
import { SessionSwitches } from './switches.js';
import {
  DEFAULT_DATACENTER,
  DEFAULT_MAX_SUBSCRIPTIONS_PER_AGENT,
  type FederationView,
  type SessionOptions,
} from './session-options.js';
import { WritePath } from './write-path.js';

export class SessionServer implements ConnectionHost {
  readonly sessionId: string;
  readonly logger: Logger;
  readonly limits: ConnectionLimits;
  /** This control plane's data center: agents saying another one are refused (4015). */
  readonly datacenter: string;
  readonly #opts: SessionOptions;
  readonly #push: PushDispatcher;
  readonly #conns = new Map<string, AgentConnection>();
  readonly #writes: WritePath;
  readonly #byNode = new Map<string, AgentConnection>();
  readonly #switches = new SessionSwitches();
  /** Connections switched off: their publishers go at once, without the grace period. */
  readonly #dropAtClose = new Set<string>();
  readonly #unregisterMetrics: () => void;
  readonly #overload: OverloadGuard;
  readonly #grants: AgentGrants;
  readonly #refusals: SessionRefusals;
  readonly #counts = { publishes: 0, refusals: 0 };
  #draining: { resolve: () => void; promise: Promise<void> } | undefined;
  #seq = 0;
  #url = '';
  #peers: () => string[] = () => [];
  #federation: FederationView | undefined;
  /** What the console shows of this session's agents and pushes. */
  readonly console: SessionConsoleBook;

  constructor(opts: SessionOptions, router: DataRouter) {
    this.#opts = opts;
    this.console = new SessionConsoleBook(opts.clientGraceMs, opts.protection);
    this.sessionId = opts.id;
    this.logger = opts.logger.child({ role: 'session', sessionId: opts.id });
    this.limits = opts.limits;
    this.datacenter = opts.datacenter ?? DEFAULT_DATACENTER;
    this.#grants = new AgentGrants(opts.authenticator ?? sharedAgentToken(opts.token));
    this.#refusals = new SessionRefusals(
      this.#switches,
      this.#grants,
      opts.maxSubscriptionsPerAgent ?? DEFAULT_MAX_SUBSCRIPTIONS_PER_AGENT,
      this.datacenter,
    );

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
      ...(opts.writeRatePerSec === undefined ? {} : { writeRatePerSec: opts.writeRatePerSec }),
      ...(opts.writeBurst === undefined ? {} : { writeBurst: opts.writeBurst }),
      maxCallBytes: Math.floor(opts.linkMaxFrameBytes / 2),
      protection: opts.protection,
      logger: this.logger,
      confirm: (connId, frame) => {
        this.#conns.get(connId)?.send(JSON.stringify(frame));
      },
    });
    this.#unregisterMetrics = registerSessionMetrics(opts.id, () => ({
      connections: this.#byNode.size,
      subscriptions: this.#push.stats.subscriptions,
      push: this.#push.stats,
      unacknowledged: this.#push.unacknowledged,
      epoch: router.epoch,
      pushStopped: this.#switches.state.pushStopped,
      writes: this.#writes.stats(),
      ...this.#counts,
    }));
    this.#overload = new OverloadGuard(opts.id, opts.overload ?? DEFAULT_OVERLOAD, this.logger, {
      connections: () => this.#conns.values(),
      pendingWrites: () => this.#writes.stats().pendingWrites,
      pushPending: () => this.#push.unacknowledged,
    });
  }

  /** Takes an agent's WebSocket, accepted at the agent link by the role's server. */
  accept(ws: WebSocket, req: http.IncomingMessage): void {
    const id = `${this.sessionId}:${String(++this.#seq)}`;
    const address = (req.socket.remoteAddress ?? '?').replace(/^::ffff:/, '');
    this.#conns.set(id, new AgentConnection(id, wsTransport(ws), address, req.socket.remotePort ?? 0, this));
  }

  /** Whether a drain was asked (agents are being handed to other sessions). */
  get draining(): boolean {
    return this.#draining !== undefined;
  }

  /** The operator switches in force here. */
  get switches(): Switches {
    return this.#switches.state;
  }

  /** The open agent connections, for the admin API. */
  connections(): AdminConnection[] {
    return [...this.#conns.values()]
      .filter((c) => c.state === 'ready')
      .map((c) => ({
        id: c.id,
        ...(c.nodeId === undefined ? {} : { nodeId: c.nodeId }),
        ...(c.nodeName === undefined ? {} : { nodeName: c.nodeName }),
        address: c.address,
        remote: c.remote,
        subscriptions: c.subscriptions.size,
        publishers: this.#writes.publishersOf(c.id),
      }));
  }

  /** What the console reads of this session. */
  consoleSource(): SessionConsoleSource {
    return {
      sessionId: this.sessionId,
      connections: () => [...this.#conns.values()].filter((c) => c.state === 'ready'),
      publishersOf: (id) => this.#writes.publishersOf(id),
      subscribers: (key) => this.#push.subscribers(key),
    };
  }

  /** Adopts a newer switch state from meta and acts on what changed. */
  applySwitches(next: Switches): void {
    const delta = this.#switches.apply(next);
    if (delta === undefined) return;
    this.logger.info('switches applied', { ...next });
    if (delta.pushStoppedChanged || delta.pushAllowChanged) {
      this.#push.setGate(
        next.pushStopped
          ? (t) => {
              const c = this.#conns.get(t.id);
              return c !== undefined && this.#switches.mayPush(c);
            }
          : undefined,
      );
    }
    for (const conn of this.#conns.values()) {
      if (conn.state !== 'ready' || !this.#switches.isOff(conn, delta.newlyOff)) continue;
      this.#dropAtClose.add(conn.id);
      conn.fail('forbidden', 'this client is switched off by an operator');
    }
  }

  /**
   * Drains this session: every agent is told to go elsewhere (closed with `shutting_down`, which
   * agents answer by moving to the next session), new ones are refused. Resolves when none is left.
   */
  drain(): Promise<void> {
    if (this.#draining !== undefined) return this.#draining.promise;
    let resolve: () => void = () => undefined;
    const promise = new Promise<void>((r) => {
      resolve = r;
    });
    this.#draining = { resolve, promise };
    this.logger.info('draining: handing agents to other sessions', { connections: this.#conns.size });
    for (const conn of this.#conns.values())
      conn.fail('shutting_down', 'session draining; use another session');
    this.#checkDrained();
    return promise;
  }

  #checkDrained(): void {
    if (this.#draining === undefined || this.#conns.size > 0) return;
    this.logger.info('drained: no agent connection left');
    this.#draining.resolve();
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

  /** The push dispatcher, for federation's exporter (its importers are push targets too). */
  get pushDispatcher(): PushDispatcher {
    return this.#push;
  }

  /** The agent connections (open, or closing). */
  get agentConnections(): Iterable<AgentConnection> {
    return this.#conns.values();
  }

  /** Lets federation say which data centers exist and what agents are told of them. */
  setFederation(view: FederationView): void {
    this.#federation = view;
    this.#refusals.knows = (dc) => view.knows(dc);
  }

  /** The `datacenters` frame for an agent of protocol 4 or later (without federation: its own only). */
  datacentersFrame(protocolVersion = DATACENTERS_PROTOCOL_VERSION): Datacenters | undefined {
    if (protocolVersion < DATACENTERS_PROTOCOL_VERSION) return undefined;
    return this.#federation?.datacentersFrame() ?? { type: 'datacenters', local: this.datacenter, peers: [] };
  }

  /** Starts receiving notifications from a data server added to the router. */
  attachDataServer(id: string): void {
    this.#push.attachServer(id);
    this.#push.resyncAll();
    void this.#writes.retry();
  }

  /** Stops listening to a data server removed from the router. */
  detachDataServer(id: string): void {
    this.#push.detachServer(id);
  }

  /** A new slot table: retry what failed for want of a leader. */
  tableChanged(): void {
    this.#push.resyncAll();
    void this.#writes.retry();
  }

  /** This session's publishers in `p.slots`, for a data server rebuilding them. */
  collect(p: CollectParams): OwnedPublisher[] {
    return this.#writes.collect(p);
  }

  /** Sets the URL agents reach this server at (handed to agents with the other sessions'). */
  listening(url: string): void {
    this.#url = url;
  }

  /** Stops pushing and writing and closes every agent connection (the role's server closes the port). */
  close(): void {
    this.#unregisterMetrics();
    this.#overload.stop();
    this.#push.close();
    this.#writes.close();
    for (const conn of this.#conns.values()) conn.fail('shutting_down', 'session server is stopping');
  }

  /** What `/health` shows; `status: 'degraded'` with the reason while overloaded. */
  stats(): Record<string, unknown> {
    return {
      connections: this.#byNode.size,
      ...this.#writes.stats(),
      push: { ...this.#push.stats },
      ...this.#overload.health(),
    };
  }

  // ---- ConnectionHost ---------------------------------------------------------------------------

  get maxFrameBytes(): number {
    return this.#opts.maxFrameBytes;
  }

  authenticate(conn: AgentConnection, hello: Hello): ReturnType<AgentGrants['admit']> {
    return this.#refusals.hello(hello) ?? this.#grants.admit(conn.id, hello.token, hello.nodeName);
  }

  /** Re-checks the live connections after the tokens were reloaded (see {@link AgentGrants}). */
  tokensReloaded(): void {
    for (const [id, r] of this.#grants.recheck()) this.#conns.get(id)?.fail(r.code, r.reason);
  }

  sessions(): string[] {
    return [...new Set([this.#url, ...this.#peers()])];
  }

  admit(conn: AgentConnection): { code: ErrorCode; reason: string } | undefined {
    if (this.#draining !== undefined)
      return { code: 'shutting_down', reason: 'session draining; use another session' };
    if (this.#switches.isOff(conn))
      return { code: 'forbidden', reason: 'this client is switched off by an operator' };
    return undefined;
  }

  adopt(conn: AgentConnection): void {
    const nodeId = conn.nodeId ?? '';
    const old = this.#byNode.get(nodeId);
    this.#byNode.set(nodeId, conn);
    this.#writes.open(conn.id, nodeId);
    this.console.connected(conn);
    if (old !== undefined && old !== conn)
      old.fail('replaced', 'a newer connection of the same node took over');
  }

  async publish(conn: AgentConnection, frame: Publish): Promise<Confirm> {
    const { allowed, refused } = this.#refusals.publish(conn.id, frame.registrations);
    this.#counts.refusals += refused.length;
    this.#counts.publishes += allowed.length;
    this.console.published(conn, allowed[0]?.instance.zone);
    const span = tracer().startSpan(
      'session.publish',
      {
        kind: SpanKind.SERVER,
        attributes: { 'meshreg.registrations': allowed.length, 'meshreg.conn': conn.id },
      },
      contextFrom(frame.traceparent),
    );
    try {
      const traceparent = traceparentOfSpan(span);
      const results = await this.#writes.publish(conn.id, allowed, traceparent);
      return { type: 'confirm', results: [...refused, ...results] };
    } catch (err) {
      span.setStatus({ code: SpanStatusCode.ERROR });
      throw err;
    } finally {
      span.end();
    }
  }

  async unpublish(conn: AgentConnection, frame: Unpublish): Promise<Confirm> {
    return { type: 'confirm', results: await this.#writes.unpublish(conn.id, frame.registrations) };
  }

  subscribe(conn: AgentConnection, key: string, knownVersion: number | undefined): boolean {
    const refusal = this.#refusals.subscribe(conn, key);
    if (refusal !== undefined) {
      if (refusal.code === 'limit_exceeded') this.#counts.refusals++;
      sendRefused(conn, key, refusal.code, refusal.message);
      return false;
    }
    this.#push.subscribe(conn, key, knownVersion);
    this.console.touched(conn);
    return true;
  }

  subscribeCatalog(conn: AgentConnection, knownVersion: number | undefined): void {
    this.#push.subscribeCatalog(conn, knownVersion);
  }

  unsubscribe(conn: AgentConnection, key: string): void {
    this.#push.unsubscribe(conn, key);
    this.console.touched(conn);
  }

  ack(conn: AgentConnection, key: string, version: number): void {
    this.console.acked(this.#push.subscribers(key)?.get(conn.id), version);
    this.#push.ack(conn, key, version);
  }

  closed(conn: AgentConnection): void {
    if (conn.failedWith === 'slow_consumer') this.#overload.counts.slowConsumerCloses++;
    this.#push.removeTarget(conn, conn.subscriptions);
    const nodeId = conn.nodeId;
    if (nodeId !== undefined && this.#byNode.get(nodeId) === conn) this.#byNode.delete(nodeId);
    this.#conns.delete(conn.id);
    this.#grants.forget(conn.id);
    this.#writes.closed(conn.id, this.#dropAtClose.delete(conn.id));
    this.console.closed(conn);
    this.#checkDrained();
  }
}
