/**
 * What a session tells meta's console: its agents (connected, and those whose publishers it still
 * holds after they left), push latency from send to acknowledgement, and which agents watch a
 * service with the version each acknowledged. The session server calls the book's hooks as agents
 * come, publish, acknowledge and go; meta calls {@link serveSessionConsole}'s methods over the link.
 */
import type { ConsoleAgent, ConsoleOfflineAgent, ConsoleSubscriber } from '../../proto/console.js';
import { CONSOLE_LINK, type SessionConsoleSummary } from '../../proto/console-link.js';
import { loopMonitor } from '../../proto/runtime/loop-monitor.js';
import type { RpcPeer } from '../link/rpc-peer.js';
import type { ProtectionHost } from '../link/protection-ops.js';
import type { ErrorRing } from './error-ring.js';
import { LatencyWindows } from './latency-windows.js';

/** Offline agents listed in a summary (the count is exact). */
const MAX_OFFLINE_LISTED = 200;

/** An agent connection as the book sees it. */
export interface BookConnection {
  readonly id: string;
  readonly nodeId?: string | undefined;
  readonly nodeName?: string | undefined;
  readonly address: string;
  readonly subscriptions: ReadonlySet<string>;
}

/** A subscriber as the push dispatcher holds it. */
export interface BookSubscriber {
  readonly pushed: number;
  readonly acked: number;
  readonly sentAt: number | undefined;
}

interface AgentEntry {
  node: string;
  nodeId: string;
  connId: string;
  zone: string;
  address: string;
  connectedSince: number;
  lastContact: number;
  /** When it left; undefined while connected. */
  closedAt: number | undefined;
  registrations: number;
  subscriptions: number;
}

/** What the console reads of the session server. */
export interface SessionConsoleSource {
  readonly sessionId: string;
  /** The ready connections. */
  connections(): Iterable<BookConnection>;
  publishersOf(connId: string): number;
  subscribers(key: string): ReadonlyMap<string, BookSubscriber> | undefined;
}

/** The session's record of its agents for the console. */
export class SessionConsoleBook {
  readonly #graceMs: number;
  readonly #agents = new Map<string, AgentEntry>();
  readonly latency = new LatencyWindows();
  #version = 0;

  constructor(graceMs: number) {
    this.#graceMs = graceMs;
  }

  get version(): number {
    return this.#version;
  }

  /** An agent's hello was accepted. */
  connected(conn: BookConnection): void {
    const now = Date.now();
    const nodeId = conn.nodeId ?? conn.id;
    const old = this.#agents.get(nodeId);
    this.#agents.set(nodeId, {
      node: conn.nodeName ?? '',
      nodeId,
      connId: conn.id,
      zone: old?.zone ?? '',
      address: conn.address,
      connectedSince: now,
      lastContact: now,
      closedAt: undefined,
      registrations: old?.registrations ?? 0,
      subscriptions: 0,
    });
    this.#version++;
  }

  /** An agent published (its zone is its instances'). */
  published(conn: BookConnection, zone: string | undefined): void {
    const a = this.#agents.get(conn.nodeId ?? conn.id);
    if (a === undefined) return;
    if (zone !== undefined && zone !== '') a.zone = zone;
    a.lastContact = Date.now();
    this.#version++;
  }

  /** Anything else an agent did that the agents page counts (subscribe, unsubscribe). */
  touched(conn: BookConnection): void {
    const a = this.#agents.get(conn.nodeId ?? conn.id);
    if (a !== undefined) a.lastContact = Date.now();
    this.#version++;
  }

  /** An acknowledgement of `version` by `sub`: its latency from the write, when this ack completes it. */
  acked(sub: BookSubscriber | undefined, version: number): void {
    if (sub?.sentAt === undefined || version < sub.pushed || sub.acked >= sub.pushed) return;
    this.latency.record(Math.max(0, loopMonitor.liveNow() - sub.sentAt));
  }

  /** A connection closed: its agent stays listed, offline, while the session holds its publishers. */
  closed(conn: BookConnection): void {
    const a = this.#agents.get(conn.nodeId ?? conn.id);
    if (a?.connId !== conn.id) return;
    a.closedAt = Date.now();
    a.lastContact = a.closedAt;
    this.#version++;
  }

  /** Every agent, connected ones refreshed from `source`; offline ones past grace and not held dropped. */
  agents(source: SessionConsoleSource, protection: ProtectionHost | undefined): ConsoleAgent[] {
    const now = Date.now();
    const live = new Map<string, BookConnection>();
    for (const c of source.connections()) live.set(c.nodeId ?? c.id, c);
    const out: ConsoleAgent[] = [];
    for (const [id, a] of this.#agents) {
      const c = live.get(id);
      if (c === undefined && this.#expired(a, now, protection)) {
        this.#agents.delete(id);
        continue;
      }
      if (c !== undefined) {
        a.registrations = source.publishersOf(c.id);
        a.subscriptions = c.subscriptions.size;
      }
      out.push({
        node: a.node,
        nodeId: a.nodeId,
        zone: a.zone,
        session: source.sessionId,
        address: c === undefined ? '' : a.address,
        connectedSince: c === undefined ? 0 : a.connectedSince,
        lastContact: c === undefined ? a.lastContact : now,
        cacheAgeMs: null,
        offline: c === undefined,
        registrations: a.registrations,
        subscriptions: c === undefined ? 0 : a.subscriptions,
      });
    }
    return out.sort((x, y) => x.node.localeCompare(y.node));
  }

  /** The offline agents and why each is still held. */
  offline(source: SessionConsoleSource, protection: ProtectionHost | undefined): ConsoleOfflineAgent[] {
    const out: ConsoleOfflineAgent[] = [];
    for (const a of this.agents(source, protection)) {
      if (!a.offline) continue;
      const e = this.#agents.get(a.nodeId);
      const held = e !== undefined && protection?.protection.isHeld(e.connId) === true;
      out.push({
        node: a.node,
        nodeId: a.nodeId,
        session: a.session,
        why: held ? 'protection' : 'grace',
        since: e?.closedAt ?? 0,
      });
    }
    return out;
  }

  #expired(a: AgentEntry, now: number, protection: ProtectionHost | undefined): boolean {
    if (a.closedAt === undefined) return true; // its connection vanished without a close: nothing held
    if (protection?.protection.isHeld(a.connId) === true) return false;
    return now - a.closedAt > this.#graceMs;
  }
}

/** Serves the console's calls on the meta link of a session. */
export function serveSessionConsole(
  peer: RpcPeer,
  source: SessionConsoleSource,
  book: SessionConsoleBook,
  errors: ErrorRing,
  protection: ProtectionHost,
): void {
  peer.handle(CONSOLE_LINK.sessionSummary, (): SessionConsoleSummary => {
    const offline = book.offline(source, protection);
    const status = protection.protection.status();
    return {
      sessionId: source.sessionId,
      connected: [...source.connections()].length,
      offline: offline.length,
      offlineAgents: offline.slice(0, MAX_OFFLINE_LISTED),
      agentsVersion: book.version,
      latency: book.latency.view(),
      errors: errors.recent(),
      protection: { role: 'session', id: source.sessionId, active: status.active, held: status.held.length },
    };
  });
  peer.handlePaged(CONSOLE_LINK.agents, () => book.agents(source, protection));
  peer.handle(CONSOLE_LINK.subscribers, ({ service }) => {
    const nodes = new Map<string, BookConnection>();
    for (const c of source.connections()) nodes.set(c.id, c);
    const subscribers: ConsoleSubscriber[] = [];
    for (const [connId, s] of source.subscribers(service) ?? []) {
      const c = nodes.get(connId);
      subscribers.push({
        node: c?.nodeName ?? '',
        nodeId: c?.nodeId ?? '',
        session: source.sessionId,
        ackedVersion: Math.max(0, s.acked),
        sentVersion: Math.max(0, s.pushed),
      });
    }
    return { subscribers };
  });
}
